// `cairn run`: runs a command in a sandbox over a stored image or a root filesystem, with an
// ephemeral upper dir, resource limits and the chosen network; exits with the command's status.
//
//   cairn run --memory 0.5 --network none busybox:latest sh -c 'echo hi'
//   cairn run --rootfs ./rootfs -- /bin/sh -c 'echo hi'
//
// An IMAGE is looked up in the local catalog (name → manifest → config); its layers are made
// present in the LayerStore (imported from their blobs when missing) and become the overlay's
// lower dirs. The image's entrypoint, cmd, env, workdir and user apply as docker applies them:
// a COMMAND replaces Cmd (not Entrypoint), -e adds to or overrides the image's variables, and
// -w/-u override the image's values.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <iostream>
#include <thread>

#include "cairn/cli/command.h"
#include "cairn/common/log.h"
#include "cairn/layer/chain_id.h"
#include "cairn/oci/catalog.h"
#include "cairn/runtime/executor.h"
#include "cairn/runtime/seccomp_profile.h"
#include "cairn/store/layer_store.h"
#include "cairn/store/local_blob_store.h"

namespace {

namespace fs = std::filesystem;
using cairn::Result;
using cairn::Status;

struct RunFlags {
  std::string image;
  std::string rootfs;
  double cpus = 0;
  double memory_gb = 0;
  std::int64_t pids = 0;
  std::string network = "default";
  std::vector<std::string> env;
  std::string workdir;  // "" = the image's, else "/"
  std::string user;
  bool tty = false;
  double timeout_s = 0;
  std::string runtime = "crun";
  std::string hostname = "cairn";
  std::vector<std::string> security_opts;  // docker run --security-opt
  std::vector<std::string> command;
};

// What an image run keeps alive until the sandbox ends: the layer store and a lease on the
// image's top layer, so a concurrent garbage collection cannot remove the lower dirs.
struct ImageHold {
  std::unique_ptr<cairn::store::LayerStore> layers;
  cairn::store::LayerLease lease;
  cairn::oci::ContainerConfig config;
  bool has_config = false;
};

// Replaces or adds KEY=value entries of `base` with those of `overrides` (docker run -e).
std::vector<std::string> mergeEnv(std::vector<std::string> base,
                                  const std::vector<std::string>& overrides) {
  for (const auto& kv : overrides) {
    const auto key = kv.substr(0, kv.find('='));
    bool replaced = false;
    for (auto& existing : base) {
      if (existing.substr(0, existing.find('=')) == key) {
        existing = kv;
        replaced = true;
      }
    }
    if (!replaced) base.push_back(kv);
  }
  return base;
}

// Makes the image's layers present and returns the overlay lower dirs, topmost first.
Result<std::vector<fs::path>> prepareImage(const RunFlags& flags, const fs::path& data_dir,
                                           ImageHold& hold) {
  CAIRN_ASSIGN_OR_RETURN(auto catalog, cairn::oci::ImageCatalog::open(data_dir));
  auto entry = catalog->get(flags.image);
  if (!entry.ok()) {
    return cairn::notFound("image \"" + flags.image + "\" is not in the local store " +
                           data_dir.string() +
                           " (see `cairn image list`; get one with `cairn image pull`, "
                           "`cairn build` or `cairn base bootstrap`)");
  }
  CAIRN_ASSIGN_OR_RETURN(auto blobs, cairn::store::LocalBlobStore::open(data_dir));
  CAIRN_ASSIGN_OR_RETURN(auto image, cairn::oci::loadImage(*blobs, entry->descriptor));
  if (image.config.diff_ids.size() != image.manifest.layers.size()) {
    return cairn::invalidArgument("image \"" + flags.image + "\": config has " +
                                  std::to_string(image.config.diff_ids.size()) + " diff ids for " +
                                  std::to_string(image.manifest.layers.size()) + " layers");
  }
  if (image.manifest.layers.empty())
    return cairn::invalidArgument("image \"" + flags.image + "\" has no layers: nothing to run");
  CAIRN_ASSIGN_OR_RETURN(hold.layers, cairn::store::LayerStore::open(data_dir));
  cairn::layer::ApplyOptions apply;
  apply.preserve_owner = ::geteuid() == 0;
  cairn::Digest parent;
  for (std::size_t i = 0; i < image.manifest.layers.size(); ++i) {
    const cairn::Digest& diff = image.config.diff_ids[i];
    cairn::Digest chain = cairn::layer::chainId(parent, diff);
    if (!hold.layers->exists(chain)) {
      auto info =
          hold.layers->importBlob(*blobs, image.manifest.layers[i].digest, parent, diff, apply);
      if (!info.ok()) {
        return cairn::Status(info.status().code(), "image \"" + flags.image + "\", layer " +
                                                       image.manifest.layers[i].digest.str() +
                                                       ": " + std::string(info.status().message()));
      }
      chain = info->chain_id;
    }
    parent = chain;
  }
  CAIRN_ASSIGN_OR_RETURN(hold.lease, hold.layers->lease(parent));
  if (image.config.config) {
    hold.config = *image.config.config;
    hold.has_config = true;
  }
  return hold.layers->lowerDirs(parent);
}

// The layer (topmost first) that holds etc/passwd, for resolving -u/USER by name.
fs::path userRoot(const std::vector<fs::path>& lowers) {
  std::error_code ec;
  for (const auto& dir : lowers)
    if (fs::exists(dir / "etc/passwd", ec)) return dir;
  return lowers.front();
}

Result<cairn::runtime::ContainerSpec> makeSpec(const RunFlags& flags, const fs::path& data_dir,
                                               ImageHold& hold) {
  cairn::runtime::ContainerSpec spec;
  std::string workdir = flags.workdir;
  std::string user = flags.user;
  std::vector<std::string> env = flags.env;
  std::vector<std::string> args = flags.command;
  if (flags.rootfs.empty()) {
    if (flags.image.empty()) return cairn::invalidArgument("give an IMAGE or --rootfs DIR");
    CAIRN_ASSIGN_OR_RETURN(spec.rootfs.lower_dirs, prepareImage(flags, data_dir, hold));
    if (hold.has_config) {
      const auto& c = hold.config;
      // docker: COMMAND replaces Cmd; Entrypoint stays in front of whichever is used.
      std::vector<std::string> tail =
          args.empty() ? c.cmd.value_or(std::vector<std::string>{}) : args;
      args = c.entrypoint.value_or(std::vector<std::string>{});
      args.insert(args.end(), tail.begin(), tail.end());
      env = mergeEnv(c.env, flags.env);
      if (workdir.empty()) workdir = c.working_dir;
      if (user.empty()) user = c.user;
    }
    if (args.empty()) {
      return cairn::invalidArgument("image \"" + flags.image +
                                    "\" has no entrypoint or cmd: give a command "
                                    "(cairn run IMAGE -- CMD ...)");
    }
  } else {
    std::error_code ec;
    fs::path rootfs = fs::canonical(flags.rootfs, ec);
    if (ec || !fs::is_directory(rootfs))
      return cairn::notFound("--rootfs " + flags.rootfs + " is not a directory");
    spec.rootfs.lower_dirs = {rootfs};  // ephemeral upper: the rootfs itself is never written
  }
  if (args.empty()) return cairn::invalidArgument("no command given (cairn run ... -- CMD)");
  spec.process.args = args;
  spec.process.env = env;
  spec.process.cwd = workdir.empty() ? "/" : workdir;
  spec.process.terminal = flags.tty;
  spec.hostname = flags.hostname;
  if (!user.empty()) {
    CAIRN_ASSIGN_OR_RETURN(auto resolved,
                           cairn::runtime::resolveUser(userRoot(spec.rootfs.lower_dirs), user));
    spec.process.uid = resolved.uid;
    spec.process.gid = resolved.gid;
    spec.process.additional_gids = resolved.additional_gids;
    if (!resolved.home.empty()) spec.process.env.push_back("HOME=" + resolved.home);
  }
  CAIRN_ASSIGN_OR_RETURN(spec.network, cairn::runtime::parseNetworkMode(flags.network));
  if (flags.memory_gb < 0 || flags.cpus < 0 || flags.pids < 0 || flags.timeout_s < 0)
    return cairn::invalidArgument("--cpu, --memory, --pids and --timeout must not be negative");
  spec.limits.cpus = flags.cpus;
  spec.limits.memory_bytes =
      static_cast<std::int64_t>(std::llround(flags.memory_gb * 1024.0 * 1024 * 1024));
  spec.limits.pids = flags.pids;
  spec.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(flags.timeout_s * 1000));
  for (const std::string& opt : flags.security_opts) {
    // Docker's spellings: seccomp=VALUE, and the older seccomp:VALUE.
    std::string_view v = opt;
    if (!v.starts_with("seccomp=") && !v.starts_with("seccomp:")) {
      return cairn::invalidArgument("--security-opt '" + opt +
                                    "': only seccomp=unconfined|default|PROFILE.json is supported");
    }
    auto seccomp = cairn::runtime::parseSeccompOption(v.substr(8));
    if (!seccomp.ok()) {
      return cairn::invalidArgument("--security-opt '" + opt + "': " + seccomp.status().message());
    }
    spec.seccomp = std::move(*seccomp);
  }
  return spec;
}

