// Cairn's HTTP/1.1 server on Boost.Beast: keep-alive, size limits, timeouts, a pool of I/O
// threads, streamed responses, graceful shutdown, /healthz and /metrics built in.
//
// Handlers run on the I/O threads (one request of a connection at a time), so a handler that
// blocks for long should hand its work elsewhere and return a stream. A handler that throws
// gets a logged 500 "An unexpected error occurred."; malformed requests get a 4xx with the JSON
// error body, and the connection is closed.
//
//   Router router;
//   router.add("GET", "/api/hello", [](Request&) { return Response::json(200, {{"hi", 1}}); });
//   CAIRN_ASSIGN_OR_RETURN(auto server, Server::start(options, std::move(router)));
//   std::cout << "listening on http://" << server->address() << "\n";
//   ...
//   server->stop();  // stop accepting, finish in-flight requests, close streams, join threads
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "cairn/api/http.h"
#include "cairn/api/metrics.h"
#include "cairn/api/router.h"
#include "cairn/common/status.h"

namespace cairn::api {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0 picks a free port; address() tells which
  int io_threads = 2;
  std::size_t max_header_bytes = 16 * 1024;  // 431 beyond
  std::size_t max_body_bytes = 1024 * 1024;  // 413 beyond (routes may raise it)
  //! From the first byte of a request to its last; and per write of a response.
  std::chrono::milliseconds read_timeout{30'000};
  //! A keep-alive connection waiting for its next request is closed after this.
  std::chrono::milliseconds idle_timeout{60'000};
  //! How long stop() waits for in-flight requests before closing everything.
  std::chrono::milliseconds shutdown_grace{10'000};
  //! Served at GET /api/openapi.json when not empty.
  std::string openapi_json;
};

class Server {
 public:
  //! Binds, listens and starts the I/O threads. Adds GET /healthz and GET /metrics (and
  //! /api/openapi.json) to the router unless it already has them.
  static Result<std::unique_ptr<Server>> start(ServerOptions options, Router router,
                                               std::shared_ptr<MetricsRegistry> metrics = nullptr);
  ~Server();  // stop()s
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  //! "127.0.0.1:43121"
  std::string address() const;
  std::uint16_t port() const;
  MetricsRegistry& metrics();

  //! Graceful shutdown: stop accepting; idle keep-alive connections are closed; requests in
  //! flight complete (their responses carry Connection: close); open streams are closed after
  //! flushing what was written; after shutdown_grace anything left is cut. Idempotent.
  void stop();

  //! Number of open connections (for tests and the metrics gauge).
  std::size_t connectionCount() const;

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::api
