// `cairn snapshot …`: the snapshot commands, a thin layer over the C++ SDK (cairn::Daytona), so
// they work against `cairn serve` and Daytona's hosted API alike. Each subcommand parses its
// flags, calls SnapshotService, and prints; the SDK's exceptions are caught here, at the edge,
// and become a one-line error on stderr with exit code 1 (usage errors are 2, from CLI11).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cairn/build/tty_progress.h"
#include "cairn/cli/command.h"
#include "cairn/common/time.h"
#include "cairn/sdk/daytona.h"
#include "cairn/sdk/errors.h"

namespace {

namespace fs = std::filesystem;

constexpr const char* kLocalApiUrl = "http://127.0.0.1:3000/api";

struct ConnectionFlags {
  std::string api_url;
  std::string api_key;
};

std::string envOr(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

// Flag, then CAIRN_*, then DAYTONA_* (the SDK reads the latter itself, so they also reach
// programs written against the SDK). The API key check is ours so that the message can say
// what to do.
cairn::Daytona connect(const ConnectionFlags& flags) {
  cairn::DaytonaConfig config;
  config.apiUrl = !flags.api_url.empty() ? flags.api_url : envOr("CAIRN_API_URL");
  // Unlike the SDK (whose default is Daytona's hosted API), `cairn` defaults to the local
  // `cairn serve` on its default address.
  if (config.apiUrl.empty() && envOr("DAYTONA_API_URL").empty() &&
      envOr("DAYTONA_SERVER_URL").empty()) {
    config.apiUrl = kLocalApiUrl;
  }
  config.apiKey = !flags.api_key.empty() ? flags.api_key : envOr("CAIRN_API_KEY");
  if (config.apiKey.empty() && envOr("DAYTONA_API_KEY").empty() &&
      envOr("DAYTONA_JWT_TOKEN").empty()) {
    throw cairn::DaytonaError(
        "no API key: set DAYTONA_API_KEY (or CAIRN_API_KEY) or pass --api-key; `cairn serve` "
        "printed one at first start");
  }
  return cairn::Daytona(config);
}

// Runs one subcommand body; maps the SDK's exceptions to an error line and exit code 1.
template <typename Fn>
void guarded(Fn&& fn) {
  try {
    fn();
  } catch (const cairn::DaytonaNotFoundError& e) {
    std::cerr << "cairn snapshot: " << e.what()
              << " (`cairn snapshot list` shows the snapshots there are)\n";
    cairn::cli::setExitCode(1);
  } catch (const cairn::DaytonaAuthenticationError& e) {
    std::cerr << "cairn snapshot: " << e.what()
              << " (the API key was refused: check --api-key / DAYTONA_API_KEY)\n";
    cairn::cli::setExitCode(1);
  } catch (const cairn::DaytonaConnectionError& e) {
    std::cerr << "cairn snapshot: " << e.what()
              << " (is the server running? start one with `cairn serve`, or point --api-url / "
                 "CAIRN_API_URL at it)\n";
    cairn::cli::setExitCode(1);
  } catch (const cairn::DaytonaError& e) {
    std::cerr << "cairn snapshot: " << e.what() << "\n";
    cairn::cli::setExitCode(1);
  } catch (const std::exception& e) {
    std::cerr << "cairn snapshot: " << e.what() << "\n";
    cairn::cli::setExitCode(1);
  }
}

// 0.25 → "0.25", 1 → "1": numbers as a person writes them.
std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// The API reports sizes in GB (bytes / 1024³); small images read better in smaller units.
std::string sizeText(const std::optional<double>& gb) {
  if (!gb) return "-";
  double bytes = *gb * 1024.0 * 1024.0 * 1024.0;
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

std::string createdText(std::chrono::system_clock::time_point t) {
  // Second precision: the table is for people; --json keeps the full value.
  std::string text = cairn::formatRfc3339(std::chrono::time_point_cast<std::chrono::seconds>(t));
  if (text.ends_with(".000Z")) text.replace(text.size() - 5, 5, "Z");
  return text;
}

void printTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i)
      widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

std::vector<std::string> snapshotRow(const cairn::Snapshot& s) {
  return {s.name, s.state.str(), sizeText(s.size),
          number(s.cpu) + "/" + number(s.mem) + "/" + number(s.disk), createdText(s.createdAt)};
}

void printSnapshot(const cairn::Snapshot& s) {
  std::vector<std::vector<std::string>> rows = {
      {"Name:", s.name},
      {"Id:", s.id},
      {"State:", s.state.str()},
      {"Image:", s.imageName.empty() ? "(built)" : s.imageName},
      {"Size:", sizeText(s.size)},
      {"CPU:", number(s.cpu)},
      {"GPU:", number(s.gpu)},
      {"Memory:", number(s.mem) + " GB"},
      {"Disk:", number(s.disk) + " GB"},
      {"Created:", createdText(s.createdAt)},
  };
  if (s.entrypoint && !s.entrypoint->empty()) {
    std::string joined;
    for (const auto& part : *s.entrypoint)
      joined += (joined.empty() ? "" : " ") + part;
    rows.push_back({"Entrypoint:", joined});
  }
  if (s.errorReason) rows.push_back({"Error:", *s.errorReason});
  printTable(rows);
}

void registerSnapshot(CLI::App& command, cairn::cli::GlobalOptions& /*options*/) {
  auto* cmd = &command;
  cmd->require_subcommand(1);
  static ConnectionFlags conn;
  cmd->add_option("--api-url", conn.api_url,
                  "API URL (else CAIRN_API_URL, DAYTONA_API_URL, else the local `cairn serve`, "
                  "http://127.0.0.1:3000/api)");
  cmd->add_option("--api-key", conn.api_key, "API key (else CAIRN_API_KEY, DAYTONA_API_KEY)");

  // create
  {
    struct Args {
      std::string name, image, dockerfile, context;
      std::optional<double> cpu, memory, disk, gpu;
      std::vector<std::string> entrypoint;
      double timeout = 0;
      std::string progress = "auto";
    };
    static Args a;
    auto* c = cmd->add_subcommand("create",
                                  "Create a snapshot from an image or a Dockerfile, "
                                  "showing its build log live");
    c->add_option("name", a.name, "Snapshot name")->required();
    auto* image = c->add_option("--image", a.image, "Existing image reference (e.g. alpine:3.19)");
    auto* dockerfile =
        c->add_option("--dockerfile", a.dockerfile, "Build from this Dockerfile instead");
    image->excludes(dockerfile);
    c->add_option("--context", a.context,
                  "Build context; must be the Dockerfile's directory (the default)")
        ->needs(dockerfile);
    c->add_option("--cpu", a.cpu, "vCPUs")->check(CLI::PositiveNumber);
    c->add_option("--memory", a.memory, "Memory in GB")->check(CLI::PositiveNumber);
    c->add_option("--disk", a.disk, "Disk in GB")->check(CLI::PositiveNumber);
    c->add_option("--gpu", a.gpu, "GPUs")->check(CLI::NonNegativeNumber);
    c->add_option("--entrypoint", a.entrypoint, "Entrypoint command and arguments");
    c->add_option("--timeout", a.timeout, "Give up after S seconds (0 = wait forever)")
        ->check(CLI::NonNegativeNumber);
    c->add_option("--progress", a.progress,
                  "Build log: auto (tty on a terminal, else plain) | plain | tty");
    c->callback([c] {
      auto progress_mode = cairn::build::parseProgressMode(a.progress);
      if (!progress_mode.ok()) {
        std::cerr << "cairn snapshot create: " << progress_mode.status().message() << "\n";
        cairn::cli::setExitCode(2);
        return;
      }
      if (a.image.empty() && a.dockerfile.empty()) {
        std::cerr << "cairn snapshot create: give --image REF or --dockerfile PATH\n" << c->help();
        cairn::cli::setExitCode(2);
        return;
      }
      guarded([mode = *progress_mode] {
        cairn::CreateSnapshotParams params;
        params.name = a.name;
        if (!a.image.empty()) {
          params.image = a.image;
        } else {
          std::error_code ec;
          fs::path df = fs::absolute(a.dockerfile, ec);
          if (!a.context.empty()) {
            auto ctx = fs::weakly_canonical(fs::absolute(a.context), ec);
            auto df_dir = fs::weakly_canonical(df.parent_path(), ec);
            if (ctx != df_dir) {
              throw cairn::DaytonaError(
                  "--context " + a.context +
                  " is not the Dockerfile's directory: COPY sources are resolved relative to the "
                  "Dockerfile, so move it into the context directory");
            }
          }
          params.image = cairn::Image::fromDockerfile(df.string());
        }
        if (a.cpu || a.memory || a.disk || a.gpu) {
          params.resources = cairn::Resources{a.cpu, a.gpu, a.memory, a.disk, std::nullopt};
        }
        params.entrypoint = a.entrypoint;
        auto daytona = connect(conn);
        cairn::CreateOptions options;
        options.timeout = a.timeout;
        // The server's build log is the plain progress stream: drawn as the compact view when
        // stdout (where it goes) is a terminal.
        std::optional<cairn::build::TtyProgressSink> tty;
        if (cairn::build::useTtyProgress(mode, STDOUT_FILENO, std::getenv("TERM"))) {
          cairn::build::TtyProgressSink::Options tty_options;
          tty_options.fd = STDOUT_FILENO;
          tty.emplace(tty_options);
          // Chunks come right-trimmed, as the plain branch below knows: each ends a line.
          options.onLogs = [&tty](std::string_view chunk) {
            tty->write(chunk);
            if (!chunk.empty() && chunk.back() != '\n') tty->write("\n");
          };
        } else {
          options.onLogs = [](std::string_view chunk) {
            std::cout << chunk;
            if (!chunk.empty() && chunk.back() != '\n') std::cout << '\n';
            std::cout.flush();
          };
        }
        auto s = daytona.snapshot.create(std::move(params), options);
        if (tty) tty->finish();
        std::cout << "snapshot " << s.name << " is " << s.state.str() << "\n";
        if (!(s.state == cairn::SnapshotState::Kind::kActive)) cairn::cli::setExitCode(1);
      });
    });
  }

  // list
  {
    struct Args {
      std::optional<long> page, limit;
      std::string name;
      bool json = false;
    };
    static Args a;
    auto* c = cmd->add_subcommand("list", "List snapshots as a table (or --json)");
    c->add_option("--page", a.page, "Page number (from 1)")->check(CLI::PositiveNumber);
    c->add_option("--limit", a.limit, "Snapshots per page")->check(CLI::PositiveNumber);
    c->add_option("--name", a.name, "Only snapshots whose name contains this");
    c->add_flag("--json", a.json, "Print the server's paginated result as JSON");
    c->callback([] {
      guarded([] {
        auto daytona = connect(conn);
        cairn::ListSnapshotsQuery q;
        q.page = a.page;
        q.limit = a.limit;
        if (!a.name.empty()) q.name = a.name;
        auto result = daytona.snapshot.list(q);
        if (a.json) {
          cairn::Json items = cairn::Json::array();
          for (const auto& s : result.items)
            items.push_back(cairn::snapshotToJson(s));
          cairn::Json out = {{"items", items},
                             {"total", result.total},
                             {"page", result.page},
                             {"totalPages", result.totalPages}};
          std::cout << out.dump(2) << "\n";
          return;
        }
        std::vector<std::vector<std::string>> rows = {
            {"NAME", "STATE", "SIZE", "CPU/MEM/DISK", "CREATED"}};
        for (const auto& s : result.items)
          rows.push_back(snapshotRow(s));
        printTable(rows);
        if (result.totalPages > 1) {
          std::cout << "page " << result.page << " of " << result.totalPages << " (" << result.total
                    << " snapshots; --page N for more)\n";
        }
      });
    });
  }

  // get
  {
    static std::string name;
    static bool json = false;
    auto* c = cmd->add_subcommand("get", "Show one snapshot (by name or id)");
    c->add_option("name", name, "Snapshot name or id")->required();
    c->add_flag("--json", json, "Print the snapshot as JSON");
    c->callback([] {
      guarded([] {
        auto daytona = connect(conn);
        auto s = daytona.snapshot.get(name);
        if (json) {
          std::cout << cairn::snapshotToJson(s).dump(2) << "\n";
        } else {
          printSnapshot(s);
        }
      });
    });
  }

  // delete
  {
    static std::vector<std::string> names;
    auto* c = cmd->add_subcommand("delete", "Delete snapshots (by name or id)");
    c->alias("rm");
    c->add_option("names", names, "Snapshot names or ids")->required();
    c->callback([] {
      // Every name is tried; the exit code says whether any failed.
      for (const auto& n : names) {
        guarded([&n] {
          auto daytona = connect(conn);
          daytona.snapshot.remove(n);
          std::cout << "deleted " << n << "\n";
        });
      }
    });
  }

  // logs
  {
    static std::string name;
    static bool follow = false;
    auto* c = cmd->add_subcommand("logs", "Print a snapshot's build log");
    c->add_option("name", name, "Snapshot name or id")->required();
    c->add_flag("-f,--follow", follow, "Keep printing until the build ends");
    c->callback([] {
      guarded([] {
        auto daytona = connect(conn);
        daytona.snapshot.logs(name, follow, [](std::string_view chunk) {
          std::cout << chunk;
          std::cout.flush();
        });
      });
    });
  }

  // activate / deactivate
  {
    static std::string name;
    auto* c = cmd->add_subcommand("activate", "Make an inactive snapshot usable again");
    c->add_option("name", name, "Snapshot name or id")->required();
    c->callback([] {
      guarded([] {
        auto daytona = connect(conn);
        auto s = daytona.snapshot.activate(name);
        std::cout << "snapshot " << s.name << " is " << s.state.str() << "\n";
      });
    });
  }
  {
    static std::string name;
    auto* c = cmd->add_subcommand("deactivate", "Mark a snapshot inactive");
    c->add_option("name", name, "Snapshot name or id")->required();
    c->callback([] {
      guarded([] {
        auto daytona = connect(conn);
        daytona.snapshot.deactivate(name);
        std::cout << "deactivated " << name << "\n";
      });
    });
  }
}

CAIRN_REGISTER_SUBCOMMAND(300, "snapshot",
                          "Create, list, inspect and delete snapshots on a Cairn or Daytona server",
                          registerSnapshot);

}  // namespace
