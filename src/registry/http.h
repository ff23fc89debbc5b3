// A small HTTP client over one libcurl easy handle (private to registry/). One HttpSession per
// thread: the handle keeps connections alive between requests to the same registry.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/curl_api.h"
#include "cairn/common/status.h"

namespace cairn::registry {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  //!< "Name: value"
  //! Request body: either bytes, or a reader called until it returns 0 (with body_size set).
  std::string body;
  std::function<Result<std::size_t>(char*, std::size_t)> body_reader;
  std::optional<std::uint64_t> body_size;
  //! Response body: streamed to on_data(status, bytes) when set (only for 2xx replies), else
  //! collected in HttpResponse::body.
  std::function<Status(long, std::string_view)> on_data;
  //! Called before a retry of a request whose body comes from body_reader.
  std::function<Status()> rewind_body;
  bool follow_redirects = true;
  bool verify_tls = true;
  std::chrono::seconds connect_timeout{30};
  //! Abort when slower than 1 byte/s for this long (a stalled connection).
  std::chrono::seconds stall_timeout{60};
};

struct HttpResponse {
  long status = 0;
  //! Lowercased names; the headers of the final response only (after redirects).
  std::multimap<std::string, std::string> headers;
  std::string body;  //!< when no on_data, or for non-2xx replies (error documents)
  std::uint64_t body_bytes = 0;
  std::string effective_url;

  std::string header(std::string_view name) const;
};

//! A transport failure (no HTTP status): connection refused, reset, timeout, TLS. `retryable`
//! tells whether trying again may help.
struct TransportError {
  Status status;
  bool retryable = false;
};

class HttpSession {
 public:
  HttpSession();
  ~HttpSession();
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  //! Performs the request. A transport failure is an Unavailable status (retryable() says
  //! whether to try again); any HTTP status, 4xx and 5xx included, is a response.
  Result<HttpResponse> perform(HttpRequest& request);
  //! Whether the last perform() failed in a way worth retrying (reset, timeout, partial).
  bool lastErrorRetryable() const { return last_retryable_; }

 private:
  const CurlApi* api_ = nullptr;  // null when libcurl could not be loaded: see load_error_
  Status load_error_;
  CURL* curl_ = nullptr;
  bool last_retryable_ = false;
};

//! Percent-encodes a query parameter value.
std::string urlEncode(std::string_view s);

//! Resolves a Location header against the URL of the request that returned it.
std::string resolveUrl(std::string_view base, std::string_view location);

}  // namespace cairn::registry
