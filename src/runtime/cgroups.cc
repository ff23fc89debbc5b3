#include "cairn/runtime/cgroups.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

#include "cairn/common/fs.h"
#include "cairn/common/log.h"
#include "cairn/common/strings.h"

namespace cairn::runtime {

namespace fs = std::filesystem;

std::string_view cgroupModeName(CgroupMode mode) {
  switch (mode) {
    case CgroupMode::kV1:
      return "v1";
    case CgroupMode::kHybrid:
      return "hybrid";
    case CgroupMode::kV2:
      return "v2";
    case CgroupMode::kUnknown:
      break;
  }
  return "unknown";
}

namespace {

struct MountEntry {
  std::string mount_point;
  std::string fs_type;
  std::string super_options;
};

// /proc/self/mountinfo: "36 35 98:0 / /mnt rw,noatime master:1 - ext3 /dev/root rw,errors=..."
std::vector<MountEntry> parseMountinfo(std::string_view text) {
  std::vector<MountEntry> entries;
  for (const std::string& line : splitString(text, '\n')) {
    std::vector<std::string> fields = splitString(line, ' ');
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 5 || dash == fields.end() || dash + 2 >= fields.end()) continue;
    entries.push_back({fields[4], *(dash + 1), dash + 3 < fields.end() ? *(dash + 3) : ""});
  }
  return entries;
}

}  // namespace

Result<CgroupInfo> detectCgroups(const fs::path& root, std::string_view mountinfo_text) {
  CgroupInfo info;
  info.root = root;
  std::vector<MountEntry> mounts = parseMountinfo(mountinfo_text);
  std::string root_str = root.lexically_normal().string();
  while (root_str.size() > 1 && root_str.back() == '/')
    root_str.pop_back();
  fs::path v2_path;
  for (const MountEntry& m : mounts) {
    if (m.mount_point == root_str && m.fs_type == "cgroup2") {
      v2_path = root;
      info.mode = CgroupMode::kV2;
    }
  }
  if (info.mode != CgroupMode::kV2) {
    for (const MountEntry& m : mounts) {
      if (m.mount_point.rfind(root_str + "/", 0) != 0) continue;
      std::string name = m.mount_point.substr(root_str.size() + 1);
      if (m.fs_type == "cgroup") info.v1_hierarchies.push_back(name);
      if (m.fs_type == "cgroup2") v2_path = m.mount_point;
    }
    if (!info.v1_hierarchies.empty())
      info.mode = v2_path.empty() ? CgroupMode::kV1 : CgroupMode::kHybrid;
  }
  if (info.mode == CgroupMode::kUnknown)
    return failedPrecondition("no cgroup filesystem is mounted at " + root.string());
  if (!v2_path.empty()) {
    auto controllers = readFile(v2_path / "cgroup.controllers");
    if (controllers.ok()) {
      for (const std::string& c : splitString(std::string(trimSpace(*controllers)), ' '))
        if (!c.empty()) info.v2_controllers.push_back(c);
    }
  }
  std::sort(info.v1_hierarchies.begin(), info.v1_hierarchies.end());
  return info;
}

Result<CgroupInfo> detectHostCgroups() {
  CAIRN_ASSIGN_OR_RETURN(std::string mountinfo, readFile("/proc/self/mountinfo"));
  return detectCgroups("/sys/fs/cgroup", mountinfo);
}

RuntimeCompatibility checkRuntimeCompatibility(const CgroupInfo& info,
                                               std::string_view runtime_name) {
  RuntimeCompatibility c;
  if (info.mode != CgroupMode::kHybrid) return c;
  fs::path base = fs::path(runtime_name).filename();
  if (base != "crun") return c;  // runc (and runsc) accept the hybrid layout as it is
  if (info.v2_controllers.empty()) return c;
  c.v1_mounts_needed = info.v2_controllers;
  c.reason = "crun refuses hybrid cgroups while the cgroup2 mount has controllers (" +
             joinStrings(info.v2_controllers, ", ") + ")";
  return c;
}

Status prepareCgroupsForRuntime(std::string_view runtime_name) {
  CAIRN_ASSIGN_OR_RETURN(CgroupInfo info, detectHostCgroups());
  return prepareCgroupsForRuntime(runtime_name, info);
}

