#include "cairn/api/server.h"

#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <optional>
#include <thread>
#include <unordered_map>

#include "cairn/common/log.h"
#include "cairn/common/strings.h"

namespace cairn::api {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class Connection;

struct Server::Impl {
  // Declared first so that they outlive the io_context: connections still owned by queued
  // handlers unregister themselves when the io_context is destroyed.
  mutable std::mutex conns_mu;
  std::condition_variable conns_cv;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> conns;

  ServerOptions options;
  Router router;
  std::shared_ptr<MetricsRegistry> metrics;
  Counter* requests = nullptr;
  Histogram* latency = nullptr;

  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  tcp::acceptor acceptor{ioc};
  tcp::endpoint endpoint;
  std::vector<std::thread> threads;

  std::atomic<bool> stopping{false};
  bool stopped = false;
  std::mutex stop_mu;

  void doAccept();
  void add(const std::shared_ptr<Connection>& c);
  void remove(Connection* c);
  std::vector<std::shared_ptr<Connection>> liveConnections();
  void stop();
};

namespace {

bool isQuietError(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::operation_aborted || ec == beast::error::timeout ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == net::error::bad_descriptor;
}

}  // namespace

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server::Impl& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket)) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  ~Connection() {
    if (body_stream_) body_stream_->cancel();
    server_.remove(this);
  }

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->readHeader(); });
  }

  // Posted by Server::stop(), runs on the connection's strand.
  void onServerStop() {
    switch (state_) {
      case State::kIdle:
        close();
        break;
      case State::kStreaming:
        if (body_stream_) body_stream_->close();
        break;
      case State::kBusy:
      case State::kClosed:
        break;
    }
  }

  void forceClose() { close(); }
  auto strand() { return stream_.get_executor(); }

 private:
  enum class State { kIdle, kBusy, kStreaming, kClosed };
  static constexpr std::chrono::seconds kLingerTime{2};

  void readHeader() {
    if (state_ == State::kClosed) return;
    if (server_.stopping) {
      close();
      return;
    }
    state_ = State::kIdle;
    // Nothing of the previous request may leak into errors about this one.
    req_ = Request{};
    match_ = Router::Match{};
    match_.status = 400;
    is_head_ = false;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(server_.options.max_header_bytes, UINT32_MAX)));
    // The body limit is chosen per route once the header is known (see onHeader).
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    stream_.expires_after(server_.options.idle_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->onHeader(ec); });
  }

  void onHeader(beast::error_code ec) {
    if (state_ == State::kClosed) return;
    start_ = std::chrono::steady_clock::now();
    if (ec) {
      if (ec == http::error::header_limit) {
        return sendParseError(431, "Request header fields are larger than " +
                                       std::to_string(server_.options.max_header_bytes) + " bytes");
      }
      // A connection that closes or idles out between requests is normal, not an error.
      if (isQuietError(ec) || (ec == http::error::partial_message && buffer_.size() == 0)) {
        return close();
      }
      return sendParseError(400, "Malformed HTTP request: " + ec.message());
    }
    state_ = State::kBusy;
    auto& msg = parser_->get();
    req_.method = std::string(msg.method_string());
    req_.target = std::string(msg.target());
    req_.remote_address = remote_;
    std::size_t q = req_.target.find('?');
    req_.path = req_.target.substr(0, q);
    if (q != std::string::npos) req_.query = req_.target.substr(q + 1);
    for (const auto& field : msg) {
      req_.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    is_head_ = req_.method == "HEAD";

    if (req_.path.empty() || req_.path.front() != '/') {
      return sendParseError(400, "Request target must be an absolute path");
    }
    match_ = server_.router.match(req_.method, req_.path, req_.params);
    if (match_.status != 0 && is_head_) {
      std::map<std::string, std::string> params;
      Router::Match get = server_.router.match("GET", req_.path, params);
      if (get.status == 0) {
        match_ = std::move(get);
        req_.params = std::move(params);
      }
    }
    std::size_t limit = server_.options.max_body_bytes;
    if (match_.status == 0 && match_.options->max_body_bytes != 0) {
      limit = match_.options->max_body_bytes;
    }
    if (auto len = parser_->content_length(); len && *len > limit) {
      return sendParseError(413, "Request body of " + std::to_string(*len) +
                                     " bytes is larger than the limit of " + std::to_string(limit) +
                                     " bytes");
    }
    parser_->body_limit(limit);
    limit_ = limit;

    if (!parser_->is_done() &&
        equalsIgnoreCase(std::string(msg[http::field::expect]), "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      stream_.expires_after(server_.options.read_timeout);
      http::async_write(stream_, *cont,
                        [self = shared_from_this(), cont](beast::error_code wec, std::size_t) {
                          if (wec) return self->close();
                          self->readBody();
                        });
      return;
    }
    readBody();
  }

  void readBody() {
    stream_.expires_after(server_.options.read_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->onBody(ec); });
  }

  void onBody(beast::error_code ec) {
    if (state_ == State::kClosed) return;
    if (ec) {
      if (ec == http::error::body_limit) {
        return sendParseError(
            413, "Request body is larger than the limit of " + std::to_string(limit_) + " bytes");
      }
      if (isQuietError(ec) || ec == http::error::partial_message) return close();
      return sendParseError(400, "Malformed HTTP request body: " + ec.message());
    }
    auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    req_.body = std::move(msg.body());

    Response res;
    if (match_.status != 0) {
      res = errorResponse(req_.target, match_.status, match_.error);
      req_.route = "unmatched";
    } else {
      req_.route = match_.pattern;
      Result<std::vector<std::pair<std::string, std::string>>> query = parseQuery(req_.query);
      if (!query.ok()) {
        res = routeError(400, query.status().message());
      } else {
        req_.query_params = std::move(*query);
        try {
          res = (*match_.handler)(req_);
        } catch (const std::exception& e) {
          spdlog::error("handler for {} {} threw: {}", req_.method, req_.target, e.what());
          res = errorResponse(req_.target, 500, "An unexpected error occurred.");
        } catch (...) {
          spdlog::error("handler for {} {} threw a non-exception", req_.method, req_.target);
          res = errorResponse(req_.target, 500, "An unexpected error occurred.");
        }
      }
    }
    sendResponse(std::move(res));
  }

  // An error raised by the server for a request whose route is known, formatted the route's
  // way. Such errors end the connection unless `keep` (the request was read completely).
  Response routeError(int status, const std::string& message) {
    if (match_.status == 0 && match_.options->error_formatter) {
      try {
        return match_.options->error_formatter(req_, status, message);
      } catch (const std::exception& e) {
        spdlog::error("error formatter for {} threw: {}", req_.target, e.what());
      }
    }
    return errorResponse(req_.target, status, message);
  }

  void sendParseError(int status, const std::string& message) {
    keep_alive_ = false;
    if (req_.target.empty()) req_.target = parser_ ? std::string(parser_->get().target()) : "";
    if (req_.route.empty()) req_.route = match_.status == 0 ? match_.pattern : "malformed";
    sendResponse(routeError(status, message));
  }

  template <typename Body>
  void fillHeaders(http::response<Body>& r, const Response& res) {
    r.result(static_cast<unsigned>(res.status));
    r.version(11);
    for (const auto& [k, v] : res.headers)
      r.insert(k, v);
    if (server_.stopping) keep_alive_ = false;
    r.keep_alive(keep_alive_);
  }

  void sendResponse(Response res) {
    status_ = res.status;
    if (res.stream) return startStream(std::move(res));
    if (is_head_) {
      auto r = std::make_shared<http::response<http::empty_body>>();
      fillHeaders(*r, res);
      if (!res.header("Content-Length")) {
        r->set(http::field::content_length,
               std::to_string(res.file ? res.file_size : res.body.size()));
      }
      return write(r);
    }
    if (res.file) {
      auto r = std::make_shared<http::response<http::file_body>>();
      fillHeaders(*r, res);
      beast::file f;
      f.native_handle(res.file->release());
      beast::error_code ec;
      r->body().reset(std::move(f), ec);
      if (ec) {
        spdlog::error("{} {}: cannot send file: {}", req_.method, req_.target, ec.message());
        return sendResponse(errorResponse(req_.target, 500, "An unexpected error occurred."));
      }
      r->prepare_payload();
      return write(r);
    }
    auto r = std::make_shared<http::response<http::string_body>>();
    fillHeaders(*r, res);
    r->body() = std::move(res.body);
    r->prepare_payload();
    write(r);
  }

  template <typename Message>
  void write(std::shared_ptr<Message> r) {
    // Counted before the bytes go out: a client that has read the response and scrapes
    // /metrics next must find its request there (the latency excludes the socket write).
    recordMetrics();
    stream_.expires_after(server_.options.read_timeout);
    http::async_write(stream_, *r,
                      [self = shared_from_this(), r](beast::error_code ec, std::size_t) {
                        if (ec) return self->close();
                        if (!self->keep_alive_) return self->lingeringClose();
                        self->readHeader();
                      });
  }

  // Closing a socket with unread bytes (the rest of a body we refused with 413, say) makes the
  // kernel send a reset, and a client still writing its body loses our response with it. So,
  // as nginx does: stop sending, read and drop what still comes for a short while, then close.
  void lingeringClose() {
    if (state_ == State::kClosed) return;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    stream_.expires_after(kLingerTime);
    drain();
  }

  void drain() {
    auto buf = std::make_shared<std::array<char, 16384>>();
    stream_.async_read_some(net::buffer(*buf),
                            [self = shared_from_this(), buf](beast::error_code ec, std::size_t) {
                              if (ec) return self->close();  // EOF, reset or kLingerTime
                              self->drain();
                            });
  }

  void recordMetrics() {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const std::string& route = req_.route.empty() ? std::string("malformed") : req_.route;
    server_.requests->inc(
        {{"route", route}, {"method", req_.method}, {"status", std::to_string(status_)}});
    server_.latency->observe(seconds, {{"route", route}});
  }

  // Streams: the header goes out at once, then each batch of queued bytes as one chunk. While
  // the queue is empty nothing is pending except a read that notices the client leaving.
  void startStream(Response res) {
    body_stream_ = std::move(res.stream);
    keep_alive_ = false;  // a stream ends the connection; keeps the state machine simple
    auto r = std::make_shared<http::response<http::empty_body>>();
    fillHeaders(*r, res);
    r->chunked(true);
    r->set(http::field::cache_control, "no-cache");
    auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*r);
    stream_.expires_after(server_.options.read_timeout);
    http::async_write_header(stream_, *sr,
                             [self = shared_from_this(), r, sr](beast::error_code ec, std::size_t) {
                               if (ec) return self->close();
                               self->state_ = State::kStreaming;
                               self->watchClient();
                               std::weak_ptr<Connection> weak = self;
                               auto executor = self->stream_.get_executor();
                               self->body_stream_->setWaker([weak, executor] {
                                 net::post(executor, [weak] {
                                   if (auto c = weak.lock()) c->pump();
                                 });
                               });
                               self->pump();
                               // A server stopping while the header was written must still end the
                               // stream.
                               if (self->server_.stopping) self->body_stream_->close();
                             });
  }

  void watchClient() {
    stream_.socket().async_read_some(
        net::buffer(watch_buf_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (self->state_ != State::kStreaming) return;
          // Bytes from the client during a stream are ignored (the connection closes after
          // it); an error or EOF means the client left.
          if (!ec) return self->watchClient();
          self->close();
        });
  }

  void pump() {
    if (state_ != State::kStreaming || writing_) return;
    bool closed = false;
    chunk_ = body_stream_->take(closed);
    if (!chunk_.empty()) {
      writing_ = true;
      stream_.expires_after(server_.options.read_timeout);
      net::async_write(stream_, http::make_chunk(net::buffer(chunk_)),
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         self->writing_ = false;
                         if (ec) return self->close();
                         self->pump();
                       });
      return;
    }
    if (closed) {
      writing_ = true;
      stream_.expires_after(server_.options.read_timeout);
      net::async_write(stream_, http::make_chunk_last(),
                       [self = shared_from_this()](beast::error_code, std::size_t) {
                         self->writing_ = false;
                         self->recordMetrics();
                         self->close();
                       });
      return;
    }
    // Idle: no timer, so a quiet follower is not cut off.
    stream_.expires_never();
  }

  void close() {
    if (state_ == State::kClosed) return;
    bool was_streaming = state_ == State::kStreaming;
    state_ = State::kClosed;
    if (body_stream_) body_stream_->cancel();
    if (was_streaming) body_stream_.reset();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  Server::Impl& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string remote_;
  State state_ = State::kIdle;
  Request req_;
  Router::Match match_;
  std::size_t limit_ = 0;
  bool is_head_ = false;
  bool keep_alive_ = true;
  int status_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::shared_ptr<ResponseStream> body_stream_;
  std::string chunk_;
  bool writing_ = false;
  std::array<char, 256> watch_buf_{};
};

