// A small HTTP client over libcurl, used by the SDK for the REST API, the log stream and S3.
//
// Connections are kept alive: finished easy handles go back to a pool and keep their
// connection cache, so consecutive requests to one host reuse a socket. TLS uses the system
// CA store; proxies come from the environment (http_proxy, https_proxy, no_proxy), which libcurl
// reads itself. A request that fails before any response arrives (connection refused or reset,
// empty reply) is retried with exponential backoff; an HTTP response of any status is never
// retried, it is returned. The client is thread-safe: each request takes its own handle.
//
//   HttpClient http;
//   HttpRequest req{.method = "GET", .url = "http://127.0.0.1:3000/api/snapshots"};
//   Result<HttpResponse> resp = http.send(req);
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/common/status.h"

namespace cairn::sdk {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";
  std::string url{};
  HttpHeaders headers{};
  std::string body{};
  //! Limit for the whole request including retries and backoff; 0 = none.
  std::chrono::milliseconds timeout{0};
};

struct HttpResponse {
  long status = 0;
  //! Header names are lowercased; the headers are those of the final response.
  HttpHeaders headers{};
  std::string body{};

  //! The first header of that (case-insensitive) name.
  std::optional<std::string> header(std::string_view name) const;
};

struct RetryPolicy {
  //! Total attempts for a request that gets no response at all.
  int max_attempts = 4;
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{2000};
};

//! Receives each chunk of a streamed body as it arrives; returning false stops the stream
//! (the request then ends OK). An exception it throws stops the transfer and propagates out of
//! stream() (it never unwinds through libcurl).
using ChunkCallback = std::function<bool(std::string_view)>;
//! Polled about once a second while a transfer runs; returning true aborts it (Cancelled).
using AbortCheck = std::function<bool()>;

class HttpClient {
 public:
  explicit HttpClient(RetryPolicy retry = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  //! Sends a request and collects the body. Transport failures are Status codes:
  //! DeadlineExceeded (the timeout passed), Unavailable (no connection or no response after
  //! the retries), Cancelled (aborted), Internal (anything else); messages name the method,
  //! the URL and libcurl's reason.
  Result<HttpResponse> send(const HttpRequest& request);

  //! Like send(), but the body goes to `on_chunk` as it arrives instead of into the response.
  //! Retries happen only while no byte of a body has been delivered.
  Result<HttpResponse> stream(const HttpRequest& request, const ChunkCallback& on_chunk,
                              const AbortCheck& should_abort = {});

 private:
  struct Pool;
  Result<HttpResponse> perform(const HttpRequest& request, const ChunkCallback* on_chunk,
                               const AbortCheck* should_abort);
  RetryPolicy retry_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace cairn::sdk
