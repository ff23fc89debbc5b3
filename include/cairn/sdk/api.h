// Thin wrappers over Daytona's REST operations (spec §1.3, §2.1), one method per operationId.
// They send the client headers of §1.2, parse the DTOs and throw the §3.4 exceptions for error
// responses and transport failures; the logic (polling, id resolution, uploads) lives in
// SnapshotService and ObjectStorage.
//
// Every method takes an optional per-call timeout; zero means the connection's default
// (24 hours, like the TS SDK).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/common/json.h"
#include "cairn/sdk/http_client.h"
#include "cairn/sdk/snapshot.h"

namespace cairn {

//! This SDK's version, sent as X-Daytona-SDK-Version and in the User-Agent.
std::string_view sdkVersion();

//! Where and how to reach the API; shared by the API wrappers of one client.
struct ApiConnection {
  //! Base URL including "/api" (e.g. "http://127.0.0.1:3000/api"); paths are appended to it.
  std::string baseUrl{};
  //! Sent with every request: Authorization, X-Daytona-Source, … (see makeApiConnection).
  sdk::HttpHeaders headers{};
  std::shared_ptr<sdk::HttpClient> http{};
  std::chrono::milliseconds defaultTimeout = std::chrono::hours(24);
};

//! Builds the connection with the headers of spec §1.2: `Authorization: Bearer <apiKey or
//! jwtToken>`, X-Daytona-Source "sdk-cpp", X-Daytona-SDK-Version, User-Agent
//! "sdk-cpp/<version>", and X-Daytona-Organization-ID when a JWT is used.
std::shared_ptr<const ApiConnection> makeApiConnection(std::string base_url, std::string api_key,
                                                       std::string jwt_token,
                                                       std::string organization_id,
                                                       std::shared_ptr<sdk::HttpClient> http);

//! encodeURIComponent: everything except A–Z a–z 0–9 - _ . ! ~ * ' ( ) is percent-encoded.
std::string encodeUriComponent(std::string_view s);

struct ListSnapshotsQuery {
  std::optional<long> page{};
  std::optional<long> limit{};
  std::optional<std::string> name{};
  std::optional<std::string> sourceSandboxId{};
};

class SnapshotsApi {
 public:
  explicit SnapshotsApi(std::shared_ptr<const ApiConnection> connection);

  //! POST /snapshots with the CreateSnapshot body as given.
  Snapshot createSnapshot(const Json& body, std::chrono::milliseconds timeout = {}) const;
  //! GET /snapshots/{encodeURIComponent(idOrName)}.
  Snapshot getSnapshot(std::string_view id_or_name, std::chrono::milliseconds timeout = {}) const;
  //! GET /snapshots, sending only the query fields that are set.
  PaginatedSnapshots getAllSnapshots(const ListSnapshotsQuery& query = {},
                                     std::chrono::milliseconds timeout = {}) const;
  //! DELETE /snapshots/{id}; the body is ignored.
  void removeSnapshot(std::string_view id, std::chrono::milliseconds timeout = {}) const;
  Snapshot activateSnapshot(std::string_view id, std::chrono::milliseconds timeout = {}) const;
  void deactivateSnapshot(std::string_view id, std::chrono::milliseconds timeout = {}) const;
  //! GET /snapshots/{id}/build-logs-url → the url.
  std::string getSnapshotBuildLogsUrl(std::string_view id,
                                      std::chrono::milliseconds timeout = {}) const;
  //! GET <url>?follow=<follow> with the API headers, delivering chunks as they arrive. Returns
  //! when the server closes the stream, `on_chunk` returns false or `should_abort` says so
  //! (then it returns false). The HTTP status is not checked (like the TS SDK): the body is log
  //! text either way. Connection failures throw DaytonaConnectionError.
  //! `offset` > 0 adds Cairn's `offset=<bytes>` extension (spec §0.3) to resume a log.
  bool streamBuildLogs(const std::string& url, bool follow, const sdk::ChunkCallback& on_chunk,
                       const sdk::AbortCheck& should_abort = {},
                       std::chrono::milliseconds timeout = {}, std::uint64_t offset = 0) const;

  const ApiConnection& connection() const { return *connection_; }

 private:
  std::shared_ptr<const ApiConnection> connection_;
};

//! GET /object-storage/push-access (spec §2.1): temporary S3 credentials for the caller's
//! organization prefix.
struct StorageAccess {
  std::string accessKey{};
  std::string secret{};
  std::string sessionToken{};
  std::string storageUrl{};
  std::string organizationId{};
  std::string bucket{};  // "daytona-volume-builds" when the server sends none
  std::string region{};  // "us-east-1" when the server sends none
};

class ObjectStorageApi {
 public:
  explicit ObjectStorageApi(std::shared_ptr<const ApiConnection> connection);
  StorageAccess getPushAccess(std::chrono::milliseconds timeout = {}) const;
  const ApiConnection& connection() const { return *connection_; }

 private:
  std::shared_ptr<const ApiConnection> connection_;
};

namespace sdk {

//! One API request: base URL + path, API headers, optional JSON body. Throws the §3.4
//! exceptions for transport failures and non-2xx responses; returns the response otherwise.
HttpResponse callApi(const ApiConnection& connection, std::string_view method,
                     std::string_view path, const Json* body, std::chrono::milliseconds timeout);

//! Parses a 2xx body as JSON; an unparsable body throws DaytonaError naming the operation.
Json parseApiJson(const HttpResponse& response, std::string_view operation);

}  // namespace sdk
}  // namespace cairn
