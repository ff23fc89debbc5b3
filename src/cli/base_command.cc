// `cairn base bootstrap`: Debian base images without Docker Hub. mmdebstrap builds a root
// filesystem from the machine's configured Debian mirror; it becomes a one-layer image in the
// local store (and, with --push, in a registry).
//
//   cairn base bootstrap --suite bookworm --variant minbase --include python3 --tag debian-py
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>

#include "cairn/cli/command.h"
#include "cairn/cli/gc_guard.h"
#include "cairn/common/fs.h"
#include "cairn/common/strings.h"
#include "cairn/layer/stream.h"
#include "cairn/oci/catalog.h"
#include "cairn/oci/reference.h"
#include "cairn/oci/tar_image.h"
#include "cairn/registry/client.h"
#include "cairn/registry/config.h"
#include "cairn/registry/transfer.h"
#include "cairn/store/local_blob_store.h"

namespace {

namespace fs = std::filesystem;
using cairn::Result;
using cairn::Status;

struct BaseFlags {
  std::string suite = "bookworm";
  std::string variant = "minbase";
  std::string include;
  std::string tag;
  std::string mirror;
  std::string push;
  std::string compression = "zstd";
  std::string registry_config;
};

// The first URIs: line of the machine's deb822 apt sources, as scripts/install-deps sets it.
Result<std::string> machineMirror() {
  for (const char* path : {"/etc/apt/sources.list.d/debian.sources"}) {
    auto text = cairn::readFile(path);
    if (!text.ok()) continue;
    for (const auto& line : cairn::splitString(*text, '\n')) {
      auto trimmed = cairn::trimSpace(line);
      if (trimmed.starts_with("URIs:")) {
        auto uris = cairn::splitString(std::string(cairn::trimSpace(trimmed.substr(5))), ' ');
        if (!uris.empty() && !uris[0].empty()) return uris[0];
      }
    }
  }
  return cairn::notFound(
      "no Debian mirror configured in /etc/apt/sources.list.d/debian.sources; pass --mirror URL");
}

bool isSimpleWord(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '+' ||
          c == '_' || c == ',' || c == ':')) {
      return false;
    }
  }
  return true;
}

// mmdebstrap's variants (its --help); checked here so that a typo gets a clear error before
// anything runs.
constexpr std::string_view kVariants[] = {"extract",     "custom",  "essential", "apt",
                                          "required",    "minbase", "buildd",    "important",
                                          "debootstrap", "standard"};

bool isSuiteName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) {
      return false;
    }
  }
  return true;
}

// The "E:" lines of mmdebstrap's output (its own summary of what went wrong), else its tail.
std::string errorLines(const std::string& output) {
  std::string out;
  for (const auto& line : cairn::splitString(output, '\n')) {
    if (line.starts_with("E: ")) out += (out.empty() ? "" : "; ") + line.substr(3);
  }
  if (out.empty()) out = output.size() > 400 ? output.substr(output.size() - 400) : output;
  return std::string(cairn::trimSpace(out));
}

// Runs mmdebstrap (no shell). Its output goes on to our stderr so the user sees progress, and
// is kept so that a failure can say why.
Status runMmdebstrap(const BaseFlags& flags, const std::string& mirror, const fs::path& out) {
  std::vector<std::string> argv = {"mmdebstrap", "--quiet", "--variant=" + flags.variant,
                                   "--format=tar"};
  if (!flags.include.empty()) argv.push_back("--include=" + flags.include);
  argv.push_back(flags.suite);
  argv.push_back(out.string());
  argv.push_back(mirror);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return cairn::errnoStatus(errno, "pipe");
  cairn::UniqueFd read_end(pipefd[0]);
  cairn::UniqueFd write_end(pipefd[1]);
  pid_t pid = ::fork();
  if (pid < 0) return cairn::errnoStatus(errno, "fork");
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  write_end.reset();
  std::string output;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::cerr.write(buf, n);
    output.append(buf, static_cast<std::size_t>(n));
    if (output.size() > 64 * 1024) output.erase(0, output.size() - 32 * 1024);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return cairn::errnoStatus(errno, "waitpid mmdebstrap");
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    return cairn::failedPrecondition("mmdebstrap is not installed (apt-get install mmdebstrap)");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string why = errorLines(output);
    std::string msg = "mmdebstrap " + flags.suite + "/" + flags.variant + " from " + mirror +
                      " failed (" +
                      (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                         : "signal " + std::to_string(WTERMSIG(status))) +
                      ")" + (why.empty() ? "" : ": " + why);
    // apt's own message for a missing suite is only "apt-get update failed" under --quiet.
    if (why.find("apt-get update") != std::string::npos) {
      msg += " (does the mirror have a suite \"" + flags.suite +
             "\"? e.g. bookworm, trixie; or is the mirror unreachable?)";
    } else if (why.find("nable to locate package") != std::string::npos ||
               why.find("has no installation candidate") != std::string::npos) {
      msg += " (check the --include package names)";
    }
    return cairn::failedPrecondition(msg);
  }
  return cairn::okStatus();
}

