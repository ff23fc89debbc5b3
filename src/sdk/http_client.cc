#include "cairn/sdk/http_client.h"

#include <algorithm>
#include <exception>
#include <mutex>
#include <thread>

#include "cairn/common/curl_api.h"
#include "cairn/common/strings.h"

namespace cairn::sdk {
namespace {

using Clock = std::chrono::steady_clock;

// Failures that mean "no response arrived". A refused connection never delivered the request,
// so any method may try again; after a reset or an empty reply the server may have acted on it,
// so only idempotent methods are repeated (a second POST /snapshots would answer 409).
bool isRetryable(CURLcode code, std::string_view method) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
      return true;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
      return method != "POST" && method != "PATCH";
    default:
      return false;
  }
}

bool isConnectionFailure(CURLcode code) {
  return code == CURLE_COULDNT_CONNECT || code == CURLE_SEND_ERROR || code == CURLE_RECV_ERROR ||
         code == CURLE_GOT_NOTHING || code == CURLE_COULDNT_RESOLVE_HOST ||
         code == CURLE_COULDNT_RESOLVE_PROXY;
}

struct Transfer {
  HttpResponse response;
  const ChunkCallback* on_chunk = nullptr;
  const AbortCheck* should_abort = nullptr;
  bool body_started = false;
  bool stopped_by_consumer = false;
  // An exception from a caller's callback must not unwind through libcurl's C frames: it is
  // parked here, the transfer stops, and it is rethrown once curl_easy_perform has returned.
  std::exception_ptr callback_error;
};

std::size_t onBody(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t len = size * n;
  t->body_started = true;
  if (t->on_chunk == nullptr) {
    t->response.body.append(data, len);
    return len;
  }
  if (len == 0) return 0;
  bool go_on = false;
  try {
    go_on = (*t->on_chunk)(std::string_view(data, len));
  } catch (...) {
    t->callback_error = std::current_exception();
  }
  if (!go_on) {
    t->stopped_by_consumer = true;
    return 0;  // makes libcurl stop with CURLE_WRITE_ERROR
  }
  return len;
}

std::size_t onHeader(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t len = size * n;
  std::string_view line(data, len);
  if (line.starts_with("HTTP/")) {
    // A new response (after 100-continue or a redirect): forget the previous headers.
    t->response.headers.clear();
    return len;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return len;
  t->response.headers.emplace_back(toLowerAscii(trimSpace(line.substr(0, colon))),
                                   std::string(trimSpace(line.substr(colon + 1))));
  return len;
}

int onProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  try {
    return (t->should_abort != nullptr && *t->should_abort && (*t->should_abort)()) ? 1 : 0;
  } catch (...) {
    t->callback_error = std::current_exception();
    return 1;
  }
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (equalsIgnoreCase(key, name)) return value;
  }
  return std::nullopt;
}

// Idle easy handles. libcurl keeps a connection cache per handle, so reusing handles is what
// gives keep-alive across requests.
// Handles come from the process-wide libcurl (curlApi()), loaded by the first request: a client
// that never sends one never loads it.
struct HttpClient::Pool {
  std::mutex mu;
  std::vector<CURL*> idle;
  const CurlApi* api = nullptr;  // set with the first handle; every handle in `idle` is its

  CURL* acquire(const CurlApi* curl) {
    {
      std::lock_guard lock(mu);
      api = curl;
      if (!idle.empty()) {
        CURL* h = idle.back();
        idle.pop_back();
        return h;
      }
    }
    return curl->easy_init();
  }
  void release(CURL* h) {
    std::lock_guard lock(mu);
    api->easy_reset(h);  // keeps live connections, drops the options
    idle.push_back(h);
  }
  ~Pool() {
    for (CURL* h : idle)
      api->easy_cleanup(h);
  }
};

HttpClient::HttpClient(RetryPolicy retry) : retry_(retry), pool_(std::make_unique<Pool>()) {}

HttpClient::~HttpClient() = default;

Result<HttpResponse> HttpClient::send(const HttpRequest& request) {
  return perform(request, nullptr, nullptr);
}

