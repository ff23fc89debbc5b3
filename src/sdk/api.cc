#include "cairn/sdk/api.h"

#include <utility>

#include "cairn/sdk/errors.h"

#ifndef CAIRN_SDK_VERSION
#define CAIRN_SDK_VERSION "0.0.0"
#endif

namespace cairn {
namespace {

constexpr std::string_view kSource = "sdk-cpp";

std::chrono::milliseconds effective(const ApiConnection& c, std::chrono::milliseconds t) {
  return t.count() > 0 ? t : c.defaultTimeout;
}

Snapshot toSnapshot(const sdk::HttpResponse& response, std::string_view operation) {
  Json json = sdk::parseApiJson(response, operation);
  Result<Snapshot> s = parseSnapshot(json);
  if (!s.ok()) {
    throw DaytonaError(std::string(operation) +
                       ": unexpected response from the server: " + s.status().message());
  }
  return std::move(*s);
}

std::string segment(std::string_view id) {
  return "/snapshots/" + encodeUriComponent(id);
}

}  // namespace

std::string_view sdkVersion() {
  return CAIRN_SDK_VERSION;
}

std::shared_ptr<const ApiConnection> makeApiConnection(std::string base_url, std::string api_key,
                                                       std::string jwt_token,
                                                       std::string organization_id,
                                                       std::shared_ptr<sdk::HttpClient> http) {
  auto c = std::make_shared<ApiConnection>();
  while (!base_url.empty() && base_url.back() == '/')
    base_url.pop_back();
  c->baseUrl = std::move(base_url);
  c->http = http ? std::move(http) : std::make_shared<sdk::HttpClient>();
  const std::string& token = api_key.empty() ? jwt_token : api_key;
  c->headers.emplace_back("Authorization", "Bearer " + token);
  c->headers.emplace_back("X-Daytona-Source", std::string(kSource));
  c->headers.emplace_back("X-Daytona-SDK-Version", std::string(sdkVersion()));
  c->headers.emplace_back("User-Agent", std::string(kSource) + "/" + std::string(sdkVersion()));
  if (api_key.empty() && !jwt_token.empty() && !organization_id.empty()) {
    c->headers.emplace_back("X-Daytona-Organization-ID", organization_id);
  }
  return c;
}

std::string encodeUriComponent(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char ch : s) {
    bool keep = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                ch == '-' || ch == '_' || ch == '.' || ch == '!' || ch == '~' || ch == '*' ||
                ch == '\'' || ch == '(' || ch == ')';
    if (keep) {
      out.push_back(static_cast<char>(ch));
    } else {
      out.push_back('%');
      out.push_back(kHex[ch >> 4]);
      out.push_back(kHex[ch & 0x0f]);
    }
  }
  return out;
}

namespace sdk {

HttpResponse callApi(const ApiConnection& connection, std::string_view method,
                     std::string_view path, const Json* body, std::chrono::milliseconds timeout) {
  HttpRequest req;
  req.method = std::string(method);
  req.url = connection.baseUrl + std::string(path);
  req.headers = connection.headers;
  req.headers.emplace_back("Accept", "application/json");
  if (body != nullptr) {
    req.headers.emplace_back("Content-Type", "application/json");
    req.body = body->dump();
  }
  req.timeout = effective(connection, timeout);
  Result<HttpResponse> resp = connection.http->send(req);
  if (!resp.ok()) throwTransportError(resp.status());
  if (resp->status < 200 || resp->status >= 300) throwHttpError(resp->status, resp->body);
  return std::move(*resp);
}

Json parseApiJson(const HttpResponse& response, std::string_view operation) {
  Result<Json> json = parseJson(response.body);
  if (!json.ok()) {
    throw DaytonaError(std::string(operation) +
                       ": the server's response is not JSON: " + json.status().message());
  }
  return std::move(*json);
}

}  // namespace sdk

SnapshotsApi::SnapshotsApi(std::shared_ptr<const ApiConnection> connection)
    : connection_(std::move(connection)) {}

Snapshot SnapshotsApi::createSnapshot(const Json& body, std::chrono::milliseconds timeout) const {
  sdk::HttpResponse r = sdk::callApi(*connection_, "POST", "/snapshots", &body, timeout);
  if (r.body.empty() || r.body == "null") {
    throw DaytonaError("Failed to create snapshot. Didn't receive a snapshot from the server API.");
  }
  return toSnapshot(r, "createSnapshot");
}

Snapshot SnapshotsApi::getSnapshot(std::string_view id_or_name,
                                   std::chrono::milliseconds timeout) const {
  return toSnapshot(sdk::callApi(*connection_, "GET", segment(id_or_name), nullptr, timeout),
                    "getSnapshot");
}

