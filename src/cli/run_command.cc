// `cairn run`: runs a command in a sandbox over a root filesystem, with an ephemeral upper dir,
// resource limits and the chosen network; exits with the command's status.
//
//   cairn run --rootfs ./rootfs --memory 0.5 --network none -- /bin/sh -c 'echo hi'
//
// Running a stored IMAGE (with its entrypoint, env, workdir and user) comes with the store: the
// IMAGE positional is parsed already (without --rootfs), and imageRunSpec() is where it becomes
// a ContainerSpec.
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <iostream>
#include <thread>

#include "cairn/cli/command.h"
#include "cairn/common/log.h"
#include "cairn/runtime/executor.h"

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
  std::string workdir = "/";
  std::string user;
  bool tty = false;
  double timeout_s = 0;
  std::string runtime = "crun";
  std::string hostname = "cairn";
  std::vector<std::string> command;
};

// The seam for images: until the store exists, only --rootfs is accepted.
Result<cairn::runtime::ContainerSpec> imageRunSpec(const RunFlags& flags) {
  if (!flags.image.empty())
    return cairn::failedPrecondition("running stored image '" + flags.image +
                                     "' needs the image store, which this build lacks; give "
                                     "--rootfs DIR instead");
  return cairn::invalidArgument("give --rootfs DIR (or an IMAGE)");
}

Result<cairn::runtime::ContainerSpec> makeSpec(const RunFlags& flags) {
  cairn::runtime::ContainerSpec spec;
  if (flags.rootfs.empty()) {
    CAIRN_ASSIGN_OR_RETURN(spec, imageRunSpec(flags));
  } else {
    std::error_code ec;
    fs::path rootfs = fs::canonical(flags.rootfs, ec);
    if (ec || !fs::is_directory(rootfs))
      return cairn::notFound("--rootfs " + flags.rootfs + " is not a directory");
    spec.rootfs.lower_dirs = {rootfs};  // ephemeral upper: the rootfs itself is never written
  }
  if (flags.command.empty())
    return cairn::invalidArgument("no command given (cairn run ... -- CMD)");
  spec.process.args = flags.command;
  spec.process.env = flags.env;
  spec.process.cwd = flags.workdir;
  spec.process.terminal = flags.tty;
  spec.hostname = flags.hostname;
  if (!flags.user.empty()) {
    CAIRN_ASSIGN_OR_RETURN(auto user,
                           cairn::runtime::resolveUser(spec.rootfs.lower_dirs.front(), flags.user));
    spec.process.uid = user.uid;
    spec.process.gid = user.gid;
    spec.process.additional_gids = user.additional_gids;
    if (!user.home.empty()) spec.process.env.push_back("HOME=" + user.home);
  }
  CAIRN_ASSIGN_OR_RETURN(spec.network, cairn::runtime::parseNetworkMode(flags.network));
  if (flags.memory_gb < 0 || flags.cpus < 0 || flags.pids < 0 || flags.timeout_s < 0)
    return cairn::invalidArgument("--cpu, --memory, --pids and --timeout must not be negative");
  spec.limits.cpus = flags.cpus;
  spec.limits.memory_bytes =
      static_cast<std::int64_t>(std::llround(flags.memory_gb * 1024.0 * 1024 * 1024));
  spec.limits.pids = flags.pids;
  spec.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(flags.timeout_s * 1000));
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

  auto spec = makeSpec(flags);
  if (!spec.ok()) {
    std::cerr << "cairn run: " << spec.status().message() << "\n";
    return 2;
  }
  cairn::runtime::ExecutorOptions executor_options;
  executor_options.work_root = fs::path(cairn::cli::resolvedDataDir(options)) / "work" / "run";
  executor_options.runtime = flags.runtime;
  auto executor = cairn::runtime::Executor::create(executor_options);
  if (!executor.ok()) {
    std::cerr << "cairn run: " << executor.status().message() << "\n";
    return 125;
  }
  if (Status s = (*executor)->cleanupStale(); !s.ok())
    spdlog::warn("cleaning up leftovers of earlier runs: {}", s.toString());

  cairn::runtime::CancelToken cancel;
  std::thread([&cancel, signals] {
    int sig = 0;
    if (sigwait(&signals, &sig) == 0) cancel.cancel();
  }).detach();

  cairn::runtime::RunIo io;
  io.attach = true;
  io.cancel = &cancel;
  auto result = (*executor)->run(*spec, io);
  if (!result.ok()) {
    std::cerr << "cairn run: " << result.status().message() << "\n";
    return 125;  // docker's code for "the container could not be run"
  }
  if (Status s = result->toStatus(); !s.ok() && (result->oom_killed || result->timed_out))
    std::cerr << "cairn run: " << s.message() << "\n";
  return result->status.shellCode();
}

void registerRun(CLI::App& app, cairn::cli::GlobalOptions& options) {
  auto flags = std::make_shared<RunFlags>();
  auto* cmd = app.add_subcommand("run", "Run a command in a sandbox over a root filesystem");
  cmd->add_option("--rootfs", flags->rootfs, "Root filesystem directory (not modified)");
  cmd->add_option("--cpu", flags->cpus, "CPUs (fractions allowed)");
  cmd->add_option("--memory", flags->memory_gb, "Memory limit in GB");
  cmd->add_option("--pids", flags->pids, "Maximum number of processes");
  cmd->add_option("--network", flags->network, "none | host | default (slirp4netns)");
  cmd->add_option("-e,--env", flags->env, "Environment variable K=V (repeatable)");
  cmd->add_option("-w,--workdir", flags->workdir, "Working directory inside the sandbox");
  cmd->add_option("-u,--user", flags->user, "user[:group], by name or number");
  cmd->add_flag("-t,--tty", flags->tty, "Allocate a terminal");
  cmd->add_option("--timeout", flags->timeout_s, "Kill the sandbox after this many seconds");
  cmd->add_option("--runtime", flags->runtime, "OCI runtime (crun, runc, or a path)");
  cmd->add_option("--hostname", flags->hostname, "Host name inside the sandbox");
  // Positionals: [IMAGE] COMMAND [ARG...]; with --rootfs there is no IMAGE. Put `--` before a
  // command that has options of its own.
  cmd->add_option("image", flags->image, "Image to run (omit with --rootfs)");
  cmd->add_option("command", flags->command, "Command and arguments");
  cmd->footer("Usage: cairn run [OPTIONS] (--rootfs DIR | IMAGE) -- COMMAND [ARG...]");
  cmd->callback([flags, &options] {
    if (!flags->rootfs.empty() && !flags->image.empty()) {
      flags->command.insert(flags->command.begin(), flags->image);
      flags->image.clear();
    }
    cairn::cli::setExitCode(runSandbox(*flags, options));
  });
}

CAIRN_REGISTER_COMMAND(300, registerRun);

}  // namespace
