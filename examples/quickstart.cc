// The README's main job, the SDK part (scripts/demo runs it): builds a snapshot from a
// declarative Image — a local Debian base plus the app in examples/quickstart-app — streaming
// the build log as it happens, then lists the snapshots.
//
//   export DAYTONA_API_URL=http://127.0.0.1:3000/api DAYTONA_API_KEY=...
//   quickstart [--name quickstart] [--base cairn.local/debian:bookworm] [--app DIR]
//
// --base / CAIRN_QUICKSTART_BASE is any image in the server's local store (`cairn base
// bootstrap` makes one without Docker Hub); the build needs only /bin/sh in it. --app /
// CAIRN_QUICKSTART_APP defaults to the quickstart-app folder beside this file. A snapshot of the
// same name is deleted first, so the program can be run again and again; an identical Image that
// the server has built before is active at once, without a build.
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <cairn/cairn.h>

#ifndef QUICKSTART_APP_DIR
#define QUICKSTART_APP_DIR "examples/quickstart-app"
#endif

namespace {

struct Options {
  std::string name = "quickstart";
  std::string base = "cairn.local/debian:bookworm";
  std::string app = QUICKSTART_APP_DIR;
  double timeout_s = 900;
};

const char* kUsage =
    "usage: quickstart [--name NAME] [--base IMAGE] [--app DIR] [--timeout SECONDS]\n"
    "  with DAYTONA_API_URL and DAYTONA_API_KEY set (the URL of `cairn serve`, e.g.\n"
    "  http://127.0.0.1:3000/api, and the key it printed at first start)\n";

// Flags win over the environment, which wins over the defaults. Returns false on bad usage.
bool parseArgs(int argc, char** argv, Options& options) {
  if (const char* v = std::getenv("CAIRN_QUICKSTART_BASE"); v != nullptr && *v != '\0') {
    options.base = v;
  }
  if (const char* v = std::getenv("CAIRN_QUICKSTART_APP"); v != nullptr && *v != '\0') {
    options.app = v;
  }
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (flag != "--name" && flag != "--base" && flag != "--app" && flag != "--timeout") {
      std::cerr << "quickstart: unknown argument \"" << flag << "\"\n" << kUsage;
      return false;
    }
    if (i + 1 >= argc) {
      std::cerr << "quickstart: " << flag << " needs a value\n" << kUsage;
      return false;
    }
    const std::string value = argv[++i];
    if (flag == "--name") {
      options.name = value;
    } else if (flag == "--base") {
      options.base = value;
    } else if (flag == "--app") {
      options.app = value;
    } else {  // --timeout
      char* end = nullptr;
      options.timeout_s = std::strtod(value.c_str(), &end);
      if (end == value.c_str() || *end != '\0' || options.timeout_s < 0) {
        std::cerr << "quickstart: --timeout must be a number of seconds, got \"" << value << "\"\n";
        return false;
      }
    }
  }
  if (options.name.empty() || options.base.empty() || options.app.empty()) {
    std::cerr << "quickstart: --name, --base and --app must not be empty\n";
    return false;
  }
  return true;
}

std::string formatTime(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  std::ostringstream out;
  out << std::put_time(&tm, "%Y-%m-%d %H:%M:%S");
  return out.str();
}

std::string formatSize(const std::optional<double>& gb) {
  if (!gb) return "-";
  std::ostringstream out;
  out << std::fixed << std::setprecision(*gb < 1 ? 3 : 2) << *gb << " GB";
  return out.str();
}

// The name under which the server keeps the built image in its local store: the last path
// element of the snapshot's ref (`daytona-<sha256>:daytona`), what `cairn run` takes.
std::string localImageName(const cairn::Snapshot& snapshot) {
  if (snapshot.buildInfo && !snapshot.buildInfo->snapshotRef.empty()) {
    return snapshot.buildInfo->snapshotRef;
  }
  if (snapshot.ref) return snapshot.ref->substr(snapshot.ref->rfind('/') + 1);
  return snapshot.imageName;
}

