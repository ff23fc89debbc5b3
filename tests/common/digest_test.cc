#include "cairn/common/digest.h"

#include "cairn/testing/status_matchers.h"

namespace cairn {
namespace {

using ::cairn::testing::StatusIs;

TEST(DigestTest, ParseAndFormat) {
  const std::string hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  ASSERT_OK_AND_ASSIGN(Digest d, Digest::parse("sha256:" + hex));
  EXPECT_EQ(d.hex(), hex);
  EXPECT_EQ(d.str(), "sha256:" + hex);
  EXPECT_EQ(d, Digest::ofBytes(""));
  EXPECT_EQ(d.shortStr(), "sha256:e3b0c44298fc");
}

TEST(DigestTest, RejectsBadDigests) {
  EXPECT_THAT(Digest::parse("sha256:abc"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Digest::parse("md5:" + std::string(32, 'a')), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Digest::parse(std::string(64, 'a')), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Digest::parse("sha256:" + std::string(64, 'A')),
              StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace cairn