PaginatedSnapshots SnapshotsApi::getAllSnapshots(const ListSnapshotsQuery& query,
                                                 std::chrono::milliseconds timeout) const {
  std::string q;
  auto add = [&q](std::string_view key, const std::string& value) {
    q += q.empty() ? "?" : "&";
    q += std::string(key) + "=" + encodeUriComponent(value);
  };
  if (query.page) add("page", std::to_string(*query.page));
  if (query.limit) add("limit", std::to_string(*query.limit));
  if (query.name) add("name", *query.name);
  if (query.sourceSandboxId) add("sourceSandboxId", *query.sourceSandboxId);
  sdk::HttpResponse r = sdk::callApi(*connection_, "GET", "/snapshots" + q, nullptr, timeout);
  Result<PaginatedSnapshots> page =
      parsePaginatedSnapshots(sdk::parseApiJson(r, "getAllSnapshots"));
  if (!page.ok()) {
    throw DaytonaError("getAllSnapshots: unexpected response from the server: " +
                       page.status().message());
  }
  return std::move(*page);
}

void SnapshotsApi::removeSnapshot(std::string_view id, std::chrono::milliseconds timeout) const {
  sdk::callApi(*connection_, "DELETE", segment(id), nullptr, timeout);
}

Snapshot SnapshotsApi::activateSnapshot(std::string_view id,
                                        std::chrono::milliseconds timeout) const {
  Json empty = Json::object();
  return toSnapshot(sdk::callApi(*connection_, "POST", segment(id) + "/activate", &empty, timeout),
                    "activateSnapshot");
}

void SnapshotsApi::deactivateSnapshot(std::string_view id,
                                      std::chrono::milliseconds timeout) const {
  Json empty = Json::object();
  sdk::callApi(*connection_, "POST", segment(id) + "/deactivate", &empty, timeout);
}

std::string SnapshotsApi::getSnapshotBuildLogsUrl(std::string_view id,
                                                  std::chrono::milliseconds timeout) const {
  sdk::HttpResponse r =
      sdk::callApi(*connection_, "GET", segment(id) + "/build-logs-url", nullptr, timeout);
  Json json = sdk::parseApiJson(r, "getSnapshotBuildLogsUrl");
  if (!json.is_object() || !json.contains("url") || !json["url"].is_string()) {
    throw DaytonaError("getSnapshotBuildLogsUrl: the server's response has no 'url' string");
  }
  return json["url"].get<std::string>();
}

bool SnapshotsApi::streamBuildLogs(const std::string& url, bool follow,
                                   const sdk::ChunkCallback& on_chunk,
                                   const sdk::AbortCheck& should_abort,
                                   std::chrono::milliseconds timeout, std::uint64_t offset) const {
  sdk::HttpRequest req;
  req.url = url + (follow ? "?follow=true" : "?follow=false");
  if (offset > 0) req.url += "&offset=" + std::to_string(offset);
  req.headers = connection_->headers;
  req.timeout = effective(*connection_, timeout);
  Result<sdk::HttpResponse> r = connection_->http->stream(req, on_chunk, should_abort);
  if (r.ok()) return true;
  if (r.status().code() == StatusCode::kCancelled) return false;
  sdk::throwTransportError(r.status());
}

ObjectStorageApi::ObjectStorageApi(std::shared_ptr<const ApiConnection> connection)
    : connection_(std::move(connection)) {}

StorageAccess ObjectStorageApi::getPushAccess(std::chrono::milliseconds timeout) const {
  sdk::HttpResponse r =
      sdk::callApi(*connection_, "GET", "/object-storage/push-access", nullptr, timeout);
  Json json = sdk::parseApiJson(r, "getPushAccess");
  if (!json.is_object())
    throw DaytonaError("getPushAccess: the server's response is not an object");
  auto str = [&json](const char* key, bool required) -> std::string {
    auto it = json.find(key);
    if (it == json.end() || it->is_null()) {
      if (required) {
        throw DaytonaError(std::string("getPushAccess: the server's response lacks '") + key + "'");
      }
      return {};
    }
    if (!it->is_string()) {
      throw DaytonaError(std::string("getPushAccess: '") + key + "' is not a string");
    }
    return it->get<std::string>();
  };
  StorageAccess a;
  a.accessKey = str("accessKey", true);
  a.secret = str("secret", true);
  a.sessionToken = str("sessionToken", false);
  a.storageUrl = str("storageUrl", true);
  a.organizationId = str("organizationId", true);
  a.bucket = str("bucket", false);
  if (a.bucket.empty()) a.bucket = "daytona-volume-builds";
  a.region = str("region", false);
  if (a.region.empty()) a.region = "us-east-1";
  return a;
}

}  // namespace cairn
