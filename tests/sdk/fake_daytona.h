// A fake Daytona API plus an S3 stand-in, served by Boost.Beast on 127.0.0.1 (port 0), for the
// SDK's hermetic tests. It implements the snapshot endpoints of spec §1.3 with scriptable state
// sequences, the build-log stream of §1.8, push access (§2.1), and the S3 operations of §2.2,
// checking every S3 request's SigV4 signature (with cairn::sigv4::verifyRequest), session
// token, payload hash, CRC32 checksums and multipart part sizes. Every request is recorded.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cairn/common/json.h"

namespace cairn::testing {

struct RecordedRequest {
  std::string method;
  std::string path;   // decoded only as far as the wire has it (percent-encoding kept)
  std::string query;  // without '?'
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
};

class FakeDaytona {
 public:
  static constexpr const char* kApiKey = "test-api-key";
  static constexpr const char* kAccessKey = "AKIAFAKE";
  static constexpr const char* kSecret = "fake-secret";
  static constexpr const char* kSessionToken = "fake-session-token";
  static constexpr const char* kOrgId = "0b7c2d4e-1f2a-4b3c-8d9e-0f1a2b3c4d5e";
  static constexpr const char* kBucket = "daytona-volume-builds";

  FakeDaytona();
  ~FakeDaytona();
  FakeDaytona(const FakeDaytona&) = delete;
  FakeDaytona& operator=(const FakeDaytona&) = delete;

  //! "http://127.0.0.1:<port>/api".
  std::string apiUrl() const;
  std::string storageUrl() const;
  int port() const { return port_; }

  //! Adds a snapshot as if created earlier; returns its DTO.
  Json addSnapshot(const std::string& name, const std::string& state = "active");
  //! The current DTO of a snapshot by name (nullopt if absent).
  std::optional<Json> snapshotByName(const std::string& name) const;

  //! States a newly created snapshot passes through: the POST answers with the first, and each
  //! GET of it moves one step on; the last one stays. Default {"pending", "building", "active"}.
  void setStateScript(std::vector<std::string> states);
  //! errorReason given to a snapshot that reaches "error" or "build_failed".
  void setErrorReason(std::string reason);
  //! Chunks the log stream sends (one write each).
  void setLogChunks(std::vector<std::string> chunks);
  //! When false, the follow stream stays open after the snapshot is terminal (reference quirk).
  void setCloseLogsWhenTerminal(bool close);
  //! The next request whose method matches and whose path starts with `path_prefix` gets this
  //! answer instead (one-shot).
  void failNext(const std::string& method, const std::string& path_prefix, int status,
                std::string body);
  //! Makes push access answer without the bucket/region fields (defaults apply).
  void setPushAccessMinimal(bool minimal);
  //! build-logs-url answers this URL instead of the fake's own stream (e.g. an unreachable one).
  void setLogsUrl(std::string url);
  //! Makes POST /snapshots answer 200 with an empty body.
  void setEmptyCreateBody(bool empty);

  std::vector<RecordedRequest> requests() const;
  //! Requests with this method whose path starts with `path_prefix`.
  std::vector<RecordedRequest> requests(const std::string& method,
                                        const std::string& path_prefix) const;
  void clearRequests();

  //! Stored S3 objects, key (without bucket) → bytes.
  std::map<std::string, std::string> objects() const;
  void putObject(const std::string& key, std::string bytes);
  //! Verification failures of S3 requests (each also answered with an S3 error); tests expect
  //! none.
  std::vector<std::string> s3Failures() const;
  int multipartCompleted() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace cairn::testing
