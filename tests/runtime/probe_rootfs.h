// The root filesystem of the seccomp tests: busybox plus the static probe (seccomp_probe.cc,
// built by this directory's CMakeLists as CAIRN_SECCOMP_PROBE) at /bin/probe.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/testing/busybox_rootfs.h"

namespace cairn::runtime {

inline Status makeProbeRootfs(const std::filesystem::path& root,
                              const std::vector<std::string>& extra_applets = {}) {
  CAIRN_RETURN_IF_ERROR(::cairn::testing::makeBusyboxRootfs(root, extra_applets));
  std::error_code ec;
  std::filesystem::copy_file(CAIRN_SECCOMP_PROBE, root / "bin/probe", ec);
  if (ec) return internalError(std::string("copy ") + CAIRN_SECCOMP_PROBE + ": " + ec.message());
  return okStatus();
}

}  // namespace cairn::runtime
