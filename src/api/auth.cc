#include "cairn/api/auth.h"

#include <algorithm>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cairn/common/strings.h"
#include "cairn/meta/api_key.h"

namespace cairn::api {
namespace {

bool shouldTouch(const std::string& key_id, SystemTime now) {
  static std::mutex mu;
  static std::unordered_map<std::string, SystemTime> last_touch;
  std::lock_guard lock(mu);
  if (last_touch.size() > 100000) last_touch.clear();
  auto [it, inserted] = last_touch.try_emplace(key_id, now);
  if (inserted) return true;
  if (now - it->second < std::chrono::minutes(1) && now >= it->second) return false;
  it->second = now;
  return true;
}

}  // namespace

Result<service::Caller> authenticate(const Request& request, meta::MetaStore& store,
                                     SystemTime now) {
  const std::string* header = request.header("Authorization");
  if (header == nullptr) return unauthenticated("Unauthorized");
  std::string_view value = *header;
  constexpr std::string_view kBearer = "Bearer ";
  if (value.size() <= kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), value.begin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) ==
               std::tolower(static_cast<unsigned char>(b));
      })) {
    return unauthenticated("Unauthorized");
  }
  std::string_view token = value.substr(kBearer.size());
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ')
    token.remove_suffix(1);
  if (token.empty()) return unauthenticated("Unauthorized");

  CAIRN_ASSIGN_OR_RETURN(meta::ApiKey key, meta::authenticateApiKey(store, token, now));
  Result<meta::Organization> org = store.getOrganization(key.organization_id);
  if (!org.ok()) {
    if (org.status().code() == StatusCode::kNotFound) {
      return permissionDenied("Invalid authentication context");
    }
    return org.status();
  }
  if (org->suspended) {
    return permissionDenied("Organization is suspended" +
                            (org->suspension_reason ? ": " + *org->suspension_reason : ""));
  }
  if (const std::string* org_header = request.header("X-Daytona-Organization-ID");
      org_header != nullptr && !org_header->empty() && *org_header != org->id) {
    return permissionDenied("Invalid authentication context");
  }
  // Last use is informational: recorded at most once a minute per key (a database write on
  // every request would cost more than the rest of a GET), and a failure must not fail it.
  if (shouldTouch(key.id, now)) (void)store.touchApiKey(key.id, now);
  return service::Caller{key.organization_id, key.permissions};
}

Status requirePermission(const service::Caller& caller,
                         std::initializer_list<std::string_view> any_of) {
  for (const std::string& held : caller.permissions) {
    if (held == meta::kPermissionAdmin) return okStatus();
    for (std::string_view wanted : any_of) {
      if (held == wanted) return okStatus();
    }
  }
  return permissionDenied("Access denied");
}

}  // namespace cairn::api
