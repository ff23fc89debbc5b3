// `cairn base bootstrap`: Debian base images without Docker Hub. mmdebstrap builds a root
// filesystem from the machine's configured Debian mirror; it becomes a one-layer image in the
// local store (and, with --push, in a registry).
//
//   cairn base bootstrap --suite bookworm --variant minbase --include python3 --tag debian-py
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>

#include "cairn/cli/command.h"
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

// Runs mmdebstrap (no shell), its output going to our stderr so the user sees progress.
Status runMmdebstrap(const BaseFlags& flags, const std::string& mirror, const fs::path& out) {
  std::vector<std::string> argv = {"mmdebstrap", "--quiet", "--variant=" + flags.variant,
                                   "--format=tar"};
  if (!flags.include.empty()) argv.push_back("--include=" + flags.include);
  argv.push_back(flags.suite);
  argv.push_back(out.string());
  argv.push_back(mirror);
  pid_t pid = ::fork();
  if (pid < 0) return cairn::errnoStatus(errno, "fork");
  if (pid == 0) {
    ::dup2(2, 1);
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return cairn::errnoStatus(errno, "waitpid mmdebstrap");
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    return cairn::failedPrecondition("mmdebstrap is not installed (apt-get install mmdebstrap)");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return cairn::internalError("mmdebstrap " + cairn::joinStrings(argv, " ") + " failed (" +
                                (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                                   : "signal " + std::to_string(WTERMSIG(status))) +
                                ")");
  }
  return cairn::okStatus();
}

Status bootstrap(const cairn::cli::GlobalOptions& options, const BaseFlags& flags) {
  for (const auto& [name, value] :
       {std::pair{"--suite", flags.suite}, std::pair{"--variant", flags.variant}}) {
    if (!isSimpleWord(value)) {
      return cairn::invalidArgument(std::string(name) + " \"" + value + "\" is not a plain word");
    }
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

void registerBase(CLI::App& app, cairn::cli::GlobalOptions& options) {
  auto* base = app.add_subcommand("base", "Debian base images without Docker Hub");
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

CAIRN_REGISTER_COMMAND(310, registerBase);

}  // namespace