// Lines the SDK itself sends to onLogs, as opposed to the server's build log.
bool isSdkProgressLine(std::string_view chunk) {
  return chunk.starts_with("Creating snapshot ") || chunk.starts_with("Created snapshot ");
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parseArgs(argc, argv, options)) return 2;
  try {
    cairn::Daytona daytona;  // DAYTONA_API_KEY / DAYTONA_API_URL from the environment
    std::cout << "Server: " << daytona.config().apiUrl << "\n";

    // The Dockerfile names the app folder as addLocalDir was given it. Work from the folder's
    // parent, so that it says `COPY quickstart-app /app` and the snapshot's build ref (a hash
    // of the Dockerfile and the context) is the same wherever the checkout is.
    std::error_code ec;
    std::filesystem::path app = std::filesystem::absolute(options.app, ec).lexically_normal();
    if (!app.has_filename()) app = app.parent_path();  // "dir/" names "dir"
    if (ec || !std::filesystem::is_directory(app, ec)) {
      std::cerr << "quickstart: the app folder " << app << " is not a directory (pass --app DIR)\n";
      return 2;
    }
    std::filesystem::current_path(app.parent_path(), ec);
    if (ec) {
      std::cerr << "quickstart: cannot enter " << app.parent_path() << ": " << ec.message() << "\n";
      return 1;
    }

    // The Image: the app's files, a build step, its environment, workdir and entrypoint. The
    // SDK uploads the app folder as the build context; the server builds the Dockerfile.
    cairn::Image image =
        cairn::Image::base(options.base)
            .addLocalDir(app.filename().string(), "/app")
            .workdir("/app")
            .env({{"APP_ENV", "quickstart"}, {"GREETING", "Hello from a Cairn sandbox"}})
            .runCommands(
                "echo \"built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m)\" > BUILD_INFO",
                "ls -l /app")
            .entrypoint({"/bin/sh", "/app/entrypoint.sh"});
    std::cout << "Image (Dockerfile generated by cairn::Image):\n";
    std::istringstream dockerfile(image.dockerfile());
    for (std::string line; std::getline(dockerfile, line);)
      std::cout << "  | " << line << "\n";

    // Re-running replaces the previous snapshot of this name; DELETE releases the name at once.
    try {
      cairn::Snapshot previous = daytona.snapshot.get(options.name);
      daytona.snapshot.remove(previous);
      std::cout << "Deleted the previous snapshot \"" << options.name << "\" (" << previous.id
                << ")\n";
    } catch (const cairn::DaytonaNotFoundError&) {
      // First run: nothing to replace.
    }

    std::cout << "Creating snapshot \"" << options.name << "\" from " << options.base
              << ", build log follows:\n";
    int build_chunks = 0;
    const auto started = std::chrono::steady_clock::now();
    cairn::Snapshot snapshot = daytona.snapshot.create(
        {.name = options.name, .image = image}, {.onLogs =
                                                     [&build_chunks](std::string_view chunk) {
                                                       if (!isSdkProgressLine(chunk))
                                                         ++build_chunks;
                                                       std::cout << chunk << "\n" << std::flush;
                                                     },
                                                 .timeout = options.timeout_s});
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    if (build_chunks == 0) {
      // Either the server had built this exact Image before (dedup by build ref: no build at
      // all), or the build finished between two polls, before the SDK opened the log stream.
      std::string log;
      try {
        daytona.snapshot.logs(snapshot.name, false, [&log](std::string_view c) { log += c; });
      } catch (const cairn::DaytonaError&) {
        // No log is kept for an Image that needed no build.
      }
      if (log.empty()) {
        std::cout << "(no build needed: the server had built this exact Image before)\n";
      } else {
        std::cout << "(the build finished before its log stream opened; the log:)\n" << log;
        if (log.back() != '\n') std::cout << "\n";
      }
    }

    std::cout << std::fixed << std::setprecision(1) << "\nSnapshot \"" << snapshot.name << "\" is "
              << snapshot.state.str() << " after " << seconds << " s\n"
              << "  id     " << snapshot.id << "\n"
              << "  image  " << localImageName(snapshot) << "\n"
              << "  size   " << formatSize(snapshot.size) << "\n";

    cairn::PaginatedSnapshots all = daytona.snapshot.list();
    std::cout << "\nSnapshots on this server (" << all.total << "):\n"
              << "  " << std::left << std::setw(24) << "NAME" << std::setw(14) << "STATE"
              << std::setw(12) << "SIZE"
              << "CREATED (UTC)\n";
    for (const cairn::Snapshot& s : all.items) {
      std::cout << "  " << std::left << std::setw(24) << s.name << std::setw(14) << s.state.str()
                << std::setw(12) << formatSize(s.size) << formatTime(s.createdAt) << "\n";
    }
    return snapshot.state == cairn::SnapshotState::Kind::kActive ? 0 : 1;
  } catch (const cairn::DaytonaError& e) {
    std::cerr << "quickstart: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "quickstart: unexpected error: " << e.what() << "\n";
    return 1;
  }
}
