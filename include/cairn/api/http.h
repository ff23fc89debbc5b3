// HTTP request/response types for Cairn's server (api/server.h), independent of Boost.Beast so
// that handlers and other areas do not include Beast headers.
//
// A handler gets a Request (raw path and query, decoded path parameters, headers, the whole
// body) and returns a Response: a full body, an open file (sent with its size, read in pieces),
// or a ResponseStream that a producer fills later (chunked, flushed per write).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/common/status.h"

namespace cairn::api {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

//! Decodes %XX escapes ('+' stays '+'); a malformed escape is InvalidArgument.
Result<std::string> percentDecode(std::string_view s);
//! Splits "a=1&b=%2F" into decoded pairs, in order. Keys without '=' get an empty value.
Result<std::vector<std::pair<std::string, std::string>>> parseQuery(std::string_view query);
//! "Not Found" for 404, "" for unknown codes.
std::string_view reasonPhrase(int status);

struct Request {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // as received: path and query, percent-encoded
  std::string path;    // target before '?', still percent-encoded
  std::string query;   // target after '?', still percent-encoded, without '?'
  HeaderList headers;
  std::string body;
  std::string remote_address;
  //! The matched route pattern ("/api/snapshots/{idOrName}"); metrics label by it.
  std::string route;
  //! Decoded path parameters of the matched route.
  std::map<std::string, std::string> params;
  //! Decoded query parameters (first value of each key wins in queryParam()).
  std::vector<std::pair<std::string, std::string>> query_params;

  //! First header with that name (case-insensitive), or nullptr.
  const std::string* header(std::string_view name) const;
  std::optional<std::string> queryParam(std::string_view name) const;
  bool hasQueryParam(std::string_view name) const;
  const std::string& param(const std::string& name) const;
};

//! The producer side of a streamed (chunked) response. Thread-safe: any thread may write or
//! close it. Writing queues the bytes and wakes the connection, which sends them as one chunk
//! each time it gets to run; no thread waits while the stream is idle, so an open stream costs
//! memory, not a thread.
class ResponseStream {
 public:
  static std::shared_ptr<ResponseStream> create() {
    return std::shared_ptr<ResponseStream>(new ResponseStream());
  }

  //! Queues data. Returns false once the client is gone or the stream is closed (the producer
  //! should stop then).
  bool write(std::string data);
  //! Ends the response after everything written so far has been sent.
  void close();
  //! True once the client disconnected (or the server shut the stream down).
  bool cancelled() const;
  //! Called once, from a server thread, when the client goes away or the stream ends; for
  //! producers that must unsubscribe. Runs at once if that already happened.
  void onFinished(std::function<void()> callback);
  //! Bytes queued and not yet handed to the socket (producers may use it for back-pressure).
  std::size_t pendingBytes() const;

  // Server side.
  void setWaker(std::function<void()> waker);
  //! Takes everything queued; `closed` says whether the producer closed the stream.
  std::string take(bool& closed);
  void cancel();

 private:
  ResponseStream() = default;
  void finish(std::unique_lock<std::mutex>& lock);

  mutable std::mutex mu_;
  std::string queued_;
  bool closed_ = false;
  bool cancelled_ = false;
  bool finished_ = false;
  std::function<void()> waker_;
  std::function<void()> on_finished_;
};

struct Response {
  int status = 200;
  HeaderList headers;
  std::string body;
  //! When set, the body is this file from its current position to its end (e.g. GetObject).
  std::shared_ptr<UniqueFd> file;
  std::uint64_t file_size = 0;
  //! When set, the body is streamed chunked from this stream.
  std::shared_ptr<ResponseStream> stream;

  void setHeader(std::string name, std::string value);
  const std::string* header(std::string_view name) const;

  static Response json(int status, const Json& body);
  static Response text(int status, std::string body, std::string content_type = "text/plain");
  static Response empty(int status);
  static Response streaming(int status, std::shared_ptr<ResponseStream> stream,
                            std::string content_type = "application/octet-stream");
};

//! The Daytona error body (spec §1.1): {path, timestamp, statusCode, error, message}.
//! `path` is the request target including the query string.
Response errorResponse(std::string_view target, int status, std::string_view message);
//! Status → HTTP via httpStatusFor; Internal becomes "An unexpected error occurred." (the real
//! message is for the log, not for the client).
Response errorResponse(std::string_view target, const Status& status);

}  // namespace cairn::api
