#include "cairn/common/encoding.h"

#include "cairn/testing/status_matchers.h"

namespace cairn {
namespace {

using ::cairn::testing::StatusIs;

TEST(EncodingTest, HexRoundTrip) {
  EXPECT_EQ(hexEncode(std::string_view("\x00\xff\x10", 3)), "00ff10");
  EXPECT_EQ(*hexDecode("00FF10"), std::string("\x00\xff\x10", 3));
  EXPECT_THAT(hexDecode("abc"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(hexDecode("zz"), StatusIs(StatusCode::kInvalidArgument));
}

TEST(EncodingTest, Base64Rfc4648Vectors) {
  const char* plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char* enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(base64Encode(plain[i]), enc[i]);
    EXPECT_EQ(*base64Decode(enc[i]), plain[i]);
  }
  EXPECT_EQ(base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_THAT(base64Decode("a!=="), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(base64Decode("a"), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace cairn