void Server::Impl::doAccept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || stopping) return;
      spdlog::warn("accept failed: {}", ec.message());
    } else if (stopping) {
      beast::error_code ignored;
      socket.close(ignored);
      return;
    } else {
      auto c = std::make_shared<Connection>(*this, std::move(socket));
      add(c);
      c->start();
    }
    if (!stopping) doAccept();
  });
}

void Server::Impl::add(const std::shared_ptr<Connection>& c) {
  std::lock_guard lock(conns_mu);
  conns[c.get()] = c;
}

void Server::Impl::remove(Connection* c) {
  std::lock_guard lock(conns_mu);
  conns.erase(c);
  conns_cv.notify_all();
}

std::vector<std::shared_ptr<Connection>> Server::Impl::liveConnections() {
  std::vector<std::shared_ptr<Connection>> out;
  std::lock_guard lock(conns_mu);
  for (auto& [ptr, weak] : conns) {
    if (auto c = weak.lock()) out.push_back(std::move(c));
  }
  return out;
}

void Server::Impl::stop() {
  std::lock_guard stop_lock(stop_mu);
  if (stopped) return;
  stopped = true;
  stopping = true;
  net::post(ioc, [this] {
    beast::error_code ec;
    acceptor.close(ec);
  });
  // Copies are taken under the lock and released outside it: dropping the last reference to a
  // connection runs its destructor, which takes the lock itself.
  for (auto& c : liveConnections()) {
    // Each connection decides on its own strand what "stop" means for its state.
    net::post(c->strand(), [c] { c->onServerStop(); });
  }
  {
    std::unique_lock lock(conns_mu);
    conns_cv.wait_for(lock, options.shutdown_grace, [this] { return conns.empty(); });
  }
  for (auto& c : liveConnections()) {
    net::post(c->strand(), [c] { c->forceClose(); });
  }
  work.reset();
  {
    // Give forced closes a moment to run their handlers, then stop the loop regardless.
    std::unique_lock lock(conns_mu);
    conns_cv.wait_for(lock, std::chrono::seconds(2), [this] { return conns.empty(); });
  }
  ioc.stop();
  // The registry may outlive this server (it can be shared): its gauge must not read us.
  metrics->gauge("cairn_http_connections", "Open HTTP connections", [] { return 0.0; });
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
  threads.clear();
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  stop();
}

