// `cairn run IMAGE`: the real binary runs a busybox image that the test builds into a fresh data
// directory (one layer, stored only as a blob, so the first run must import it into the layer
// store). Needs root, crun and busybox-static (CI has all three): label `integration`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/layer/chain_id.h"
#include "cairn/oci/catalog.h"
#include "cairn/store/layer_store.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/testing/busybox_image.h"
#include "cairn/testing/status_matchers.h"
#include "run_cairn.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class CliRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "sandboxes mount overlayfs: needs root (CI is root)";
    ASSERT_OK_AND_ASSIGN(auto dir, cairn::TempDir::create("cli-run"));
    tmp_ = std::make_unique<cairn::TempDir>(std::move(dir));
    data_ = tmp_->path() / "data";
    ASSERT_OK_AND_ASSIGN(blobs_, cairn::store::LocalBlobStore::open(data_));
    ASSERT_OK_AND_ASSIGN(catalog_, cairn::oci::ImageCatalog::open(data_));
    fs::path root = tmp_->path() / "busybox";
    ASSERT_OK(cairn::testing::makeBusyboxRootfs(root));
    fs::create_directories(root / "home/app");
    ::chown((root / "home/app").c_str(), 1000, 1000);
    ASSERT_OK_AND_ASSIGN(
        layer_, cairn::store::exportDirToBlob(root, *blobs_, cairn::layer::Compression::kZstd));
  }

  // Tags a one-layer busybox image with this container config as `name`.
  void addImage(const std::string& name, const cairn::oci::ContainerConfig& container) {
    ASSERT_OK_AND_ASSIGN(auto image,
                         cairn::testing::writeOneLayerImage(*blobs_, layer_, container));
    ASSERT_OK(catalog_->tag(name, image.manifest));
  }

  static cairn::oci::ContainerConfig greeter() {
    cairn::oci::ContainerConfig c;
    c.env = {"PATH=/bin", "GREETING=hello"};
    c.cmd = std::vector<std::string>{"sh", "-c", "echo \"$GREETING from $(pwd) as $(id -u)\""};
    c.working_dir = "/home/app";
    c.user = "app";
    return c;
  }

  cairn::testing::CairnRun run(std::vector<std::string> args, const std::string& stdin_text = {}) {
    args.insert(args.begin(), {"--data-dir", data_.string(), "run", "--network", "none"});
    return cairn::testing::runCairn(tmp_->path(), args, {}, stdin_text);
  }

  std::unique_ptr<cairn::TempDir> tmp_;
  fs::path data_;
  std::unique_ptr<cairn::store::LocalBlobStore> blobs_;
  std::unique_ptr<cairn::oci::ImageCatalog> catalog_;
  cairn::layer::EncodedLayer layer_;
};