int runSandbox(const RunFlags& flags, const cairn::cli::GlobalOptions& options) {
  // SIGINT/SIGTERM become a cancel, so the sandbox is killed and cleaned up; blocked before any
  // thread exists so every thread inherits the mask (spawned children get it cleared).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const fs::path data_dir = cairn::cli::resolvedDataDir(options);
  cairn::runtime::ExecutorOptions executor_options;
  executor_options.work_root = data_dir / "work" / "run";
  executor_options.runtime = flags.runtime;
  executor_options.defer_ephemeral_removal = true;
  auto executor = cairn::runtime::Executor::create(executor_options);
  if (!executor.ok()) {
    std::cerr << "cairn run: " << executor.status().message() << "\n";
    return 125;
  }
  // The runtime starts loading now, while the image's layers and the spec are prepared below
  // (see runtime::PreparedRun). Should that fail, the PreparedRun stops it on the way out.
  auto prepared = (*executor)->prepare(
      {.attach = true, .terminal = flags.tty, .memory_limited = flags.memory_gb > 0});
  if (!prepared.ok()) {
    std::cerr << "cairn run: " << prepared.status().message() << "\n";
    return 125;
  }
  // Leftovers of crashed runs (their dirs are unlocked; this run's is locked, so it stays).
  if (Status s = (*executor)->cleanupStale(/*include_trash=*/false); !s.ok())
    spdlog::warn("cleaning up leftovers of earlier runs: {}", s.toString());
  // The work dirs earlier runs left behind are removed while this sandbox runs: removing
  // directories is nearly all waiting on the filesystem (~20 ms a run dir here), so overlapping
  // it with the sandbox's start keeps it off the time to exit. This run's own dir is left for
  // the next one (defer_ephemeral_removal).
  std::atomic<bool> stop_sweeping{false};
  std::thread sweeper([&executor, &stop_sweeping] {
    if (Status s = (*executor)->sweepTrash(&stop_sweeping); !s.ok())
      spdlog::warn("removing the work dirs of earlier runs: {}", s.toString());
  });
  // Whatever the sweep has not removed when this returns waits for the next run: the exit
  // status must not.
  auto stopSweeping = [&] {
    stop_sweeping = true;
    sweeper.join();
  };

  ImageHold hold;
  auto spec = makeSpec(flags, data_dir, hold);
  if (!spec.ok()) {
    stopSweeping();
    std::cerr << "cairn run: " << spec.status().message() << "\n";
    // A flag the user got wrong is usage (2); an image that cannot be prepared is 125, as
    // docker says when the container could not be run.
    return spec.status().code() == cairn::StatusCode::kInvalidArgument ? 2 : 125;
  }

  cairn::runtime::CancelToken cancel;
  std::thread([&cancel, signals] {
    int sig = 0;
    if (sigwait(&signals, &sig) == 0) cancel.cancel();
  }).detach();

  cairn::runtime::RunIo io;
  io.attach = true;
  io.cancel = &cancel;
  auto result = (*executor)->run(*spec, io, std::move(*prepared));
  stopSweeping();
  if (!result.ok()) {
    std::cerr << "cairn run: " << result.status().message() << "\n";
    return 125;  // docker's code for "the container could not be run"
  }
  if (Status s = result->toStatus(); !s.ok() && (result->oom_killed || result->timed_out))
    std::cerr << "cairn run: " << s.message() << "\n";
  return result->status.shellCode();
}

