// A real distribution under the executor: a Debian bookworm minbase root filesystem made with
// mmdebstrap once and cached under the build dir (about 24 s on an idle machine).
#include <gtest/gtest.h>
#include <unistd.h>

#include "cairn/common/fs.h"
#include "cairn/common/strings.h"
#include "cairn/runtime/executor.h"
#include "cairn/runtime/overlay.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::runtime {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::ElementsAre;

std::string debianMirror() {
  auto sources = readFile("/etc/apt/sources.list.d/debian.sources");
  if (sources.ok()) {
    for (const std::string& line : splitString(*sources, '\n'))
      if (line.rfind("URIs:", 0) == 0) return std::string(trimSpace(line.substr(5)));
  }
  return "http://deb.debian.org/debian";
}

// Makes (or reuses) the cached rootfs. Returns "" and sets *why when it cannot be made.
fs::path debianRootfs(std::string* why) {
  fs::path cache = fs::path(CAIRN_BINARY_DIR) / "runtime-test-cache" / "bookworm-minbase";
  if (fs::exists(cache / "usr/bin/dpkg")) return cache;
  fs::path tmp = cache.string() + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(cache.parent_path(), ec);
  auto out = runCommand(
      {"mmdebstrap", "--quiet", "--variant=minbase", "bookworm", tmp.string(), debianMirror()},
      std::chrono::seconds(240), 1 << 16);
  if (!out.ok() || out->status.exit_code != 0) {
    *why = out.ok() ? out->err : out.status().toString();
    fs::remove_all(tmp, ec);
    return {};
  }
  fs::rename(tmp, cache, ec);
  return ec ? fs::path() : cache;
}

TEST(DebianRootfsTest, RunsRealDistributionCommands) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  std::string why;
  fs::path rootfs = debianRootfs(&why);
  // The mirror is the one prerequisite the test cannot provide itself.
  if (rootfs.empty()) GTEST_SKIP() << "mmdebstrap could not build a rootfs: " << why;

  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("cairn-debian"));
  ExecutorOptions options;
  options.work_root = dir.path() / "work";
  options.state_root = dir.path() / "state";
  ASSERT_OK_AND_ASSIGN(auto executor, Executor::create(options));
  std::vector<std::string> out;
  RunIo io;
  io.on_line = [&](OutputStream stream, std::string_view line) {
    if (stream == OutputStream::kStdout) out.emplace_back(line);
  };

  ContainerSpec spec;
  spec.rootfs.lower_dirs = {rootfs};
  spec.network = NetworkMode::kNone;
  spec.process.args = {
      "/bin/bash", "-c",
      "set -e; . /etc/os-release; echo $VERSION_CODENAME; stat -c %F:%t:%T /dev/null; "
      "dpkg -s coreutils | grep -c 'Status: install ok installed'; "
      "awk '$2==\"localhost\"{print $1; exit}' /etc/hosts; "
      "apt-get --version | head -1 | cut -d' ' -f1; "
      "cat /proc/1/cmdline | tr '\\0' ' '; echo; "
      "su -s /bin/sh nobody -c 'id -un'"};
  ASSERT_OK_AND_ASSIGN(RunResult r, executor->run(spec, io));
  EXPECT_THAT(r.toStatus(), ::cairn::testing::IsOk());
  EXPECT_THAT(out, ElementsAre("bookworm", "character special file:1:3", "1", "127.0.0.1", "apt",
                               ::testing::StartsWith("/bin/bash -c"), "nobody"));

  // Users are resolved from the image's own /etc/passwd.
  ASSERT_OK_AND_ASSIGN(ResolvedUser nobody, resolveUser(rootfs, "nobody"));
  EXPECT_EQ(nobody.uid, 65534u);
  spec.process.uid = nobody.uid;
  spec.process.gid = nobody.gid;
  spec.process.args = {"/usr/bin/id", "-u"};
  out.clear();
  ASSERT_OK_AND_ASSIGN(RunResult as_nobody, executor->run(spec, io));
  EXPECT_EQ(as_nobody.status.exit_code, 0);
  EXPECT_THAT(out, Contains("65534"));
  ASSERT_OK_AND_ASSIGN(auto mounts, mountsUnder(dir.path()));
  EXPECT_TRUE(mounts.empty());
}

}  // namespace
}  // namespace cairn::runtime