TEST_F(CliRunTest, RunsTheImageCmdWithItsEnvWorkdirAndUser) {
  addImage("greeter:1", greeter());
  const auto chain = cairn::layer::chainId(cairn::Digest(), layer_.diff_id);
  EXPECT_FALSE(fs::exists(data_ / "layers" / chain.hex()));
  auto r = run({"greeter:1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello from /home/app as 1000\n");
  // The layer was imported from its blob into the layer store on first use.
  EXPECT_TRUE(fs::exists(data_ / "layers" / chain.hex() / "fs" / "bin" / "busybox"));
  // And reused on the second.
  auto again = run({"greeter:1"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, r.out);
}

TEST_F(CliRunTest, FlagsOverrideTheImage) {
  addImage("greeter:1", greeter());
  auto r = run({"-e", "GREETING=bye", "-w", "/tmp", "-u", "root", "greeter:1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "bye from /tmp as 0\n");
}

TEST_F(CliRunTest, CommandReplacesCmdAndKeepsEntrypoint) {
  cairn::oci::ContainerConfig c;
  c.env = {"PATH=/bin"};
  c.entrypoint = std::vector<std::string>{"echo", "entry"};
  c.cmd = std::vector<std::string>{"default", "args"};
  addImage("ep:1", c);
  auto defaults = run({"ep:1"});
  ASSERT_EQ(defaults.exit_code, 0) << defaults.err;
  EXPECT_EQ(defaults.out, "entry default args\n");
  auto replaced = run({"ep:1", "--", "mine", "-n"});
  ASSERT_EQ(replaced.exit_code, 0) << replaced.err;
  EXPECT_EQ(replaced.out, "entry mine -n\n");
}

TEST_F(CliRunTest, ExitsWithTheProcessStatusAndReadsStdin) {
  addImage("greeter:1", greeter());
  EXPECT_EQ(run({"greeter:1", "--", "sh", "-c", "exit 7"}).exit_code, 7);
  auto r = run({"greeter:1", "--", "cat"}, "piped through\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "piped through\n");
}

TEST_F(CliRunTest, CpuAndMemoryFlagsReachTheCgroup) {
  addImage("greeter:1", greeter());
  // v1 (and hybrid): the container sees its own cgroup at /sys/fs/cgroup/<controller>;
  // v2: cpu.max and memory.max at /sys/fs/cgroup.
  auto r = run({"--cpu", "1.5", "--memory", "0.25", "-u", "root", "greeter:1", "--", "sh", "-c",
                "if [ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then "
                "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
                "/sys/fs/cgroup/memory/memory.limit_in_bytes; "
                "else cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.max; fi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::AnyOf("150000\n268435456\n", "150000 100000\n268435456\n"));
}

TEST_F(CliRunTest, MissingImageSaysWhereItLooked) {
  auto r = run({"nope:1", "--", "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_THAT(r.err, HasSubstr("image \"nope:1\" is not in the local store"));
  EXPECT_THAT(r.err, HasSubstr("cairn image pull"));
  // crun was started before the image was looked up; the failed run leaves neither its work
  // dir nor crun's container state behind.
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty(data_ / "work" / "run", ec)) << ec.message();
  auto ps = cairn::testing::runProgram(
      "/bin/sh", tmp_->path(), {"-c", "pgrep -af '^[^ ]*crun .*" + data_.string() + "' || true"});
  EXPECT_EQ(ps.out, "") << "crun left running";
}

TEST_F(CliRunTest, ImageWithoutCommandNeedsOne) {
  cairn::oci::ContainerConfig c;
  c.env = {"PATH=/bin"};
  addImage("bare:1", c);
  auto r = run({"bare:1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("has no entrypoint or cmd: give a command"));
  auto ok = run({"bare:1", "--", "echo", "given"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "given\n");
}

TEST_F(CliRunTest, EverythingAfterTheImageIsTheCommandAsInDockerRun) {
  addImage("greeter:1", greeter());
  // Options after IMAGE belong to the command (this used to fail with "The following argument
  // was not expected: -c").
  auto sh = run({"greeter:1", "sh", "-c", "echo hi"});
  ASSERT_EQ(sh.exit_code, 0) << sh.err;
  EXPECT_EQ(sh.out, "hi\n");
  // Even ones `cairn run` itself has.
  auto flags = run({"-u", "root", "greeter:1", "echo", "--network", "host", "-e", "X=1", "--"});
  ASSERT_EQ(flags.exit_code, 0) << flags.err;
  EXPECT_EQ(flags.out, "--network host -e X=1 --\n");
  // `--` right after the image is still accepted, and only that one is dropped.
  auto dashes = run({"greeter:1", "--", "echo", "--", "x"});
  ASSERT_EQ(dashes.exit_code, 0) << dashes.err;
  EXPECT_EQ(dashes.out, "-- x\n");
  // With --rootfs the first positional is already the command.
  fs::path root = tmp_->path() / "plain";
  ASSERT_OK(cairn::testing::makeBusyboxRootfs(root));
  auto rootfs = run({"--rootfs", root.string(), "/bin/sh", "-c", "echo from $0", "rootfs"});
  ASSERT_EQ(rootfs.exit_code, 0) << rootfs.err;
  EXPECT_EQ(rootfs.out, "from rootfs\n");
}

TEST_F(CliRunTest, AnUnknownOptionBeforeTheImageIsStillAUsageError) {
  addImage("greeter:1", greeter());
  auto r = run({"--no-such-flag", "greeter:1", "true"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--no-such-flag"));
  EXPECT_EQ(r.out, "");
}

// The default seccomp profile refuses a new user namespace (no CAP_SYS_ADMIN in a sandbox);
// `--security-opt seccomp=unconfined` lifts it, as with docker run; a bad value is a usage
// error that names the option.
TEST_F(CliRunTest, SecurityOptSeccompSelectsTheProfile) {
  addImage("greeter:1", greeter());
  auto confined = run({"-u", "root", "greeter:1", "busybox", "unshare", "-U", "true"});
  EXPECT_NE(confined.exit_code, 0);
  EXPECT_THAT(confined.err, HasSubstr("Operation not permitted"));
  auto unconfined = run({"--security-opt", "seccomp=unconfined", "-u", "root", "greeter:1",
                         "busybox", "unshare", "-U", "true"});
  EXPECT_EQ(unconfined.exit_code, 0) << unconfined.err;
  // Repeatable options take one value each: the image and command after them stay positional.
  auto env = run({"-e", "A=1", "-e", "B=2", "greeter:1", "sh", "-c", "echo $A$B"});
  EXPECT_EQ(env.exit_code, 0) << env.err;
  EXPECT_EQ(env.out, "12\n");
  auto bad = run({"--security-opt", "apparmor=x", "greeter:1", "true"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--security-opt 'apparmor=x'"));
  auto missing = run({"--security-opt", "seccomp=/no/such/profile.json", "greeter:1", "true"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("/no/such/profile.json"));
}

TEST_F(CliRunTest, RootfsStillWorks) {
  fs::path root = tmp_->path() / "plain";
  ASSERT_OK(cairn::testing::makeBusyboxRootfs(root));
  auto r = run({"--rootfs", root.string(), "--", "/bin/echo", "from rootfs"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "from rootfs\n");
  EXPECT_FALSE(fs::exists(root / "proc"));  // the rootfs itself was not written
}

}  // namespace
