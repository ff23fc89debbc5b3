#include "cairn/api/http.h"

#include "cairn/common/http_status.h"
#include "cairn/common/strings.h"
#include "cairn/common/time.h"

namespace cairn::api {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

const std::string kEmpty;

}  // namespace

Result<std::string> percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) {
      return invalidArgument("truncated percent escape in \"" + std::string(s.substr(0, 200)) +
                             "\"");
    }
    int hi = hexValue(s[i + 1]);
    int lo = hexValue(s[i + 2]);
    if (hi < 0 || lo < 0) {
      return invalidArgument("malformed percent escape in \"" + std::string(s.substr(0, 200)) +
                             "\"");
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> parseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos < query.size()) {
    std::size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view item = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (item.empty()) continue;
    std::size_t eq = item.find('=');
    CAIRN_ASSIGN_OR_RETURN(std::string key, percentDecode(item.substr(0, eq)));
    std::string value;
    if (eq != std::string_view::npos) {
      CAIRN_ASSIGN_OR_RETURN(value, percentDecode(item.substr(eq + 1)));
    }
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

std::string_view reasonPhrase(int status) {
  return httpReasonPhrase(status);
}

const std::string* Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (equalsIgnoreCase(k, name)) return &v;
  }
  return nullptr;
}

std::optional<std::string> Request::queryParam(std::string_view name) const {
  for (const auto& [k, v] : query_params) {
    if (k == name) return v;
  }
  return std::nullopt;
}

bool Request::hasQueryParam(std::string_view name) const {
  return queryParam(name).has_value();
}

const std::string& Request::param(const std::string& name) const {
  auto it = params.find(name);
  return it == params.end() ? kEmpty : it->second;
}

bool ResponseStream::write(std::string data) {
  std::function<void()> waker;
  {
    std::lock_guard lock(mu_);
    if (closed_ || cancelled_) return false;
    if (data.empty()) return true;
    bool was_empty = queued_.empty();
    queued_ += data;
    // Only the first write after the connection drained the queue needs to wake it; later
    // writes are picked up by the same wake-up.
    if (was_empty) waker = waker_;
  }
  if (waker) waker();
  return true;
}

void ResponseStream::close() {
  std::function<void()> waker;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    waker = waker_;
  }
  if (waker) waker();
}

bool ResponseStream::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

void ResponseStream::onFinished(std::function<void()> callback) {
  std::unique_lock lock(mu_);
  if (finished_) {
    lock.unlock();
    if (callback) callback();
    return;
  }
  on_finished_ = std::move(callback);
}

std::size_t ResponseStream::pendingBytes() const {
  std::lock_guard lock(mu_);
  return queued_.size();
}

void ResponseStream::setWaker(std::function<void()> waker) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    waker_ = std::move(waker);
    wake = !queued_.empty() || closed_;
  }
  if (wake && waker_) waker_();
}

std::string ResponseStream::take(bool& closed) {
  std::unique_lock lock(mu_);
  std::string out = std::move(queued_);
  queued_.clear();
  closed = closed_;
  if (closed_ && out.empty()) finish(lock);
  return out;
}

void ResponseStream::cancel() {
  std::unique_lock lock(mu_);
  cancelled_ = true;
  queued_.clear();
  waker_ = nullptr;
  finish(lock);
}

void ResponseStream::finish(std::unique_lock<std::mutex>& lock) {
  if (finished_) return;
  finished_ = true;
  std::function<void()> cb = std::move(on_finished_);
  on_finished_ = nullptr;
  lock.unlock();
  if (cb) cb();
  lock.lock();
}

void Response::setHeader(std::string name, std::string value) {
  for (auto& [k, v] : headers) {
    if (equalsIgnoreCase(k, name)) {
      v = std::move(value);
      return;
    }
  }
  headers.emplace_back(std::move(name), std::move(value));
}

const std::string* Response::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (equalsIgnoreCase(k, name)) return &v;
  }
  return nullptr;
}

Response Response::json(int status, const Json& body) {
  Response r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  r.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
  return r;
}

Response Response::text(int status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.emplace_back("Content-Type", std::move(content_type));
  return r;
}

Response Response::empty(int status) {
  Response r;
  r.status = status;
  return r;
}

Response Response::streaming(int status, std::shared_ptr<ResponseStream> stream,
                             std::string content_type) {
  Response r;
  r.status = status;
  r.stream = std::move(stream);
  r.headers.emplace_back("Content-Type", std::move(content_type));
  return r;
}

Response errorResponse(std::string_view target, int status, std::string_view message) {
  Json body = {
      {"path", std::string(target)},
      {"timestamp", formatRfc3339(std::chrono::system_clock::now())},
      {"statusCode", status},
      {"error", std::string(reasonPhrase(status))},
      {"message", std::string(message)},
  };
  return Response::json(status, body);
}

Response errorResponse(std::string_view target, const Status& status) {
  int code = httpStatusFor(status.code());
  if (status.code() == StatusCode::kInternal || (code >= 500 && code != 503 && code != 504)) {
    return errorResponse(target, code, "An unexpected error occurred.");
  }
  return errorResponse(target, code, status.message());
}

}  // namespace cairn::api
