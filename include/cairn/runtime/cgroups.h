// Which cgroup layout the host has, and making it acceptable to the OCI runtime.
//
// Three layouts exist: v1 (a tmpfs of per-controller hierarchies), v2 (cgroup2 mounted at the
// root) and hybrid (v1 hierarchies plus a cgroup2 mount at <root>/unified). crun 1.8 refuses
// hybrid when the cgroup2 mount still has controllers ("drop all controllers from cgroupv2");
// on the machines Cairn runs on the only such controller is hugetlb, because its v1 hierarchy
// is not mounted. Mounting that hierarchy moves hugetlb to v1 and crun accepts the host;
// runc accepts the hybrid layout as it is, so it is the fallback.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "cairn/common/status.h"

namespace cairn::runtime {

enum class CgroupMode { kV1, kHybrid, kV2, kUnknown };

std::string_view cgroupModeName(CgroupMode mode);

struct CgroupInfo {
  CgroupMode mode = CgroupMode::kUnknown;
  std::filesystem::path root;  //!< usually /sys/fs/cgroup
  //! Controllers listed in the cgroup2 mount's cgroup.controllers (v2 or hybrid).
  std::vector<std::string> v2_controllers;
  //! v1 hierarchies mounted under root (directory names: cpu, memory, pids, ...).
  std::vector<std::string> v1_hierarchies;
};

//! Reads the layout under `root` (a directory tree, so tests can fake it) using
//! `mountinfo_text` (the content of /proc/self/mountinfo) for the filesystem types.
Result<CgroupInfo> detectCgroups(const std::filesystem::path& root,
                                 std::string_view mountinfo_text);

//! detectCgroups on the live system.
Result<CgroupInfo> detectHostCgroups();

//! What a runtime needs before it can create containers on this host.
struct RuntimeCompatibility {
  bool usable = true;
  //! Controllers that must be mounted as v1 hierarchies first (hybrid + crun).
  std::vector<std::string> v1_mounts_needed;
  std::string reason;
};

//! Pure decision: can `runtime_name` ("crun", "runc", ...) run on `info`, and what must be
//! mounted for it to.
RuntimeCompatibility checkRuntimeCompatibility(const CgroupInfo& info,
                                               std::string_view runtime_name);

//! Makes the live host acceptable to `runtime_name`: in hybrid mode with crun, mounts the
//! missing v1 hierarchies (logging a line saying so). Returns FailedPrecondition with the
//! reason when it cannot (the caller may then fall back to runc).
Status prepareCgroupsForRuntime(std::string_view runtime_name);
//! The same with the host's cgroups already detected (detectHostCgroups), so a caller that
//! also wants them reads /proc/self/mountinfo once.
Status prepareCgroupsForRuntime(std::string_view runtime_name, const CgroupInfo& detected);

//! Gives the cgroup `parent` ("/cairn-serve") CPU weight `weight` (cgroup v2's cpu.weight scale,
//! 1–10000, 100 = an ordinary process), creating it if missing: cpu.weight where the cpu
//! controller is on cgroup v2 (enabled for children of the root first), else cpu.shares =
//! weight × 1024 / 100 in the v1 cpu hierarchy. Containers created below it then share that
//! weight against everything beside it, such as the server that started them.
Status setCgroupCpuWeight(const CgroupInfo& info, const std::string& parent, int weight);

}  // namespace cairn::runtime
