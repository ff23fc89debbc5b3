#include "cairn/sdk/daytona.h"

#include <cstdlib>
#include <utility>

#include "cairn/sdk/errors.h"

namespace cairn {
namespace {

void fromEnv(std::string* field, std::initializer_list<const char*> names) {
  if (!field->empty()) return;
  for (const char* name : names) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') {
      *field = value;
      return;
    }
  }
}

std::shared_ptr<const ApiConnection> connect(const DaytonaConfig& c,
                                             std::shared_ptr<sdk::HttpClient> http) {
  return makeApiConnection(c.apiUrl, c.apiKey, c.jwtToken, c.organizationId, std::move(http));
}

}  // namespace

DaytonaConfig resolveDaytonaConfig(DaytonaConfig c) {
  fromEnv(&c.apiKey, {"DAYTONA_API_KEY"});
  fromEnv(&c.jwtToken, {"DAYTONA_JWT_TOKEN"});
  fromEnv(&c.organizationId, {"DAYTONA_ORGANIZATION_ID"});
  fromEnv(&c.apiUrl, {"DAYTONA_API_URL", "DAYTONA_SERVER_URL"});
  fromEnv(&c.target, {"DAYTONA_TARGET"});
  if (c.apiUrl.empty()) c.apiUrl = kDefaultApiUrl;
  if (c.apiKey.empty() && c.jwtToken.empty()) {
    throw DaytonaError("API key or JWT token is required (set DAYTONA_API_KEY or pass apiKey)");
  }
  if (c.apiKey.empty() && c.organizationId.empty()) {
    throw DaytonaError(
        "Organization ID is required when using JWT token (set DAYTONA_ORGANIZATION_ID or pass "
        "organizationId)");
  }
  return c;
}

Daytona::Daytona() : Daytona(DaytonaConfig{}) {}

Daytona::Daytona(DaytonaConfig config) : Daytona(std::move(config), nullptr) {}

Daytona::Daytona(DaytonaConfig config, std::shared_ptr<sdk::HttpClient> http)
    : config_(resolveDaytonaConfig(std::move(config))),
      connection_(connect(config_, std::move(http))),
      snapshot(SnapshotsApi(connection_), ObjectStorageApi(connection_), config_.target),
      objectStorage(ObjectStorageApi(connection_)) {}

}  // namespace cairn