Result<std::unique_ptr<Server>> Server::start(ServerOptions options, Router router,
                                              std::shared_ptr<MetricsRegistry> metrics) {
  if (options.io_threads < 1) return invalidArgument("io_threads must be at least 1");
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->metrics = metrics ? std::move(metrics) : std::make_shared<MetricsRegistry>();
  impl->requests = &impl->metrics->counter("cairn_http_requests_total",
                                           "HTTP requests by route, method and status");
  impl->latency = &impl->metrics->histogram(
      "cairn_http_request_duration_seconds", "HTTP request latency by route",
      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  Impl* raw = impl.get();
  impl->metrics->gauge("cairn_http_connections", "Open HTTP connections", [raw] {
    std::lock_guard lock(raw->conns_mu);
    return static_cast<double>(raw->conns.size());
  });

  std::map<std::string, std::string> ignored;
  auto missing = [&](std::string_view path) {
    Router::Match m = router.match("GET", path, ignored);
    return m.status != 0 || m.pattern != path;
  };
  if (missing("/healthz")) {
    (void)router.add("GET", "/healthz", [](Request&) {
      return Response::json(200, {{"status", "ok"}});
    });
  }
  if (missing("/metrics")) {
    auto m = impl->metrics;
    (void)router.add("GET", "/metrics", [m](Request&) {
      return Response::text(200, m->render(), "text/plain; version=0.0.4; charset=utf-8");
    });
  }
  if (!impl->options.openapi_json.empty() && missing("/api/openapi.json")) {
    std::string doc = impl->options.openapi_json;
    (void)router.add("GET", "/api/openapi.json", [doc](Request&) {
      return Response::text(200, doc, "application/json; charset=utf-8");
    });
  }
  impl->router = std::move(router);

  beast::error_code ec;
  auto address = net::ip::make_address(impl->options.host, ec);
  if (ec) return invalidArgument("invalid listen host \"" + impl->options.host + "\"");
  tcp::endpoint ep(address, impl->options.port);
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return unavailable("cannot listen on " + impl->options.host + ":" +
                       std::to_string(impl->options.port) + ": " + ec.message());
  }
  impl->endpoint = impl->acceptor.local_endpoint(ec);
  impl->work.emplace(impl->ioc.get_executor());
  impl->doAccept();
  for (int i = 0; i < impl->options.io_threads; ++i) {
    impl->threads.emplace_back([raw] {
      try {
        raw->ioc.run();
      } catch (const std::exception& e) {
        // Handlers catch their own exceptions; this is a bug in the server itself.
        spdlog::critical("HTTP I/O thread stopped by an exception: {}", e.what());
      }
    });
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

std::string Server::address() const {
  std::string host = impl_->endpoint.address().to_string();
  if (impl_->endpoint.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(impl_->endpoint.port());
}

std::uint16_t Server::port() const {
  return impl_->endpoint.port();
}

MetricsRegistry& Server::metrics() {
  return *impl_->metrics;
}

void Server::stop() {
  impl_->stop();
}

std::size_t Server::connectionCount() const {
  std::lock_guard lock(impl_->conns_mu);
  return impl_->conns.size();
}

}  // namespace cairn::api