Result<HttpResponse> HttpClient::stream(const HttpRequest& request, const ChunkCallback& on_chunk,
                                        const AbortCheck& should_abort) {
  return perform(request, &on_chunk, &should_abort);
}

Result<HttpResponse> HttpClient::perform(const HttpRequest& request, const ChunkCallback* on_chunk,
                                         const AbortCheck* should_abort) {
  const std::string what = request.method + " " + request.url;
  const bool has_deadline = request.timeout.count() > 0;
  const Clock::time_point deadline = Clock::now() + request.timeout;
  std::chrono::milliseconds backoff = retry_.initial_backoff;

  for (int attempt = 1;; ++attempt) {
    long timeout_ms = 0;
    if (has_deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return deadlineExceeded(what + ": timed out");
      timeout_ms = static_cast<long>(left.count());
    }

    CAIRN_ASSIGN_OR_RETURN(const CurlApi* api, curlApi());
    CURL* h = pool_->acquire(api);
    if (h == nullptr) return internalError(what + ": curl_easy_init failed");
    Transfer t;
    t.on_chunk = on_chunk;
    t.should_abort = should_abort;
    char errbuf[CURL_ERROR_SIZE] = {0};

    curl_slist* headers = nullptr;
    bool has_content_type = false;
    for (const auto& [name, value] : request.headers) {
      if (equalsIgnoreCase(name, "content-type")) has_content_type = true;
      headers = api->slist_append(headers, (name + ": " + value).c_str());
    }
    // libcurl would add "Expect: 100-continue" to large bodies and a form Content-Type to
    // POSTFIELDS; neither was asked for (and a signed S3 request must send what it signed).
    headers = api->slist_append(headers, "Expect:");
    if (!has_content_type) headers = api->slist_append(headers, "Content-Type:");

    api->easy_setopt(h, CURLOPT_URL, request.url.c_str());
    api->easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    api->easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    api->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    api->easy_setopt(h, CURLOPT_WRITEFUNCTION, onBody);
    api->easy_setopt(h, CURLOPT_WRITEDATA, &t);
    api->easy_setopt(h, CURLOPT_HEADERFUNCTION, onHeader);
    api->easy_setopt(h, CURLOPT_HEADERDATA, &t);
    api->easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    api->easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    api->easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    if (should_abort != nullptr && *should_abort) {
      api->easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
      api->easy_setopt(h, CURLOPT_XFERINFOFUNCTION, onProgress);
      api->easy_setopt(h, CURLOPT_XFERINFODATA, &t);
    }
    if (request.method == "HEAD") {
      api->easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (request.method != "GET" || !request.body.empty()) {
      bool sends_body = !request.body.empty() || request.method == "POST" ||
                        request.method == "PUT" || request.method == "PATCH";
      if (sends_body) {
        api->easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(request.body.size()));
        api->easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
      }
      if (request.method != "POST") {
        api->easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
      }
    }

    CURLcode rc = api->easy_perform(h);
    long status = 0;
    api->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    api->slist_free_all(headers);
    pool_->release(h);

    if (t.callback_error) std::rethrow_exception(t.callback_error);
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t.stopped_by_consumer)) {
      t.response.status = status;
      return std::move(t.response);
    }
    std::string reason = errbuf[0] != '\0' ? std::string(trimRightSpace(errbuf))
                                           : std::string(api->easy_strerror(rc));
    if (rc == CURLE_OPERATION_TIMEDOUT) return deadlineExceeded(what + ": " + reason);
    if (rc == CURLE_ABORTED_BY_CALLBACK) return cancelled(what + ": aborted");
    bool retry =
        isRetryable(rc, request.method) && !t.body_started && attempt < retry_.max_attempts;
    if (retry && has_deadline && Clock::now() + backoff >= deadline) retry = false;
    if (!retry) {
      std::string attempts =
          attempt > 1 ? " (after " + std::to_string(attempt) + " attempts)" : std::string();
      if (isConnectionFailure(rc)) return unavailable(what + ": " + reason + attempts);
      return internalError(what + ": " + reason);
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, retry_.max_backoff);
  }
}

}  // namespace cairn::sdk