// CLI11 with positionals_at_end() stops option parsing at the first positional, so a `--`
// after IMAGE arrives as the command's first word, and with --rootfs the first word of the
// command lands in `image`.
void finishRunArgs(RunFlags& flags) {
  if (!flags.rootfs.empty() && !flags.image.empty()) {
    flags.command.insert(flags.command.begin(), flags.image);
    flags.image.clear();
  }
  if (!flags.command.empty() && flags.command.front() == "--")
    flags.command.erase(flags.command.begin());
}

void registerRun(CLI::App& command, cairn::cli::GlobalOptions& options) {
  auto flags = std::make_shared<RunFlags>();
  auto* cmd = &command;
  cmd->add_option("--rootfs", flags->rootfs, "Root filesystem directory (not modified)");
  cmd->add_option("--cpu", flags->cpus, "CPUs (fractions allowed)");
  cmd->add_option("--memory", flags->memory_gb, "Memory limit in GB");
  cmd->add_option("--pids", flags->pids, "Maximum number of processes");
  cmd->add_option("--network", flags->network, "none | host | default (slirp4netns)");
  // One value per occurrence (repeat the flag), else `-e A=1 IMAGE CMD` swallows IMAGE and CMD.
  cmd->add_option("-e,--env", flags->env, "Environment variable K=V (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("-w,--workdir", flags->workdir,
                  "Working directory inside the sandbox (default: the image's, else /)");
  cmd->add_option("-u,--user", flags->user,
                  "user[:group], by name or number (default: the image's)");
  cmd->add_flag("-t,--tty", flags->tty, "Allocate a terminal");
  cmd->add_option("--timeout", flags->timeout_s, "Kill the sandbox after this many seconds");
  cmd->add_option("--runtime", flags->runtime, "OCI runtime (crun, runc, or a path)");
  cmd->add_option("--hostname", flags->hostname, "Host name inside the sandbox");
  cmd->add_option("--security-opt", flags->security_opts,
                  "seccomp=unconfined | seccomp=default | seccomp=PROFILE.json (Docker's format)")
      ->allow_extra_args(false);
  // Positionals: [IMAGE] COMMAND [ARG...]; with --rootfs there is no IMAGE. As with `docker
  // run`, everything after the first positional belongs to the command, options included
  // (`cairn run IMAGE sh -c 'echo hi'`, `cairn run IMAGE ls --color`); a `--` right there is
  // still accepted and dropped.
  cmd->add_option("image", flags->image, "Image to run (omit with --rootfs)");
  cmd->add_option("command", flags->command, "Command and arguments");
  cmd->positionals_at_end();
  cmd->footer("Usage: cairn run [OPTIONS] (--rootfs DIR | IMAGE) [--] [COMMAND [ARG...]]");
  cmd->callback([flags, &options] {
    finishRunArgs(*flags);
    cairn::cli::setExitCode(runSandbox(*flags, options));
  });
}

CAIRN_REGISTER_SUBCOMMAND(300, "run",
                          "Run a command in a sandbox from a stored image (or a root filesystem)",
                          registerRun);

}  // namespace