Status bootstrap(const cairn::cli::GlobalOptions& options, const BaseFlags& flags) {
  if (!isSuiteName(flags.suite)) {
    return cairn::invalidArgument("--suite \"" + flags.suite +
                                  "\" is not a Debian suite name (e.g. bookworm, trixie, stable)");
  }
  if (std::find(std::begin(kVariants), std::end(kVariants), flags.variant) == std::end(kVariants)) {
    std::vector<std::string> names(std::begin(kVariants), std::end(kVariants));
    return cairn::invalidArgument(
        "--variant \"" + flags.variant +
        "\" is not an mmdebstrap variant (one of: " + cairn::joinStrings(names, ", ") + ")");
  }
  if (!flags.include.empty() && !isSimpleWord(flags.include)) {
    return cairn::invalidArgument("--include \"" + flags.include +
                                  "\" must be a comma-separated list of package names");
  }
  CAIRN_ASSIGN_OR_RETURN(std::string name, cairn::oci::ImageCatalog::normalizeName(flags.tag));
  CAIRN_ASSIGN_OR_RETURN(auto compression, cairn::layer::parseCompression(flags.compression));
  std::string mirror = flags.mirror;
  if (mirror.empty()) {
    CAIRN_ASSIGN_OR_RETURN(mirror, machineMirror());
  }

  fs::path data_dir = cairn::cli::resolvedDataDir(options);
  CAIRN_ASSIGN_OR_RETURN(auto gc_guard, cairn::cli::deferStoreGc(data_dir));
  CAIRN_ASSIGN_OR_RETURN(auto blobs, cairn::store::LocalBlobStore::open(data_dir));
  CAIRN_ASSIGN_OR_RETURN(auto catalog, cairn::oci::ImageCatalog::open(data_dir));
  std::error_code ec;
  fs::create_directories(data_dir / "work", ec);
  CAIRN_ASSIGN_OR_RETURN(cairn::TempDir work, cairn::TempDir::create("base", data_dir / "work"));
  fs::path tar = work.path() / "rootfs.tar";
  std::cerr << "mmdebstrap " << flags.suite << " (" << flags.variant
            << (flags.include.empty() ? "" : ", +" + flags.include) << ") from " << mirror << "\n";
  CAIRN_RETURN_IF_ERROR(runMmdebstrap(flags, mirror, tar));

  cairn::UniqueFd fd(::open(tar.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return cairn::errnoStatus(errno, "open " + tar.string());
  cairn::layer::FdSource source(fd.get());
  cairn::oci::ImageConfig config = cairn::oci::defaultConfig();
  config.config->labels["org.opencontainers.image.base.name"] = "debian:" + flags.suite;
  config.config->labels["dev.cairn.base.variant"] = flags.variant;
  if (!flags.include.empty()) config.config->labels["dev.cairn.base.include"] = flags.include;
  std::string created_by = "cairn base bootstrap --suite " + flags.suite + " --variant " +
                           flags.variant +
                           (flags.include.empty() ? "" : " --include " + flags.include);
  CAIRN_ASSIGN_OR_RETURN(auto manifest, cairn::oci::createImageFromTar(*blobs, source, config,
                                                                       compression, created_by));
  CAIRN_RETURN_IF_ERROR(catalog->tag(name, manifest, "base " + flags.suite + "/" + flags.variant));
  std::cout << "Created " << name << "\nDigest: " << manifest.digest.str() << "\n";

  if (!flags.push.empty()) {
    CAIRN_ASSIGN_OR_RETURN(auto dest, cairn::oci::Reference::parse(flags.push));
    dest = dest.withDefaultTag();
    CAIRN_ASSIGN_OR_RETURN(
        auto rc, cairn::registry::RegistryConfig::loadDefault(data_dir, flags.registry_config));
    cairn::registry::RegistryClient client(rc);
    CAIRN_ASSIGN_OR_RETURN(auto pushed, cairn::registry::pushImage(client, *blobs, manifest, dest));
    std::cout << "Pushed " << dest.str() << " (" << pushed.uploaded << " blobs uploaded)\n";
  }
  return cairn::okStatus();
}

void registerBase(CLI::App& command, cairn::cli::GlobalOptions& options) {
  auto* base = &command;
  base->require_subcommand(1);
  auto flags = std::make_shared<BaseFlags>();
  auto* boot = base->add_subcommand(
      "bootstrap", "Build a Debian root filesystem with mmdebstrap and import it as an image");
  boot->add_option("--suite", flags->suite, "Debian suite (default bookworm)");
  boot->add_option("--variant", flags->variant, "mmdebstrap variant (default minbase)");
  boot->add_option("--include", flags->include, "Extra packages, comma-separated");
  boot->add_option("--tag", flags->tag, "Local image name, e.g. debian-python:bookworm")
      ->required();
  boot->add_option("--mirror", flags->mirror,
                   "Debian mirror URL (default: this machine's apt configuration)");
  boot->add_option("--push", flags->push, "Also push the image to this registry reference");
  boot->add_option("--compression", flags->compression, "zstd (default) or gzip");
  boot->add_option("--registry-config", flags->registry_config, "Registry config JSON")
      ->envname("CAIRN_REGISTRY_CONFIG");
  boot->callback([&options, flags] {
    Status s = bootstrap(options, *flags);
    if (!s.ok()) {
      std::cerr << "error: " << s.message() << "\n";
      cairn::cli::setExitCode(1);
    }
  });
}

CAIRN_REGISTER_SUBCOMMAND(310, "base", "Debian base images without Docker Hub", registerBase);

}  // namespace
