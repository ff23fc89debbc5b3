// ContainerSpec: what to run, as plain data. The build engine maps an image config plus a RUN
// instruction onto it, `cairn run` maps its flags onto it; the executor turns it into an OCI
// runtime-spec config.json (makeOciConfig) and runs it. Nothing here knows about images.
//
//   ContainerSpec spec;
//   spec.rootfs.lower_dirs = {layer3, layer2, layer1};  // newest first, like overlayfs
//   spec.rootfs.upper_dir = step_upper;                  // becomes the step's layer
//   spec.process.args = {"/bin/sh", "-c", "apt-get update"};
//   spec.network = NetworkMode::kDefault;
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cairn/common/json.h"
#include "cairn/common/status.h"
#include "cairn/runtime/seccomp_profile.h"

namespace cairn::runtime {

enum class NetworkMode {
  kNone,     //!< own network namespace with only loopback
  kHost,     //!< the host's network namespace
  kDefault,  //!< own namespace, outbound through slirp4netns, host loopback unreachable
};

std::string_view networkModeName(NetworkMode mode);
//! "none" | "host" | "default" (also "bridge", "slirp" for docker-style callers).
Result<NetworkMode> parseNetworkMode(std::string_view text);

struct RootfsSpec {
  //! A prepared root directory used as is (mutually exclusive with lower_dirs).
  std::filesystem::path dir;
  //! Overlay lower dirs, newest first. The executor mounts them with upper_dir/work_dir.
  std::vector<std::filesystem::path> lower_dirs;
  //! Where writes go. Empty: an ephemeral upper inside the executor's work dir, removed at the
  //! end. Otherwise kept (the build engine turns it into a layer); work_dir must then be given
  //! too, on the same filesystem.
  std::filesystem::path upper_dir;
  std::filesystem::path work_dir;
  bool readonly = false;
};

struct ProcessSpec {
  std::vector<std::string> args;
  std::vector<std::string> env;  //!< "K=V"; PATH is added when missing
  std::string cwd = "/";
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::vector<std::uint32_t> additional_gids;
  bool terminal = false;
};

struct MountSpec {
  std::string destination;
  std::string type = "bind";
  std::string source;
  std::vector<std::string> options;  //!< e.g. {"rbind", "ro"}
};

struct ResourceLimits {
  double cpus = 0;                //!< 0: unlimited; 1.5 = one and a half CPUs
  std::int64_t memory_bytes = 0;  //!< 0: unlimited (swap is limited to the same total)
  std::int64_t pids = 0;          //!< 0: unlimited
};

struct ContainerSpec {
  RootfsSpec rootfs;
  ProcessSpec process;
  std::string hostname = "cairn";
  std::vector<MountSpec> mounts;
  NetworkMode network = NetworkMode::kDefault;
  ResourceLimits limits;
  //! 0: no timeout. On expiry the whole process tree is killed.
  std::chrono::milliseconds timeout{0};
  //! Cairn's default profile unless a caller asks for unconfined or a custom profile
  //! (`--security-opt seccomp=...`, see parseSeccompOption).
  SeccompOption seccomp;
};

//! Checks a spec for mistakes a caller can make (empty args, relative cwd, bad limits, ...).
Status validateContainerSpec(const ContainerSpec& spec);

//! What the executor decides per run and feeds into the config.
struct OciConfigInputs {
  std::string rootfs_path;  //!< absolute path of the (mounted) root
  std::string hosts_file;   //!< generated files, bind-mounted over /etc/...
  std::string resolv_conf_file;
  std::string hostname_file;
  std::string cgroups_path;  //!< e.g. "/cairn/<id>"
  //! For NetworkMode::kDefault: the netns to join (/proc/<pid>/ns/net); empty = new netns.
  std::string netns_path;
  //! Current hard limits; requested rlimits never exceed them (no CAP_SYS_RESOURCE here).
  std::uint64_t nofile_hard = 1048576;
  std::uint64_t nproc_hard = 0;  //!< 0: do not set RLIMIT_NPROC
  //! false: `linux.seccomp` is left out and the caller adds it when the runtime needs it (see
  //! seccompSectionTextFor: a filter cache keys on the text, which is far cheaper to make).
  bool with_seccomp = true;
};

//! The OCI runtime-spec (1.0.2) config.json for `spec`, Docker's defaults where Docker has one
//! (capabilities, masked and read-only paths, /dev, /dev/shm, /dev/mqueue, /sys mounts), and
//! `linux.seccomp` from spec.seccomp resolved for those capabilities and this machine.
Result<OrderedJson> makeOciConfig(const ContainerSpec& spec, const OciConfigInputs& inputs);

//! The capability set makeOciConfig gives every container (Docker's default set): bounding,
//! effective and permitted. Seccomp sections are resolved against it.
const std::vector<std::string>& defaultCapabilities();

//! The generated /etc/hosts, /etc/resolv.conf and /etc/hostname contents.
std::string makeHostsFile(const std::string& hostname);
//! Default network: slirp4netns' DNS forwarder; other modes: the host's nameservers, except
//! loopback ones in a private namespace (they would be unreachable), replaced by public ones.
std::string makeResolvConf(NetworkMode mode, std::string_view host_resolv_conf);

//! Current hard RLIMIT_NOFILE / RLIMIT_NPROC, capped for use in OciConfigInputs.
void fillHostRlimits(OciConfigInputs& inputs);

//! Parses "uid[:gid]" numerically, or resolves names from <rootfs>/etc/passwd and /etc/group
//! like Docker's USER: "name", "name:group", "1000:staff". Without a group, the user's primary
//! group is used and the user's supplementary groups (from /etc/group) are returned too.
struct ResolvedUser {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::vector<std::uint32_t> additional_gids;
  std::string home;  //!< from passwd, empty when unknown
};
Result<ResolvedUser> resolveUser(const std::filesystem::path& rootfs, std::string_view user);

}  // namespace cairn::runtime
