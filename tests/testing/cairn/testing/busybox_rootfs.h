// A tiny root filesystem made of busybox-static, for tests that run or build something real:
// made in a few milliseconds, with /etc/passwd and /etc/group holding root and an "app" user.
//
//   if (cairn::testing::busyboxPath() == nullptr) GTEST_SKIP() << "busybox-static is missing";
//   ASSERT_OK(cairn::testing::makeBusyboxRootfs(dir / "rootfs", {"date", "uname"}));
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cairn/common/status.h"

namespace cairn::testing {

//! The busybox-static binary of this machine, or nullptr when it is not installed.
inline const char* busyboxPath() {
  for (const char* p : {"/bin/busybox", "/usr/bin/busybox"})
    if (::access(p, X_OK) == 0) return p;
  return nullptr;
}

//! Creates bin/ (busybox + applet symlinks, plus `extra_applets`), etc/ and a sticky tmp/ under
//! `root`. No /proc, /dev, /sys: the runtime must create mount points itself.
inline Status makeBusyboxRootfs(const std::filesystem::path& root,
                                const std::vector<std::string>& extra_applets = {}) {
  namespace fs = std::filesystem;
  const char* busybox = busyboxPath();
  if (busybox == nullptr) return notFound("busybox-static is not installed");
  std::error_code ec;
  fs::create_directories(root / "bin", ec);
  fs::create_directories(root / "etc", ec);
  fs::create_directories(root / "tmp", ec);
  fs::permissions(root / "tmp", fs::perms::all | fs::perms::sticky_bit, ec);
  fs::copy_file(busybox, root / "bin/busybox", fs::copy_options::overwrite_existing, ec);
  if (ec)
    return internalError("copy " + std::string(busybox) + " into " + root.string() + ": " +
                         ec.message());
  std::vector<std::string> applets = {
      "sh",   "echo", "cat",  "ls",  "sleep",    "true",  "false", "id",     "wget", "nc",
      "head", "dd",   "yes",  "seq", "hostname", "mkdir", "touch", "rm",     "stat", "env",
      "pwd",  "ps",   "kill", "ip",  "grep",     "wc",    "test",  "printf", "mount"};
  applets.insert(applets.end(), extra_applets.begin(), extra_applets.end());
  for (const std::string& applet : applets) {
    fs::create_symlink("busybox", root / "bin" / applet, ec);
    if (ec && ec != std::errc::file_exists)
      return internalError("symlink bin/" + applet + " in " + root.string() + ": " + ec.message());
  }
  std::ofstream(root / "etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n"
                                        "app:x:1000:1000:app:/home/app:/bin/sh\n";
  std::ofstream(root / "etc/group") << "root:x:0:\nstaff:x:50:app\napp:x:1000:\n";
  return okStatus();
}

}  // namespace cairn::testing
