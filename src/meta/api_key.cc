#include "cairn/meta/api_key.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "cairn/common/crypto.h"
#include "cairn/common/encoding.h"

namespace cairn::meta {
namespace {

constexpr std::size_t kKeyRandomBytes = 32;
// base64url without padding of 32 bytes.
constexpr std::size_t kKeyEncodedChars = 43;

bool isBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

const std::vector<std::string>& allPermissions() {
  static const std::vector<std::string> kAll = {
      std::string(kPermissionWriteSnapshots), std::string(kPermissionDeleteSnapshots),
      std::string(kPermissionWriteSandboxes), std::string(kPermissionDeleteSandboxes),
      std::string(kPermissionAdmin)};
  return kAll;
}

Status validatePermissions(const std::vector<std::string>& permissions) {
  const auto& all = allPermissions();
  for (const std::string& p : permissions) {
    if (std::find(all.begin(), all.end(), p) == all.end()) {
      std::string known;
      for (const std::string& k : all)
        known += (known.empty() ? "" : ", ") + k;
      return invalidArgument("unknown permission \"" + p + "\" (known: " + known + ")");
    }
  }
  return okStatus();
}

bool hasPermission(const ApiKey& key, std::string_view permission) {
  return std::any_of(key.permissions.begin(), key.permissions.end(), [&](const std::string& p) {
    return p == permission || p == kPermissionAdmin;
  });
}

GeneratedApiKey generateApiKey() {
  GeneratedApiKey g;
  g.key = std::string(kApiKeyPrefix) + base64UrlEncode(randomBytes(kKeyRandomBytes));
  g.hash = hashApiKey(g.key);
  g.prefix = g.key.substr(0, kApiKeyPrefix.size() + 4);
  return g;
}

std::string hashApiKey(std::string_view key) {
  return sha256Hex(key);
}

bool verifyApiKey(std::string_view key, std::string_view stored_hash) {
  return constantTimeEquals(hashApiKey(key), stored_hash);
}

bool looksLikeApiKey(std::string_view key) {
  if (key.size() != kApiKeyPrefix.size() + kKeyEncodedChars) return false;
  if (key.substr(0, kApiKeyPrefix.size()) != kApiKeyPrefix) return false;
  return std::all_of(key.begin() + static_cast<std::ptrdiff_t>(kApiKeyPrefix.size()), key.end(),
                     isBase64UrlChar);
}

Status checkApiKeyUsable(const ApiKey& key, SystemTime now) {
  if (key.revoked_at && *key.revoked_at <= now) {
    return unauthenticated("This API key has been revoked");
  }
  if (key.expires_at && *key.expires_at <= now) {
    return unauthenticated("This API key has expired");
  }
  return okStatus();
}

Result<ApiKey> authenticateApiKey(MetaStore& store, std::string_view key, SystemTime now) {
  const Status invalid = unauthenticated("Invalid API key");
  if (!looksLikeApiKey(key)) return invalid;
  Result<ApiKey> found = store.getApiKeyByHash(hashApiKey(key));
  if (!found.ok()) {
    if (found.status().code() == StatusCode::kNotFound) return invalid;
    return found.status();
  }
  // The lookup was by hash; the constant-time check guards against a store whose lookup
  // is looser than equality (e.g. a collation).
  if (!verifyApiKey(key, found->key_hash)) return invalid;
  CAIRN_RETURN_IF_ERROR(checkApiKeyUsable(*found, now));
  return found;
}

Result<IssuedApiKey> issueApiKey(MetaStore& store, std::string_view organization_id,
                                 std::string_view name, const std::vector<std::string>& permissions,
                                 std::optional<SystemTime> expires_at) {
  CAIRN_RETURN_IF_ERROR(validatePermissions(permissions));
  GeneratedApiKey g = generateApiKey();
  ApiKey record;
  record.organization_id = std::string(organization_id);
  record.name = std::string(name);
  record.key_hash = g.hash;
  record.key_prefix = g.prefix;
  record.permissions = permissions;
  record.expires_at = expires_at;
  CAIRN_ASSIGN_OR_RETURN(ApiKey stored, store.createApiKey(record));
  return IssuedApiKey{std::move(stored), std::move(g.key)};
}

Result<std::optional<IssuedApiKey>> bootstrapInitialApiKey(MetaStore& store,
                                                           std::string_view organization_name) {
  using Out = std::optional<IssuedApiKey>;
  CAIRN_ASSIGN_OR_RETURN(std::vector<Organization> orgs, store.listOrganizations());
  // Anything but "nothing yet" or "only our organization, still without a key" means that
  // an operator has set the server up: leave it alone.
  if (orgs.size() > 1 || (orgs.size() == 1 && orgs[0].name != organization_name)) return Out();
  Organization org;
  if (orgs.empty()) {
    Result<Organization> created =
        store.createOrganization(Organization{.name = std::string(organization_name)});
    if (created.ok()) {
      org = std::move(created).value();
    } else if (created.status().code() == StatusCode::kAlreadyExists) {
      // Another process created it a moment ago; the key is settled below, by name.
      CAIRN_ASSIGN_OR_RETURN(org, store.getOrganizationByName(organization_name));
    } else {
      return created.status();
    }
  } else {
    org = orgs[0];
  }
  CAIRN_ASSIGN_OR_RETURN(std::vector<ApiKey> keys, store.listApiKeys(org.id));
  if (!keys.empty()) return Out();
  Result<IssuedApiKey> issued =
      issueApiKey(store, org.id, kInitialApiKeyName, allPermissions(), std::nullopt);
  if (!issued.ok()) {
    if (issued.status().code() == StatusCode::kAlreadyExists) return Out();
    return issued.status();
  }
  return Out(std::move(issued).value());
}

Result<std::chrono::seconds> parseKeyLifetime(std::string_view text) {
  const std::string bad = "invalid key lifetime \"" + std::string(text) +
                          "\": expected a positive number with a unit s, m, h, d or w (e.g. 30d)";
  if (text.size() < 2) return invalidArgument(bad);
  std::int64_t n = 0;
  const char* end = text.data() + text.size() - 1;
  auto [ptr, ec] = std::from_chars(text.data(), end, n);
  if (ec != std::errc() || ptr != end || n <= 0) return invalidArgument(bad);
  std::int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    case 'w':
      unit = 7 * 86400;
      break;
    default:
      return invalidArgument(bad);
  }
  // Cap at ~100 years: beyond that the caller meant "never" and should omit --expires.
  if (n > (100LL * 365 * 86400) / unit) return invalidArgument(bad + " (at most 100 years)");
  return std::chrono::seconds(n * unit);
}

}  // namespace cairn::meta
