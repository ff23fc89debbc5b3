#include "cairn/common/uuid.h"

#include <gtest/gtest.h>

#include <set>

namespace cairn {
namespace {

TEST(UuidTest, V4IsWellFormedAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string u = uuidV4();
    EXPECT_TRUE(isUuid(u)) << u;
    EXPECT_TRUE(isSdkUuid(u)) << u;
    EXPECT_EQ(u[14], '4');
    EXPECT_NE(std::string("89ab").find(u[19]), std::string::npos);
    for (char c : u)
      EXPECT_FALSE(c >= 'A' && c <= 'F');
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 200u);
}

TEST(UuidTest, SdkRecognisesVersionsOneToFiveAndNil) {
  EXPECT_TRUE(isSdkUuid("00000000-0000-0000-0000-000000000000"));
  EXPECT_TRUE(isSdkUuid("6F1C2A9E-8B7D-4C5E-9F10-2A3B4C5D6E7F"));
  EXPECT_FALSE(isSdkUuid("01890a5d-ac96-774b-bcce-b302099a8057"));  // v7
  EXPECT_FALSE(isSdkUuid("6f1c2a9e-8b7d-4c5e-7f10-2a3b4c5d6e7f"));  // bad variant
  EXPECT_FALSE(isUuid("my-snapshot"));
  EXPECT_FALSE(isUuid("6f1c2a9e8b7d-4c5e-9f10-2a3b4c5d6e7f0"));
}

}  // namespace
}  // namespace cairn
