#include "cairn/runtime/container_spec.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "cairn/common/fs.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::runtime {
namespace {

using ::cairn::testing::IsOk;
using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;

const std::filesystem::path kGolden =
    std::filesystem::path(CAIRN_SOURCE_DIR) / "tests/runtime/data/oci_config.golden.json";

ContainerSpec sampleSpec() {
  ContainerSpec spec;
  spec.rootfs.lower_dirs = {"/layers/b", "/layers/a"};
  spec.process.args = {"/bin/sh", "-c", "apt-get update"};
  spec.process.env = {"FOO=bar"};
  spec.process.cwd = "/app";
  spec.process.uid = 1000;
  spec.process.gid = 1000;
  spec.process.additional_gids = {50};
  spec.hostname = "buildkitsandbox";
  spec.mounts.push_back({"/run/secrets/token", "bind", "/secrets/token", {"ro"}});
  spec.network = NetworkMode::kDefault;
  spec.limits = {1.5, 512LL * 1024 * 1024, 256};
  return spec;
}

OciConfigInputs sampleInputs() {
  OciConfigInputs in;
  in.rootfs_path = "/data/work/cairn-1/rootfs";
  in.hosts_file = "/data/work/cairn-1/hosts";
  in.resolv_conf_file = "/data/work/cairn-1/resolv.conf";
  in.hostname_file = "/data/work/cairn-1/hostname";
  in.cgroups_path = "/cairn/cairn-1";
  in.netns_path = "/proc/4242/ns/net";
  in.nofile_hard = 20000;
  in.nproc_hard = 0;
  return in;
}

TEST(OciConfigTest, MatchesGoldenFile) {
  ASSERT_OK_AND_ASSIGN(OrderedJson config, makeOciConfig(sampleSpec(), sampleInputs()));
  std::string text = config.dump(2) + "\n";
  if (std::getenv("CAIRN_UPDATE_GOLDEN") != nullptr) {
    ASSERT_OK(writeFileDurable(kGolden, text));
  }
  ASSERT_OK_AND_ASSIGN(std::string golden, readFile(kGolden));
  EXPECT_EQ(text, golden) << "regenerate with CAIRN_UPDATE_GOLDEN=1 if the change is intended";
}

TEST(OciConfigTest, HostNetworkHasNoNetworkNamespace) {
  ContainerSpec spec = sampleSpec();
  spec.network = NetworkMode::kHost;
  ASSERT_OK_AND_ASSIGN(OrderedJson config, makeOciConfig(spec, sampleInputs()));
  for (const auto& ns : config["linux"]["namespaces"])
    EXPECT_NE(ns["type"], "network");
}

TEST(OciConfigTest, NoneNetworkGetsAFreshNamespaceEvenWithAPath) {
  ContainerSpec spec = sampleSpec();
  spec.network = NetworkMode::kNone;
  ASSERT_OK_AND_ASSIGN(OrderedJson config, makeOciConfig(spec, sampleInputs()));
  bool found = false;
  for (const auto& ns : config["linux"]["namespaces"]) {
    if (ns["type"] == "network") {
      found = true;
      EXPECT_FALSE(ns.contains("path"));
    }
  }
  EXPECT_TRUE(found);
}

TEST(OciConfigTest, RlimitsNeverExceedHostHardLimit) {
  OciConfigInputs in = sampleInputs();
  in.nofile_hard = 1234;
  ASSERT_OK_AND_ASSIGN(OrderedJson config, makeOciConfig(sampleSpec(), in));
  for (const auto& r : config["process"]["rlimits"]) {
    if (r["type"] == "RLIMIT_NOFILE") {
      EXPECT_EQ(r["hard"], 1234);
      EXPECT_EQ(r["soft"], 1234);
    }
  }
}

TEST(OciConfigTest, KeepsCallerPathAndAddsDefaultsOnlyWhenMissing) {
  ContainerSpec spec = sampleSpec();
  spec.process.env = {"PATH=/opt/bin", "HOSTNAME=x"};
  spec.limits = {};
  ASSERT_OK_AND_ASSIGN(OrderedJson config, makeOciConfig(spec, sampleInputs()));
  EXPECT_EQ(config["process"]["env"], OrderedJson({"PATH=/opt/bin", "HOSTNAME=x"}));
  EXPECT_FALSE(config["linux"]["resources"].contains("memory"));
  EXPECT_FALSE(config["linux"]["resources"].contains("cpu"));
  EXPECT_FALSE(config["linux"]["resources"].contains("pids"));
}

TEST(OciConfigTest, RejectsBadSpecsWithClearErrors) {
  ContainerSpec spec = sampleSpec();
  spec.process.args.clear();
  EXPECT_THAT(makeOciConfig(spec, sampleInputs()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("no command")));
  spec = sampleSpec();
  spec.process.cwd = "relative";
  EXPECT_THAT(makeOciConfig(spec, sampleInputs()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("absolute")));
  spec = sampleSpec();
  spec.process.env = {"NOEQUALS"};
  EXPECT_THAT(makeOciConfig(spec, sampleInputs()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("NOEQUALS")));
  spec = sampleSpec();
  spec.limits.memory_bytes = 1024;
  EXPECT_THAT(validateContainerSpec(spec),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("6 MiB")));
  spec = sampleSpec();
  spec.rootfs.dir = "/x";
  EXPECT_THAT(validateContainerSpec(spec),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("either")));
  spec = sampleSpec();
  spec.rootfs.upper_dir = "/u";
  EXPECT_THAT(validateContainerSpec(spec),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("work dir")));
  spec = sampleSpec();
  spec.mounts.push_back({"relative", "bind", "/src", {}});
  EXPECT_THAT(validateContainerSpec(spec),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("relative")));
  spec = sampleSpec();
  spec.limits.cpus = -1;
  EXPECT_THAT(validateContainerSpec(spec),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("cpu")));
  OciConfigInputs in = sampleInputs();
  in.rootfs_path = "rootfs";
  EXPECT_THAT(makeOciConfig(sampleSpec(), in), StatusIs(StatusCode::kInvalidArgument));
}

