#include "http.h"

#include <cstring>
#include <mutex>

#include "cairn/common/strings.h"

namespace cairn::registry {
namespace {

struct Transfer {
  HttpRequest* request;
  HttpResponse* response;
  Status sink_status;
  std::uint64_t sent = 0;
  Status read_status;
};

size_t onHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    // A new response (after a redirect or a 100 Continue): keep only the final headers. The
    // status is taken here because the body callback needs it before curl reports it.
    t->response->headers.clear();
    auto sp = line.find(' ');
    if (sp != std::string_view::npos && line.size() >= sp + 4) {
      t->response->status = std::atol(std::string(line.substr(sp + 1, 3)).c_str());
    }
    return size * n;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->response->headers.emplace(toLowerAscii(trimSpace(line.substr(0, colon))),
                                 std::string(trimSpace(line.substr(colon + 1))));
  }
  return size * n;
}

size_t onBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t len = size * n;
  t->response->body_bytes += len;
  // Only successful bodies are streamed; error documents are collected for the message.
  if (t->request->on_data && t->response->status >= 200 && t->response->status < 300) {
    Status s = t->request->on_data(t->response->status, std::string_view(data, len));
    if (!s.ok()) {
      t->sink_status = std::move(s);
      return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
    }
    return len;
  }
  if (t->response->body.size() + len > (8u << 20)) {
    t->sink_status = resourceExhausted("HTTP response body larger than 8 MiB");
    return 0;
  }
  t->response->body.append(data, len);
  return len;
}

size_t onRead(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t want = size * n;
  if (t->request->body_reader) {
    auto got = t->request->body_reader(buf, want);
    if (!got.ok()) {
      t->read_status = got.status();
      return CURL_READFUNC_ABORT;
    }
    t->sent += *got;
    return *got;
  }
  std::size_t left = t->request->body.size() - t->sent;
  std::size_t take = std::min(left, want);
  std::memcpy(buf, t->request->body.data() + t->sent, take);
  t->sent += take;
  return take;
}

bool isRetryable(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  auto it = headers.find(toLowerAscii(name));
  return it == headers.end() ? std::string() : it->second;
}

HttpSession::HttpSession() {
  auto api = curlApi();
  if (!api.ok()) {
    load_error_ = api.status();
    return;
  }
  api_ = *api;
  curl_ = api_->easy_init();
}

HttpSession::~HttpSession() {
  if (curl_) api_->easy_cleanup(curl_);
}

Result<HttpResponse> HttpSession::perform(HttpRequest& request) {
  last_retryable_ = false;
  if (api_ == nullptr) return load_error_;
  if (!curl_) return internalError("curl_easy_init failed");
  api_->easy_reset(curl_);
  HttpResponse response;
  Transfer t{&request, &response, okStatus(), 0, okStatus()};
  api_->easy_setopt(curl_, CURLOPT_URL, request.url.c_str());
  api_->easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  api_->easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
  api_->easy_setopt(curl_, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  api_->easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
  api_->easy_setopt(curl_, CURLOPT_MAXREDIRS, 10L);
  api_->easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT,
                    static_cast<long>(request.connect_timeout.count()));
  api_->easy_setopt(curl_, CURLOPT_LOW_SPEED_LIMIT, 1L);
  api_->easy_setopt(curl_, CURLOPT_LOW_SPEED_TIME,
                    static_cast<long>(request.stall_timeout.count()));
  api_->easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, request.verify_tls ? 1L : 0L);
  api_->easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, request.verify_tls ? 2L : 0L);
  api_->easy_setopt(curl_, CURLOPT_USERAGENT, "cairn/0.1");
  api_->easy_setopt(curl_, CURLOPT_HEADERFUNCTION, onHeader);
  api_->easy_setopt(curl_, CURLOPT_HEADERDATA, &t);
  api_->easy_setopt(curl_, CURLOPT_WRITEFUNCTION, onBody);
  // Layer bodies are tens of MB: let one recv take up to 512 KiB when the socket has that
  // much (curl's default is 16 KiB; a fast sender fills more per call).
  api_->easy_setopt(curl_, CURLOPT_BUFFERSIZE, 512L * 1024L);
  api_->easy_setopt(curl_, CURLOPT_WRITEDATA, &t);

  bool has_body = request.body_reader || !request.body.empty() || request.method == "PUT" ||
                  request.method == "PATCH" || request.method == "POST";
  if (request.method == "HEAD") {
    api_->easy_setopt(curl_, CURLOPT_NOBODY, 1L);
  } else if (request.method == "GET") {
    api_->easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
  } else if (has_body) {
    api_->easy_setopt(curl_, CURLOPT_UPLOAD, 1L);
    api_->easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    api_->easy_setopt(curl_, CURLOPT_READFUNCTION, onRead);
    api_->easy_setopt(curl_, CURLOPT_READDATA, &t);
    std::uint64_t size = request.body_size.value_or(request.body.size());
    api_->easy_setopt(curl_, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
  } else {
    api_->easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  curl_slist* headers = nullptr;
  for (const auto& h : request.headers)
    headers = api_->slist_append(headers, h.c_str());
  // curl adds "Expect: 100-continue" to uploads; registries answer it, but the round trip is
  // wasted time on small blobs and some proxies mishandle it.
  if (has_body) headers = api_->slist_append(headers, "Expect:");
  api_->easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);

  CURLcode code = api_->easy_perform(curl_);
  api_->slist_free_all(headers);

  if (!t.sink_status.ok()) return t.sink_status;
  if (!t.read_status.ok()) return t.read_status.withContext(request.method + " " + request.url);
  if (code != CURLE_OK) {
    last_retryable_ = isRetryable(code);
    return unavailable(request.method + " " + request.url + ": " + api_->easy_strerror(code));
  }
  long status = 0;
  api_->easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
  response.status = status;
  char* effective = nullptr;
  api_->easy_getinfo(curl_, CURLINFO_EFFECTIVE_URL, &effective);
  if (effective) response.effective_url = effective;
  return response;
}

std::string urlEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string resolveUrl(std::string_view base, std::string_view location) {
  if (location.starts_with("http://") || location.starts_with("https://")) {
    return std::string(location);
  }
  auto scheme_end = base.find("://");
  if (scheme_end == std::string_view::npos) return std::string(location);
  auto path_start = base.find('/', scheme_end + 3);
  std::string_view origin =
      path_start == std::string_view::npos ? base : base.substr(0, path_start);
  if (location.starts_with("//"))
    return std::string(base.substr(0, scheme_end + 1)) + std::string(location);
  if (location.starts_with("/")) return std::string(origin) + std::string(location);
  // Relative path: replace the last segment of the base path.
  std::string_view path = path_start == std::string_view::npos ? "/" : base.substr(path_start);
  path = path.substr(0, path.find('?'));
  return std::string(origin) + std::string(path.substr(0, path.rfind('/') + 1)) +
         std::string(location);
}

}  // namespace cairn::registry
