// API keys: generation, storage hash, verification and usability (spec §1.2, issue 5 "Auth").
//
// A key is "cairn_" + base64url(32 random bytes). It is shown once, at creation; the store keeps
// only sha256(key) in hex. SHA-256 without salt or stretching is enough here because keys are
// 256-bit random values, not passwords: there is nothing to guess.
//
//   GeneratedApiKey g = generateApiKey();
//   ApiKey record{.organization_id = org.id, .name = "ci", .key_hash = g.hash,
//                 .key_prefix = g.prefix, .permissions = {kPermissionWriteSnapshots}};
//   store.createApiKey(record);           // then print g.key to the user, once
//   ...
//   Result<ApiKey> caller = authenticateApiKey(store, bearer_token, clock.now());
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/common/time.h"
#include "cairn/meta/meta_store.h"

namespace cairn::meta {

inline constexpr std::string_view kApiKeyPrefix = "cairn_";

// Permission names (Daytona's API key permissions, spec §1.2).
inline constexpr std::string_view kPermissionWriteSnapshots = "write:snapshots";
inline constexpr std::string_view kPermissionDeleteSnapshots = "delete:snapshots";
inline constexpr std::string_view kPermissionWriteSandboxes = "write:sandboxes";
inline constexpr std::string_view kPermissionDeleteSandboxes = "delete:sandboxes";
inline constexpr std::string_view kPermissionAdmin = "admin";

//! Every permission name known to Cairn, in a stable order.
const std::vector<std::string>& allPermissions();
//! InvalidArgument naming the first unknown permission.
Status validatePermissions(const std::vector<std::string>& permissions);
//! True if `key` holds `permission` (or the `admin` permission).
bool hasPermission(const ApiKey& key, std::string_view permission);

struct GeneratedApiKey {
  std::string key;     //!< The secret: show once, never store.
  std::string hash;    //!< hashApiKey(key): what the store keeps.
  std::string prefix;  //!< A non-secret prefix for listings: "cairn_" + 4 characters.
};

//! A fresh random key from the OS CSPRNG.
GeneratedApiKey generateApiKey();
//! Lowercase hex sha256 of the key.
std::string hashApiKey(std::string_view key);
//! Constant-time comparison of hashApiKey(key) with `stored_hash`.
bool verifyApiKey(std::string_view key, std::string_view stored_hash);
//! Syntax check: the prefix and 43 base64url characters.
bool looksLikeApiKey(std::string_view key);

//! Unauthenticated "This API key has been revoked" / "This API key has expired" when the key
//! cannot be used at `now`; OK otherwise. Revocation is reported first.
Status checkApiKeyUsable(const ApiKey& key, SystemTime now);

//! The whole Bearer check: looks the key up by hash, verifies it in constant time and checks
//! expiry and revocation. Unknown or malformed keys are Unauthenticated "Invalid API key";
//! store failures pass through. Does not record last use (the caller may touchApiKey).
Result<ApiKey> authenticateApiKey(MetaStore& store, std::string_view key, SystemTime now);

//! A key just created: the stored record and the secret, to be shown once.
struct IssuedApiKey {
  ApiKey record;
  std::string key;
};

//! Generates a key and stores it (`cairn admin key create`). Permissions are validated;
//! AlreadyExists if the organization already has a key with that name.
Result<IssuedApiKey> issueApiKey(MetaStore& store, std::string_view organization_id,
                                 std::string_view name, const std::vector<std::string>& permissions,
                                 std::optional<SystemTime> expires_at);

inline constexpr std::string_view kInitialApiKeyName = "initial";

//! First start: when the store holds no organization, creates `organization_name` and a key
//! named "initial" with every permission, and returns it (for the caller to print once and
//! write to `<data-dir>/initial-api-key` with mode 0600). Returns nullopt when the server was
//! already set up — including when another process starting at the same time won the race.
//! A start that crashed between the two steps is completed by the next one.
Result<std::optional<IssuedApiKey>> bootstrapInitialApiKey(MetaStore& store,
                                                           std::string_view organization_name);

//! "30d", "12h", "45m", "3600s", "2w" → duration, for `--expires`. InvalidArgument otherwise.
Result<std::chrono::seconds> parseKeyLifetime(std::string_view text);

}  // namespace cairn::meta