TEST(NetworkModeTest, ParsesKnownModesAndRejectsOthers) {
  EXPECT_EQ(*parseNetworkMode("none"), NetworkMode::kNone);
  EXPECT_EQ(*parseNetworkMode("host"), NetworkMode::kHost);
  EXPECT_EQ(*parseNetworkMode("default"), NetworkMode::kDefault);
  EXPECT_EQ(networkModeName(NetworkMode::kHost), "host");
  EXPECT_THAT(parseNetworkMode("bridged-ish"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("bridged-ish")));
}

TEST(GeneratedFilesTest, ResolvConfPerMode) {
  std::string host = "# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch example.org\n";
  EXPECT_EQ(makeResolvConf(NetworkMode::kDefault, host), "nameserver 10.0.2.3\n");
  EXPECT_EQ(makeResolvConf(NetworkMode::kHost, host),
            "# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch example.org\n");
  // A loopback resolver is unreachable from a private namespace.
  EXPECT_EQ(makeResolvConf(NetworkMode::kNone, host),
            "# comment\nnameserver 192.0.2.1\nsearch example.org\n");
  EXPECT_NE(makeHostsFile("box").find("127.0.1.1\tbox\n"), std::string::npos);
  EXPECT_NE(makeHostsFile("box").find("127.0.0.1\tlocalhost\n"), std::string::npos);
}

class ResolveUserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::create("cairn-user"));
    std::filesystem::create_directories(dir_->path() / "etc");
    std::ofstream(dir_->path() / "etc/passwd")
        << "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n";
    std::ofstream(dir_->path() / "etc/group")
        << "root:x:0:\nstaff:x:50:app,other\napp:x:1001:\nwheel:x:10:app\n";
  }
  std::optional<TempDir> dir_;
};

TEST_F(ResolveUserTest, ResolvesNamesNumbersAndSupplementaryGroups) {
  ASSERT_OK_AND_ASSIGN(ResolvedUser app, resolveUser(dir_->path(), "app"));
  EXPECT_EQ(app.uid, 1000u);
  EXPECT_EQ(app.gid, 1001u);
  EXPECT_EQ(app.home, "/home/app");
  EXPECT_EQ(app.additional_gids, (std::vector<std::uint32_t>{50, 10}));
  ASSERT_OK_AND_ASSIGN(ResolvedUser named_group, resolveUser(dir_->path(), "app:staff"));
  EXPECT_EQ(named_group.gid, 50u);
  EXPECT_TRUE(named_group.additional_gids.empty());
  ASSERT_OK_AND_ASSIGN(ResolvedUser numeric, resolveUser(dir_->path(), "4242:77"));
  EXPECT_EQ(numeric.uid, 4242u);
  EXPECT_EQ(numeric.gid, 77u);
  ASSERT_OK_AND_ASSIGN(ResolvedUser by_uid, resolveUser(dir_->path(), "1000"));
  EXPECT_EQ(by_uid.gid, 1001u);
}

TEST_F(ResolveUserTest, UnknownNamesAreNotFound) {
  EXPECT_THAT(resolveUser(dir_->path(), "nobody"),
              StatusIs(StatusCode::kNotFound, HasSubstr("'nobody' not found")));
  EXPECT_THAT(resolveUser(dir_->path(), "app:nogroup"),
              StatusIs(StatusCode::kNotFound, HasSubstr("'nogroup'")));
  EXPECT_THAT(resolveUser(dir_->path(), "app:"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(resolveUser(dir_->path(), ":x"), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace cairn::runtime
