#include <gtest/gtest.h>

#include "cairn/common/fs.h"
#include "cairn/runtime/overlay.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::runtime {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;

TEST(OverlayOptionsTest, ListsLowersNewestFirstThenUpperAndWork) {
  OverlayMount m{{"/l/3", "/l/2", "/l/1"}, "/u", "/w"};
  ASSERT_OK_AND_ASSIGN(std::string options, overlayMountOptions(m));
  EXPECT_EQ(options, "lowerdir=/l/3:/l/2:/l/1,upperdir=/u,workdir=/w");
  OverlayMount ro{{"/l/2", "/l/1"}, {}, {}};
  ASSERT_OK_AND_ASSIGN(std::string ro_options, overlayMountOptions(ro));
  EXPECT_EQ(ro_options, "lowerdir=/l/2:/l/1");
}

TEST(OverlayOptionsTest, ADiscardedUpperIsVolatile) {
  OverlayMount m{{"/l/1"}, "/u", "/w", /*discard_upper=*/true};
  ASSERT_OK_AND_ASSIGN(std::string options, overlayMountOptions(m));
  EXPECT_EQ(options, "lowerdir=/l/1,upperdir=/u,workdir=/w,volatile");
  // Without an upper there is nothing to sync or discard.
  OverlayMount ro{{"/l/2", "/l/1"}, {}, {}, /*discard_upper=*/true};
  ASSERT_OK_AND_ASSIGN(std::string ro_options, overlayMountOptions(ro));
  EXPECT_EQ(ro_options, "lowerdir=/l/2:/l/1");
}

TEST(OverlayOptionsTest, RejectsPathsOverlayCannotCarry) {
  EXPECT_THAT(overlayMountOptions({{"/a:b"}, "/u", "/w"}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("'/a:b'")));
  EXPECT_THAT(overlayMountOptions({{"/a"}, "/u,x", "/w"}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("upper dir")));
  EXPECT_THAT(overlayMountOptions({{"relative"}, "", ""}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("absolute")));
  EXPECT_THAT(overlayMountOptions({{}, "/u", "/w"}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("no lower")));
}

TEST(FlattenLowersTest, ShortStacksAreReturnedUnchanged) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("cairn-flatten"));
  std::vector<std::filesystem::path> lowers = {"/l/2", "/l/1"};
  ASSERT_OK_AND_ASSIGN(auto result, flattenLowers(lowers, dir.path() / "cache"));
  EXPECT_EQ(result, lowers);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "cache"));
}

TEST(FlattenLowersTest, RejectsATooSmallBudget) {
  EXPECT_THAT(flattenLowers({"/a", "/b"}, "/tmp/x", 1), StatusIs(StatusCode::kInvalidArgument));
}

TEST(FlattenLowersTest, MissingLayerDirIsNotFound) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("cairn-flatten"));
  std::vector<std::filesystem::path> lowers;
  for (int i = 0; i < 5; ++i)
    lowers.push_back(dir.path() / ("missing" + std::to_string(i)));
  EXPECT_THAT(flattenLowers(lowers, dir.path() / "cache", 3),
              StatusIs(StatusCode::kNotFound, HasSubstr("missing")));
}

}  // namespace
}  // namespace cairn::runtime
