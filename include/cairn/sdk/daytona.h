// The client: configuration, then `snapshot` and `objectStorage`, as in the TS SDK.
//
//   cairn::Daytona daytona;  // DAYTONA_API_KEY, DAYTONA_API_URL, DAYTONA_TARGET from the env
//   cairn::Daytona local({.apiKey = "…", .apiUrl = "http://127.0.0.1:3000/api"});
//   for (const auto& s : local.snapshot.list().items) std::cout << s.name << "\n";
//
// Unset fields come from DAYTONA_API_KEY, DAYTONA_API_URL (alias DAYTONA_SERVER_URL),
// DAYTONA_TARGET, DAYTONA_JWT_TOKEN and DAYTONA_ORGANIZATION_ID; the URL defaults to
// https://app.daytona.io/api. Requests carry the headers of spec §1.2 with source "sdk-cpp".
#pragma once

#include <memory>
#include <string>

#include "cairn/sdk/api.h"
#include "cairn/sdk/http_client.h"
#include "cairn/sdk/object_storage.h"
#include "cairn/sdk/snapshot_service.h"

namespace cairn {

inline constexpr const char* kDefaultApiUrl = "https://app.daytona.io/api";

struct DaytonaConfig {
  std::string apiKey{};
  std::string apiUrl{};
  //! Default region of created snapshots (regionId), e.g. "us".
  std::string target{};
  //! Instead of an API key: a JWT plus the organization it acts for.
  std::string jwtToken{};
  std::string organizationId{};
};

//! `config` with its unset fields filled from the environment and the default URL. Throws
//! DaytonaError when there is neither an API key nor a JWT, or a JWT without an organization.
DaytonaConfig resolveDaytonaConfig(DaytonaConfig config);

class Daytona {
 public:
  //! Everything from the environment.
  Daytona();
  explicit Daytona(DaytonaConfig config);
  //! With a caller-provided HTTP client (shared connection pool, custom retry policy).
  Daytona(DaytonaConfig config, std::shared_ptr<sdk::HttpClient> http);

  //! The resolved configuration.
  const DaytonaConfig& config() const { return config_; }

 private:
  DaytonaConfig config_;
  std::shared_ptr<const ApiConnection> connection_;

 public:
  SnapshotService snapshot;
  ObjectStorage objectStorage;
};

}  // namespace cairn
