// `cairn build`: builds a Dockerfile into the local store, like `docker build`.
//
//   cairn build -f Dockerfile -t NAME [--build-arg K=V …] [--target S] [--no-cache]
//               [--network default|none|host] [--progress auto|plain|tty]
//               [--secret id=X,src=FILE|env=VAR …] [--ssh default|ID=SOCKET …]
//               [--memory 2g] [--cpu N] [--pids N]
//               [--parallel-stages N] CONTEXT
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cairn/build/builder.h"
#include "cairn/build/tty_progress.h"
#include "cairn/cli/command.h"
#include "cairn/cli/gc_guard.h"
#include "cairn/common/fs.h"
#include "cairn/oci/catalog.h"
#include "cairn/oci/reference.h"
#include "cairn/registry/client.h"
#include "cairn/registry/config.h"
#include "cairn/registry/transfer.h"
#include "cairn/runtime/executor.h"
#include "cairn/store/layer_store.h"
#include "cairn/store/local_blob_store.h"

namespace {

namespace fs = std::filesystem;
using cairn::Result;
using cairn::Status;

struct BuildFlags {
  std::string file;
  std::vector<std::string> tags;
  std::vector<std::string> build_args;
  std::string target;
  bool no_cache = false;
  std::string network = "default";
  std::string progress = "auto";
  std::string context = ".";
  std::string runtime = "crun";
  std::vector<std::string> secrets;
  std::vector<std::string> ssh;
  std::string memory;
  double cpus = 0;
  std::int64_t pids = 0;
  int parallel_stages = 3;
};

Status doBuild(const cairn::cli::GlobalOptions& options, const BuildFlags& flags) {
  CAIRN_ASSIGN_OR_RETURN(cairn::build::ProgressMode progress_mode,
                         cairn::build::parseProgressMode(flags.progress));
  fs::path data_dir = cairn::cli::resolvedDataDir(options);
  CAIRN_ASSIGN_OR_RETURN(auto gc_guard, cairn::cli::deferStoreGc(data_dir));
  CAIRN_ASSIGN_OR_RETURN(auto blobs, cairn::store::LocalBlobStore::open(data_dir));
  CAIRN_ASSIGN_OR_RETURN(auto layers, cairn::store::LayerStore::open(data_dir));
  CAIRN_ASSIGN_OR_RETURN(auto catalog, cairn::oci::ImageCatalog::open(data_dir));
  cairn::runtime::ExecutorOptions executor_options;
  executor_options.work_root = data_dir / "work" / "run";
  executor_options.runtime = flags.runtime;
  CAIRN_ASSIGN_OR_RETURN(auto executor, cairn::runtime::Executor::create(executor_options));

  cairn::build::BuilderOptions bo;
  bo.data_dir = data_dir;
  bo.blobs = blobs.get();
  bo.layers = layers.get();
  bo.catalog = catalog.get();
  bo.executor = executor.get();
  bo.fetch = [&](const std::string& reference,
                 cairn::build::Progress& progress) -> Result<cairn::oci::Descriptor> {
    CAIRN_ASSIGN_OR_RETURN(auto config, cairn::registry::RegistryConfig::loadDefault(data_dir, ""));
    CAIRN_ASSIGN_OR_RETURN(cairn::oci::Reference ref, cairn::oci::Reference::parse(reference));
    ref = ref.withDefaultTag();
    auto v = progress.start("[internal] pull " + ref.str());
    cairn::registry::RegistryClient client(config);
    cairn::registry::PullOptions pull;
    pull.unpack = cairn::registry::makeLayerStoreUnpacker(*layers);
    auto result = cairn::registry::pullImage(client, *blobs, ref, pull);
    if (!result.ok()) {
      progress.error(v, result.status().message());
      return result.status();
    }
    CAIRN_RETURN_IF_ERROR(catalog->tag(ref.str(), result->manifest, "pull " + ref.str()));
    progress.done(v);
    return result->manifest;
  };
  CAIRN_ASSIGN_OR_RETURN(auto builder, cairn::build::Builder::open(bo));

  cairn::build::BuildRequest req;
  fs::path context = flags.context;
  fs::path file = flags.file.empty() ? context / "Dockerfile" : fs::path(flags.file);
  auto text = cairn::readFile(file);
  if (!text.ok()) return text.status().withContext("Dockerfile");
  req.dockerfile = *text;
  req.dockerfile_name = file.filename().string();
  req.context_dir = fs::absolute(context);
  for (const auto& kv : flags.build_args) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) {
      // `--build-arg NAME` takes the value from the environment, as docker does.
      if (const char* v = std::getenv(kv.c_str())) req.build_args[kv] = v;
    } else {
      req.build_args[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  req.target = flags.target;
  req.no_cache = flags.no_cache;
  CAIRN_ASSIGN_OR_RETURN(req.network, cairn::runtime::parseNetworkMode(flags.network));
  req.tags = flags.tags;
  for (const auto& flag : flags.secrets) {
    CAIRN_ASSIGN_OR_RETURN(auto secret, cairn::build::parseSecretFlag(flag));
    req.secrets[secret.first] = std::move(secret.second);
  }
  for (const auto& flag : flags.ssh) {
    CAIRN_ASSIGN_OR_RETURN(auto agent, cairn::build::parseSshFlag(flag));
    req.ssh_agents[agent.first] = std::move(agent.second);
  }
  if (!flags.memory.empty()) {
    CAIRN_ASSIGN_OR_RETURN(req.limits.memory_bytes, cairn::build::parseMemoryLimit(flags.memory));
  }
  if (flags.cpus < 0 || flags.pids < 0 || flags.parallel_stages < 1) {
    return cairn::invalidArgument("--cpu and --pids must not be negative, --parallel-stages >= 1");
  }
  req.limits.cpus = flags.cpus;
  req.limits.pids = flags.pids;
  req.max_parallel_stages = flags.parallel_stages;

  // The log goes to stderr (stdout gets the digest): the compact view when stderr is a
  // terminal, BuildKit's plain stream on a pipe or a file.
  std::unique_ptr<cairn::build::LogSink> sink;
  cairn::build::TtyProgressSink* tty = nullptr;
  if (cairn::build::useTtyProgress(progress_mode, STDERR_FILENO, std::getenv("TERM"))) {
    cairn::build::TtyProgressSink::Options tty_options;
    tty_options.fd = STDERR_FILENO;
    auto view = std::make_unique<cairn::build::TtyProgressSink>(tty_options);
    tty = view.get();
    sink = std::move(view);
  } else {
    sink = std::make_unique<cairn::build::StreamLogSink>(stderr);
  }
  auto result = builder->build(req, *sink);
  if (tty != nullptr) tty->finish();
  if (!result.ok()) return result.status();
  std::cout << result->manifest.digest.str() << "\n";
  return cairn::okStatus();
}

void registerBuild(CLI::App& command, cairn::cli::GlobalOptions& options) {
  auto flags = std::make_shared<BuildFlags>();
  auto* cmd = &command;
  cmd->add_option("-f,--file", flags->file, "Dockerfile (default: CONTEXT/Dockerfile)");
  cmd->add_option("-t,--tag", flags->tags, "Name to tag the image with (repeatable)");
  cmd->add_option("--build-arg", flags->build_args, "Build-time variable K=V (repeatable)");
  cmd->add_option("--target", flags->target, "Build this stage");
  cmd->add_flag("--no-cache", flags->no_cache, "Do not use the step cache");
  cmd->add_option("--network", flags->network, "RUN network: default|none|host");
  cmd->add_option("--progress", flags->progress,
                  "auto (tty on a terminal, else plain) | plain | tty");
  cmd->add_option("--runtime", flags->runtime, "OCI runtime for RUN steps (crun, runc)");
  cmd->add_option("--secret", flags->secrets,
                  "Secret for RUN --mount=type=secret: id=X,src=FILE or id=X,env=VAR (repeatable)");
  cmd->add_option("--ssh", flags->ssh,
                  "SSH agent for RUN --mount=type=ssh: default ($SSH_AUTH_SOCK) or ID=SOCKET "
                  "(repeatable)");
  cmd->add_option("--memory", flags->memory, "Memory limit per RUN step: 512m, 2g, or GB (0.5)");
  cmd->add_option("--cpu", flags->cpus, "CPUs per RUN step (fractions allowed)");
  cmd->add_option("--pids", flags->pids, "Maximum number of processes per RUN step");
  cmd->add_option("--parallel-stages", flags->parallel_stages,
                  "How many independent stages build at once (default 3)");
  cmd->add_option("context", flags->context, "Build context directory")->required();
  cmd->callback([&options, flags] {
    Status s = doBuild(options, *flags);
    if (!s.ok()) {
      std::cerr << "error: " << s.message() << "\n";
      cairn::cli::setExitCode(1);
    }
  });
}

CAIRN_REGISTER_SUBCOMMAND(30, "build", "Build an image from a Dockerfile into the local store",
                          registerBuild);

}  // namespace
