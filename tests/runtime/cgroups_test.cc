#include "cairn/runtime/cgroups.h"

#include <gtest/gtest.h>

#include <fstream>

#include "cairn/common/fs.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::runtime {
namespace {

using ::cairn::testing::StatusIs;

std::string mountinfoLine(const std::string& point, const std::string& type,
                          const std::string& opts) {
  return "30 20 0:26 / " + point + " rw,nosuid - " + type + " cgroup " + opts + "\n";
}

class CgroupsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::create("cairn-cgroups"));
    root_ = dir_->path() / "cgroup";
    std::filesystem::create_directories(root_ / "unified");
  }
  std::optional<TempDir> dir_;
  std::filesystem::path root_;
};

TEST_F(CgroupsTest, DetectsHybridWithHugetlbOnV2AndCrunNeedsAMount) {
  std::ofstream(root_ / "unified/cgroup.controllers") << "hugetlb\n";
  std::string mi = "25 1 0:20 / " + root_.string() + " rw - tmpfs tmpfs rw\n" +
                   mountinfoLine((root_ / "cpu").string(), "cgroup", "rw,cpu") +
                   mountinfoLine((root_ / "memory").string(), "cgroup", "rw,memory") +
                   mountinfoLine((root_ / "unified").string(), "cgroup2", "rw");
  ASSERT_OK_AND_ASSIGN(CgroupInfo info, detectCgroups(root_, mi));
  EXPECT_EQ(info.mode, CgroupMode::kHybrid);
  EXPECT_EQ(info.v1_hierarchies, (std::vector<std::string>{"cpu", "memory"}));
  EXPECT_EQ(info.v2_controllers, std::vector<std::string>{"hugetlb"});
  RuntimeCompatibility crun = checkRuntimeCompatibility(info, "/usr/bin/crun");
  EXPECT_EQ(crun.v1_mounts_needed, std::vector<std::string>{"hugetlb"});
  EXPECT_NE(crun.reason.find("hybrid"), std::string::npos);
  EXPECT_TRUE(checkRuntimeCompatibility(info, "runc").v1_mounts_needed.empty());
}

TEST_F(CgroupsTest, HybridWithoutV2ControllersIsFineForCrun) {
  std::ofstream(root_ / "unified/cgroup.controllers") << "\n";
  std::string mi = mountinfoLine((root_ / "pids").string(), "cgroup", "rw,pids") +
                   mountinfoLine((root_ / "unified").string(), "cgroup2", "rw");
  ASSERT_OK_AND_ASSIGN(CgroupInfo info, detectCgroups(root_, mi));
  EXPECT_EQ(info.mode, CgroupMode::kHybrid);
  EXPECT_TRUE(checkRuntimeCompatibility(info, "crun").v1_mounts_needed.empty());
}

TEST_F(CgroupsTest, DetectsV1AndV2) {
  std::string v1 = mountinfoLine((root_ / "memory").string(), "cgroup", "rw,memory");
  ASSERT_OK_AND_ASSIGN(CgroupInfo info1, detectCgroups(root_, v1));
  EXPECT_EQ(info1.mode, CgroupMode::kV1);
  std::ofstream(root_ / "cgroup.controllers") << "cpu memory pids\n";
  std::string v2 = "30 20 0:26 / " + root_.string() + " rw - cgroup2 cgroup2 rw\n";
  ASSERT_OK_AND_ASSIGN(CgroupInfo info2, detectCgroups(root_, v2));
  EXPECT_EQ(info2.mode, CgroupMode::kV2);
  EXPECT_EQ(info2.v2_controllers, (std::vector<std::string>{"cpu", "memory", "pids"}));
  EXPECT_TRUE(checkRuntimeCompatibility(info2, "crun").v1_mounts_needed.empty());
  EXPECT_EQ(cgroupModeName(CgroupMode::kV2), "v2");
}

TEST_F(CgroupsTest, NoCgroupFilesystemIsAClearError) {
  EXPECT_THAT(detectCgroups(root_, "garbage line\n\n"),
              StatusIs(StatusCode::kFailedPrecondition, ::testing::HasSubstr("no cgroup")));
}

// setCgroupCpuWeight on fake trees (the control files a real cgroupfs creates with the
// directory are made by the test): v1's cpu.shares on the 1024 scale, v2's cpu.weight as given
// with the cpu controller enabled for the root's children first.
TEST_F(CgroupsTest, CpuWeightGoesToSharesOnV1AndWeightOnV2) {
  namespace fs = std::filesystem;
  CgroupInfo v1{.mode = CgroupMode::kHybrid,
                .root = root_,
                .v2_controllers = {},
                .v1_hierarchies = {"cpu", "memory"}};
  fs::create_directories(root_ / "cpu" / "cairn-serve");
  ASSERT_OK(writeFileDurable(root_ / "cpu" / "cairn-serve" / "cpu.shares", "1024\n"));
  ASSERT_OK(setCgroupCpuWeight(v1, "/cairn-serve", 20));
  EXPECT_EQ(readFile(root_ / "cpu" / "cairn-serve" / "cpu.shares").valueOr(""), "204");

  CgroupInfo v2{.mode = CgroupMode::kV2,
                .root = root_,
                .v2_controllers = {"cpu", "memory"},
                .v1_hierarchies = {}};
  ASSERT_OK(writeFileDurable(root_ / "cgroup.subtree_control", "memory\n"));
  fs::create_directories(root_ / "cairn-serve");
  ASSERT_OK(writeFileDurable(root_ / "cairn-serve" / "cpu.weight", "100\n"));
  ASSERT_OK(setCgroupCpuWeight(v2, "/cairn-serve", 20));
  EXPECT_EQ(readFile(root_ / "cairn-serve" / "cpu.weight").valueOr(""), "20");
  EXPECT_EQ(readFile(root_ / "cgroup.subtree_control").valueOr(""), "+cpu");

  CgroupInfo no_cpu{
      .mode = CgroupMode::kV1, .root = root_, .v2_controllers = {}, .v1_hierarchies = {"memory"}};
  EXPECT_THAT(setCgroupCpuWeight(no_cpu, "/cairn-serve", 20),
              StatusIs(StatusCode::kFailedPrecondition, ::testing::HasSubstr("no cpu")));
}

TEST_F(CgroupsTest, CpuWeightOutOfRangeOrABadParentIsRefused) {
  CgroupInfo v1{
      .mode = CgroupMode::kV1, .root = root_, .v2_controllers = {}, .v1_hierarchies = {"cpu"}};
  for (int weight : {0, -5, 10001})
    EXPECT_THAT(setCgroupCpuWeight(v1, "/cairn-serve", weight),
                StatusIs(StatusCode::kInvalidArgument, ::testing::HasSubstr("1..10000")));
  for (const char* parent : {"", "cairn", "/cairn/../etc"})
    EXPECT_THAT(setCgroupCpuWeight(v1, parent, 20), StatusIs(StatusCode::kInvalidArgument))
        << parent;
  EXPECT_FALSE(std::filesystem::exists(root_ / "cpu"));
}

TEST(HostCgroupsTest, DetectsTheLiveLayout) {
  ASSERT_OK_AND_ASSIGN(CgroupInfo info, detectHostCgroups());
  EXPECT_NE(info.mode, CgroupMode::kUnknown);
}

}  // namespace
}  // namespace cairn::runtime