Status prepareCgroupsForRuntime(std::string_view runtime_name, const CgroupInfo& detected) {
  // The common case (nothing to mount) needs no lock and no second look at the host.
  if (checkRuntimeCompatibility(detected, runtime_name).v1_mounts_needed.empty()) return okStatus();
  static std::mutex mu;
  std::lock_guard lock(mu);
  // Another thread may have mounted the hierarchies meanwhile: decide on a fresh look.
  CAIRN_ASSIGN_OR_RETURN(CgroupInfo info, detectHostCgroups());
  RuntimeCompatibility c = checkRuntimeCompatibility(info, runtime_name);
  if (c.v1_mounts_needed.empty()) return okStatus();
  for (const std::string& controller : c.v1_mounts_needed) {
    if (controller.find('/') != std::string::npos || controller.find(',') != std::string::npos)
      return failedPrecondition("unexpected cgroup2 controller name '" + controller + "'");
    fs::path target = info.root / controller;
    spdlog::info(
        "runtime: host has hybrid cgroups and {}; mounting the v1 {} hierarchy at {} so that "
        "crun can run containers",
        c.reason, controller, target.string());
    std::error_code ec;
    fs::create_directories(target, ec);
    if (ec)
      return failedPrecondition("cannot create " + target.string() + ": " + ec.message() + " (" +
                                c.reason + ")");
    if (mount("cgroup", target.c_str(), "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              controller.c_str()) != 0) {
      int err = errno;
      return failedPrecondition("mounting the v1 " + controller + " cgroup hierarchy at " +
                                target.string() + " failed: " + std::strerror(err) + " (" +
                                c.reason + "); use runc instead");
    }
  }
  CAIRN_ASSIGN_OR_RETURN(CgroupInfo after, detectHostCgroups());
  RuntimeCompatibility again = checkRuntimeCompatibility(after, runtime_name);
  if (!again.v1_mounts_needed.empty())
    return failedPrecondition("still incompatible after mounting: " + again.reason);
  return okStatus();
}

namespace {

// A cgroup control file: written in one write(2), as the kernel parses it per write.
Status writeCgroupFile(const fs::path& path, const std::string& text) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd.valid()) return errnoStatus(errno, "open " + path.string());
  return writeAll(fd.get(), text);
}

}  // namespace

Status setCgroupCpuWeight(const CgroupInfo& info, const std::string& parent, int weight) {
  if (weight < 1 || weight > 10000)
    return invalidArgument("cgroup cpu weight " + std::to_string(weight) + " is not in 1..10000");
  if (parent.empty() || parent.front() != '/' || parent.find("..") != std::string::npos)
    return invalidArgument("cgroup parent '" + parent + "' must be an absolute path without ..");
  const fs::path rel = fs::path(parent).relative_path();
  const bool cpu_on_v2 = info.mode == CgroupMode::kV2 ||
                         (info.mode == CgroupMode::kHybrid &&
                          std::find(info.v2_controllers.begin(), info.v2_controllers.end(),
                                    "cpu") != info.v2_controllers.end());
  std::error_code ec;
  if (cpu_on_v2) {
    const fs::path v2_root = info.mode == CgroupMode::kV2 ? info.root : info.root / "unified";
    // The root's children get the cpu controller only once it is in the root's subtree_control
    // (systemd enables it; a bare host may not have).
    auto control = readFile(v2_root / "cgroup.subtree_control");
    if (control.ok() && control->find("cpu") == std::string::npos)
      CAIRN_RETURN_IF_ERROR(writeCgroupFile(v2_root / "cgroup.subtree_control", "+cpu"));
    fs::create_directories(v2_root / rel, ec);
    if (ec) return internalError("create " + (v2_root / rel).string() + ": " + ec.message());
    return writeCgroupFile(v2_root / rel / "cpu.weight", std::to_string(weight));
  }
  if (std::find(info.v1_hierarchies.begin(), info.v1_hierarchies.end(), "cpu") ==
      info.v1_hierarchies.end())
    return failedPrecondition("no cpu controller in " + info.root.string());
  const fs::path dir = info.root / "cpu" / rel;
  fs::create_directories(dir, ec);
  if (ec) return internalError("create " + dir.string() + ": " + ec.message());
  return writeCgroupFile(dir / "cpu.shares", std::to_string(weight * 1024 / 100));
}

}  // namespace cairn::runtime
