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

TEST(HostCgroupsTest, DetectsTheLiveLayout) {
  ASSERT_OK_AND_ASSIGN(CgroupInfo info, detectHostCgroups());
  EXPECT_NE(info.mode, CgroupMode::kUnknown);
}

}  // namespace
}  // namespace cairn::runtime
