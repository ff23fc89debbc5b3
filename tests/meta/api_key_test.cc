#include "cairn/meta/api_key.h"

#include <set>

#include "cairn/common/crypto.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::meta {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

TEST(ApiKeyTest, GeneratedKeysArePrintableRandomAndHashed) {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    GeneratedApiKey g = generateApiKey();
    EXPECT_TRUE(looksLikeApiKey(g.key)) << g.key;
    EXPECT_EQ(g.key.size(), 6u + 43u);
    EXPECT_EQ(g.key.rfind("cairn_", 0), 0u);
    EXPECT_EQ(g.hash, sha256Hex(g.key));
    EXPECT_EQ(g.hash.size(), 64u);
    EXPECT_EQ(g.prefix, g.key.substr(0, 10));
    EXPECT_TRUE(seen.insert(g.key).second) << "duplicate key";
  }
}

TEST(ApiKeyTest, VerifyComparesHashes) {
  GeneratedApiKey g = generateApiKey();
  EXPECT_TRUE(verifyApiKey(g.key, g.hash));
  EXPECT_FALSE(verifyApiKey(g.key + "x", g.hash));
  EXPECT_FALSE(verifyApiKey(g.key, generateApiKey().hash));
  EXPECT_FALSE(verifyApiKey(g.key, ""));
  EXPECT_FALSE(verifyApiKey("", g.hash));
}

TEST(ApiKeyTest, RecognisesKeySyntax) {
  const std::string good = generateApiKey().key;
  EXPECT_TRUE(looksLikeApiKey(good));
  EXPECT_FALSE(looksLikeApiKey(""));
  EXPECT_FALSE(looksLikeApiKey("cairn_"));
  EXPECT_FALSE(looksLikeApiKey("dtn_" + good.substr(4)));
  EXPECT_FALSE(looksLikeApiKey(good + "A"));
  std::string bad_char = good;
  bad_char.back() = '+';
  EXPECT_FALSE(looksLikeApiKey(bad_char));
}

TEST(ApiKeyTest, UsabilityNamesTheReason) {
  const SystemTime now = RealClock::instance().now();
  ApiKey k;
  EXPECT_OK(checkApiKeyUsable(k, now));
  k.expires_at = now + 1h;
  EXPECT_OK(checkApiKeyUsable(k, now));
  k.expires_at = now;
  EXPECT_THAT(checkApiKeyUsable(k, now),
              StatusIs(StatusCode::kUnauthenticated, "This API key has expired"));
  k.revoked_at = now - 1s;
  EXPECT_THAT(checkApiKeyUsable(k, now),
              StatusIs(StatusCode::kUnauthenticated, "This API key has been revoked"));
}

TEST(ApiKeyTest, Permissions) {
  ApiKey k{.permissions = {std::string(kPermissionWriteSnapshots)}};
  EXPECT_TRUE(hasPermission(k, kPermissionWriteSnapshots));
  EXPECT_FALSE(hasPermission(k, kPermissionDeleteSnapshots));
  ApiKey admin{.permissions = {std::string(kPermissionAdmin)}};
  EXPECT_TRUE(hasPermission(admin, kPermissionDeleteSnapshots));
  EXPECT_FALSE(hasPermission(ApiKey{}, kPermissionWriteSnapshots));
  EXPECT_OK(validatePermissions(allPermissions()));
  EXPECT_OK(validatePermissions({}));
  EXPECT_THAT(validatePermissions({"write:snapshots", "rm:everything"}),
              StatusIs(StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("rm:everything"), HasSubstr("write:snapshots"))));
}

TEST(ApiKeyTest, ParsesLifetimes) {
  EXPECT_EQ(*parseKeyLifetime("30d"), std::chrono::seconds(30 * 86400));
  EXPECT_EQ(*parseKeyLifetime("12h"), std::chrono::seconds(12 * 3600));
  EXPECT_EQ(*parseKeyLifetime("45m"), std::chrono::seconds(45 * 60));
  EXPECT_EQ(*parseKeyLifetime("90s"), std::chrono::seconds(90));
  EXPECT_EQ(*parseKeyLifetime("2w"), std::chrono::seconds(14 * 86400));
  for (const char* bad : {"", "d", "30", "30x", "-1d", "0d", "1.5d", "d30", " 30d", "99999999d",
                          "99999999999999999999d"}) {
    EXPECT_THAT(parseKeyLifetime(bad),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr("invalid key lifetime")))
        << bad;
  }
}

}  // namespace
}  // namespace cairn::meta
