// The HTTP server over real sockets on 127.0.0.1 (port 0): routing, keep-alive, limits,
// timeouts, streaming, shutdown, metrics, and malformed input that must get a 4xx, not a crash.
#include "cairn/api/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <random>
#include <thread>

#include "cairn/common/json.h"
#include "cairn/common/time.h"
#include "cairn/testing/status_matchers.h"
#include "test_client.h"

namespace cairn::api {
namespace {

using ::cairn::api::testing::get;
using ::cairn::api::testing::TestClient;
using ::testing::HasSubstr;
namespace http = boost::beast::http;

Json jsonBody(const ::cairn::api::testing::TestResponse& r) {
  auto j = parseJson(r.body());
  EXPECT_TRUE(j.ok()) << r.body();
  return j.ok() ? *j : Json();
}

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions options = {}) {
    (void)router_.add("GET", "/api/snapshots/{idOrName}", [](Request& r) {
      return Response::json(200, {{"idOrName", r.param("idOrName")}, {"route", r.route}});
    });
    (void)router_.add("GET", "/api/snapshots/{id}/build-logs-url", [](Request& r) {
      return Response::json(200, {{"id", r.param("id")}});
    });
    (void)router_.add("GET", "/api/echo-query", [](Request& r) {
      Json j = Json::object();
      for (auto& [k, v] : r.query_params)
        j[k] = v;
      return Response::json(200, j);
    });
    (void)router_.add("POST", "/api/echo", [](Request& r) {
      return Response::text(200, r.body, "application/octet-stream");
    });
    (void)router_.add(
        "POST", "/api/big",
        [](Request& r) {
          return Response::json(200, {{"size", r.body.size()}});
        },
        RouteOptions{8 * 1024 * 1024});
    (void)router_.add("GET", "/api/throw",
                      [](Request&) -> Response { throw std::runtime_error("boom"); });
    (void)router_.add("GET", "/api/notfound", [](Request& r) {
      return errorResponse(r.target, notFound("Snapshot foo not found"));
    });
    (void)router_.add("GET", "/api/internal", [](Request& r) {
      return errorResponse(r.target, internalError("database exploded at /var/lib/x"));
    });
    (void)router_.add("GET", "/api/files/{path+}", [](Request& r) {
      return Response::json(200, {{"path", r.param("path")}});
    });
    (void)router_.add("GET", "/api/stream", [this](Request&) {
      auto s = ResponseStream::create();
      {
        std::lock_guard lock(mu_);
        streams_.push_back(s);
      }
      cv_.notify_all();
      return Response::streaming(200, s);
    });
    (void)router_.add("GET", "/api/slow", [this](Request&) {
      std::unique_lock lock(mu_);
      slow_entered_ = true;
      cv_.notify_all();
      cv_.wait(lock, [this] { return slow_release_; });
      return Response::text(200, "finished");
    });
    options.openapi_json = R"({"openapi":"3.0.0"})";
    auto s = Server::start(options, std::move(router_));
    ASSERT_OK(s);
    server_ = std::move(*s);
  }

  std::shared_ptr<ResponseStream> waitStream(std::size_t index) {
    std::unique_lock lock(mu_);
    bool ok = cv_.wait_for(lock, std::chrono::seconds(10), [&] { return streams_.size() > index; });
    return ok ? streams_[index] : nullptr;
  }

  Router router_;
  std::unique_ptr<Server> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<ResponseStream>> streams_;
  bool slow_entered_ = false;
  bool slow_release_ = false;
};

TEST_F(ServerTest, RoutesAndDecodesOneSegment) {
  start();
  TestClient c(server_->port());
  auto r = c.roundTrip(get("/api/snapshots/ubuntu%2Fpython%3A3.12"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(jsonBody(*r)["idOrName"], "ubuntu/python:3.12");
  EXPECT_EQ(jsonBody(*r)["route"], "/api/snapshots/{idOrName}");

  r = c.roundTrip(get("/api/snapshots/abc/build-logs-url"));
  ASSERT_TRUE(r);
  EXPECT_EQ(jsonBody(*r)["id"], "abc");

  r = c.roundTrip(get("/api/files/a/b%20c/d"));
  ASSERT_TRUE(r);
  EXPECT_EQ(jsonBody(*r)["path"], "a/b c/d");
}

TEST_F(ServerTest, QueryParametersAreDecoded) {
  start();
  TestClient c(server_->port());
  auto r = c.roundTrip(get("/api/echo-query?prefix=org%2Fabc%2F&max-keys=1&uploads&plus=a+b"));
  ASSERT_TRUE(r);
  Json j = jsonBody(*r);
  EXPECT_EQ(j["prefix"], "org/abc/");
  EXPECT_EQ(j["max-keys"], "1");
  EXPECT_EQ(j["uploads"], "");
  EXPECT_EQ(j["plus"], "a+b");
}

TEST_F(ServerTest, ErrorsHaveTheDaytonaBody) {
  start();
  TestClient c(server_->port());
  auto r = c.roundTrip(get("/api/nothing?x=1"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 404);
  Json j = jsonBody(*r);
  EXPECT_EQ(j["path"], "/api/nothing?x=1");
  EXPECT_EQ(j["statusCode"], 404);
  EXPECT_EQ(j["error"], "Not Found");
  EXPECT_TRUE(j["message"].is_string());
  ASSERT_TRUE(j["timestamp"].is_string());
  EXPECT_OK(parseRfc3339(j["timestamp"].get<std::string>()));

  r = c.roundTrip("DELETE /api/echo-query HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 405);
  EXPECT_EQ(jsonBody(*r)["error"], "Method Not Allowed");

  r = c.roundTrip(get("/api/notfound"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 404);
  EXPECT_EQ(jsonBody(*r)["message"], "Snapshot foo not found");

  r = c.roundTrip(get("/api/internal"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 500);
  EXPECT_EQ(jsonBody(*r)["message"], "An unexpected error occurred.");

  r = c.roundTrip(get("/api/snapshots/bad%zzescape"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 400);
  EXPECT_THAT(jsonBody(*r)["message"].get<std::string>(), HasSubstr("percent escape"));
}

TEST_F(ServerTest, HandlerExceptionIs500AndServerLives) {
  start();
  TestClient c(server_->port());
  auto r = c.roundTrip(get("/api/throw"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 500);
  EXPECT_EQ(jsonBody(*r)["message"], "An unexpected error occurred.");
  EXPECT_EQ(jsonBody(*r)["error"], "Internal Server Error");
  r = c.roundTrip(get("/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
}

TEST_F(ServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  start();
  TestClient c(server_->port());
  for (int i = 0; i < 20; ++i) {
    auto r = c.roundTrip(get("/api/snapshots/n" + std::to_string(i)));
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(jsonBody(*r)["idOrName"], "n" + std::to_string(i));
    EXPECT_TRUE(r->keep_alive());
  }
  EXPECT_EQ(server_->connectionCount(), 1u);
  // Pipelined: two requests in one write, two responses in order.
  ASSERT_TRUE(c.send(get("/api/snapshots/p1") + get("/api/snapshots/p2")));
  auto r1 = c.readResponse();
  auto r2 = c.readResponse();
  ASSERT_TRUE(r1 && r2);
  EXPECT_EQ(jsonBody(*r1)["idOrName"], "p1");
  EXPECT_EQ(jsonBody(*r2)["idOrName"], "p2");
  // Connection: close is honoured.
  auto r = c.roundTrip(get("/healthz", "Connection: close\r\n"));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->keep_alive());
  EXPECT_TRUE(c.waitClosed());
}

TEST_F(ServerTest, BodyLimits) {
  ServerOptions o;
  o.max_body_bytes = 1024;
  start(o);
  {
    TestClient c(server_->port());
    auto r = c.roundTrip("POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body(), "hello");
  }
  {
    TestClient c(server_->port());
    auto r = c.roundTrip("POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" +
                         std::string(2000, 'x'));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 413);
    EXPECT_EQ(jsonBody(*r)["error"], "Payload Too Large");
    EXPECT_THAT(jsonBody(*r)["message"].get<std::string>(), HasSubstr("1024"));
  }
  {
    // Chunked bodies are limited as they arrive.
    TestClient c(server_->port());
    std::string chunk(800, 'y');
    auto r = c.roundTrip(
        "POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n" + chunk +
        "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 413);
  }
  {
    // A route may allow more.
    TestClient c(server_->port());
    std::string body(3 * 1024 * 1024, 'z');
    auto r = c.roundTrip("POST /api/big HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n" + body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 200);
    EXPECT_EQ(jsonBody(*r)["size"], body.size());
  }
}

TEST_F(ServerTest, HugeHeadersAre431) {
  ServerOptions o;
  o.max_header_bytes = 4096;
  start(o);
  TestClient c(server_->port());
  auto r = c.roundTrip(get("/healthz", "X-Big: " + std::string(8000, 'a') + "\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 431);
  EXPECT_EQ(jsonBody(*r)["statusCode"], 431);
  TestClient c2(server_->port());
  r = c2.roundTrip(get("/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
}

TEST_F(ServerTest, GarbageGets400NotACrash) {
  start();
  const std::vector<std::string> garbage = {
      "HELLO\r\n\r\n",
      "GET\r\n\r\n",
      "GET / HTTP/9.9\r\n\r\n",
      "GET /x HTTP/1.1\r\nNo colon here\r\n\r\n",
      "GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n",
      "GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "POST /api/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      std::string("GET /\0x HTTP/1.1\r\n\r\n", 20),
      "GET http://evil/ HTTP/1.1\r\nHost: a\r\n\r\n",
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  // a TLS ClientHello
  };
  for (const std::string& g : garbage) {
    TestClient c(server_->port());
    ASSERT_TRUE(c.send(g));
    auto r = c.readResponse();
    ASSERT_TRUE(r) << "no response to " << ::testing::PrintToString(g);
    EXPECT_GE(r->result_int(), 400) << ::testing::PrintToString(g);
    EXPECT_LT(r->result_int(), 500) << ::testing::PrintToString(g);
    EXPECT_TRUE(c.waitClosed()) << ::testing::PrintToString(g);
  }
  TestClient c(server_->port());
  auto r = c.roundTrip(get("/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
}

// Valid requests with random bytes flipped, inserted or cut (fixed seed): every answer is a
// response below 500 or a closed connection, and the server keeps serving.
TEST_F(ServerTest, MutatedRequestsNeverCrashOrGet5xx) {
  ServerOptions o;
  o.read_timeout = std::chrono::milliseconds(300);
  o.idle_timeout = std::chrono::milliseconds(300);
  start(o);
  const std::vector<std::string> seeds = {
      get("/api/snapshots/ubuntu%2Fpython%3A3.12?x=1&y=%20"),
      "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
      "POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n",
      "HEAD /api/files/a/b HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
  };
  std::mt19937 rng(20261128);
  for (int i = 0; i < 300; ++i) {
    std::string req = seeds[static_cast<std::size_t>(i) % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !req.empty(); ++e) {
      std::size_t pos = rng() % req.size();
      switch (rng() % 3) {
        case 0:
          req[pos] = static_cast<char>(rng() % 256);
          break;
        case 1:
          req.insert(pos, 1, static_cast<char>(rng() % 256));
          break;
        default:
          req.erase(pos, 1 + rng() % 8);
          break;
      }
    }
    TestClient c(server_->port());
    ASSERT_TRUE(c.send(req));
    auto r = c.readResponse(/*head=*/req.rfind("HEAD", 0) == 0, std::chrono::seconds(5));
    if (r) {
      EXPECT_LT(r->result_int(), 500) << ::testing::PrintToString(req);
    }
  }
  TestClient c(server_->port());
  auto r = c.roundTrip(get("/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
}

TEST_F(ServerTest, IdleAndReadTimeoutsCloseConnections) {
  ServerOptions o;
  o.idle_timeout = std::chrono::milliseconds(200);
  o.read_timeout = std::chrono::milliseconds(200);
  start(o);
  {
    TestClient c(server_->port());
    EXPECT_TRUE(c.waitClosed(std::chrono::seconds(10)));
  }
  {
    // Headers complete, body never finishes.
    TestClient c(server_->port());
    ASSERT_TRUE(c.send("POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab"));
    EXPECT_TRUE(c.waitClosed(std::chrono::seconds(10)));
  }
  {
    // Between keep-alive requests.
    TestClient c(server_->port());
    ASSERT_TRUE(c.roundTrip(get("/healthz")));
    EXPECT_TRUE(c.waitClosed(std::chrono::seconds(10)));
  }
}

TEST_F(ServerTest, HeadHasLengthButNoBody) {
  start();
  TestClient c(server_->port());
  auto full = c.roundTrip(get("/api/snapshots/abc"));
  ASSERT_TRUE(full);
  auto r = c.roundTrip("HEAD /api/snapshots/abc HTTP/1.1\r\nHost: x\r\n\r\n", /*head=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ((*r)[http::field::content_length], std::to_string(full->body().size()));
  EXPECT_EQ(r->body(), "");
  // The connection is still in sync: the next response parses.
  r = c.roundTrip(get("/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
}

TEST_F(ServerTest, ExpectContinue) {
  start();
  TestClient c(server_->port());
  ASSERT_TRUE(c.send(
      "POST /api/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  auto cont = c.readResponse();
  ASSERT_TRUE(cont);
  EXPECT_EQ(cont->result_int(), 100);
  ASSERT_TRUE(c.send("data"));
  auto r = c.readResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(r->body(), "data");
}

TEST_F(ServerTest, StreamDeliversWritesAsTheyHappenAndEndsOnClose) {
  start();
  TestClient c(server_->port());
  ASSERT_TRUE(c.send(get("/api/stream")));
  auto stream = waitStream(0);
  ASSERT_TRUE(stream);
  std::string received;
  for (int i = 0; i < 3; ++i) {
    std::string line = "line " + std::to_string(i) + "\n";
    ASSERT_TRUE(stream->write(line));
    // The follower sees each line before the next one is produced.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (received.find(line) == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      received += c.readSome(std::chrono::milliseconds(100));
    }
    ASSERT_THAT(received, HasSubstr(line));
  }
  EXPECT_THAT(received, HasSubstr("Transfer-Encoding: chunked"));
  std::promise<void> finished;
  stream->onFinished([&] { finished.set_value(); });
  stream->close();
  EXPECT_FALSE(stream->write("after close"));
  EXPECT_TRUE(c.waitClosed());
  EXPECT_EQ(finished.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
}

TEST_F(ServerTest, StreamBodyParsesAsChunkedResponse) {
  start();
  TestClient c(server_->port());
  ASSERT_TRUE(c.send(get("/api/stream")));
  auto stream = waitStream(0);
  ASSERT_TRUE(stream);
  std::thread producer([stream] {
    for (int i = 0; i < 100; ++i)
      stream->write("#" + std::to_string(i) + "\n");
    stream->close();
  });
  auto r = c.readResponse();
  producer.join();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ((*r)[http::field::content_type], "application/octet-stream");
  std::string expected;
  for (int i = 0; i < 100; ++i)
    expected += "#" + std::to_string(i) + "\n";
  EXPECT_EQ(r->body(), expected);
}

TEST_F(ServerTest, ClientLeavingCancelsTheStream) {
  start();
  std::promise<void> finished;
  std::shared_ptr<ResponseStream> stream;
  {
    TestClient c(server_->port());
    ASSERT_TRUE(c.send(get("/api/stream")));
    stream = waitStream(0);
    ASSERT_TRUE(stream);
    stream->onFinished([&] { finished.set_value(); });
    ASSERT_TRUE(stream->write("x\n"));
    ASSERT_FALSE(c.readSome().empty());
  }
  EXPECT_EQ(finished.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(stream->cancelled());
  EXPECT_FALSE(stream->write("nobody listens"));
}

TEST_F(ServerTest, IdleFollowersDoNotHoldThreads) {
  ServerOptions o;
  o.io_threads = 1;
  start(o);
  constexpr int kFollowers = 64;
  std::vector<std::unique_ptr<TestClient>> followers;
  for (int i = 0; i < kFollowers; ++i) {
    followers.push_back(std::make_unique<TestClient>(server_->port()));
    ASSERT_TRUE(followers.back()->send(get("/api/stream")));
    ASSERT_TRUE(waitStream(static_cast<std::size_t>(i)));
  }
  // With one I/O thread and 64 idle streams, ordinary requests are still served.
  TestClient c(server_->port());
  auto r = c.roundTrip(get("/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  for (int i = 0; i < kFollowers; ++i) {
    ASSERT_TRUE(streams_[static_cast<std::size_t>(i)]->write("hello " + std::to_string(i) + "\n"));
  }
  for (int i = 0; i < kFollowers; ++i) {
    std::string got;
    std::string want = "hello " + std::to_string(i) + "\n";
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (got.find(want) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      got += followers[static_cast<std::size_t>(i)]->readSome(std::chrono::milliseconds(100));
    }
    EXPECT_THAT(got, HasSubstr(want));
  }
  for (auto& s : streams_)
    s->close();
  for (auto& f : followers)
    EXPECT_TRUE(f->waitClosed());
}

TEST_F(ServerTest, GracefulShutdownFinishesInFlightAndClosesStreams) {
  start();
  TestClient slow(server_->port());
  ASSERT_TRUE(slow.send(get("/api/slow")));
  TestClient follower(server_->port());
  ASSERT_TRUE(follower.send(get("/api/stream")));
  auto stream = waitStream(0);
  ASSERT_TRUE(stream);
  ASSERT_TRUE(stream->write("before stop\n"));
  TestClient idle(server_->port());
  ASSERT_TRUE(idle.roundTrip(get("/healthz")));
  {
    std::unique_lock lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(10), [this] { return slow_entered_; }));
  }
  std::thread stopper([this] { server_->stop(); });
  // The idle keep-alive connection and the stream end; the slow request is still running.
  EXPECT_TRUE(idle.waitClosed());
  std::string streamed;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string more = follower.readSome(std::chrono::milliseconds(100));
    streamed += more;
    if (streamed.find("0\r\n\r\n") != std::string::npos) break;
  }
  EXPECT_THAT(streamed, HasSubstr("before stop"));
  EXPECT_THAT(streamed, HasSubstr("0\r\n\r\n"));
  {
    std::lock_guard lock(mu_);
    slow_release_ = true;
  }
  cv_.notify_all();
  auto r = slow.readResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body(), "finished");
  EXPECT_FALSE(r->keep_alive());
  stopper.join();
  TestClient late(server_->port());
  EXPECT_FALSE(late.connected() && late.roundTrip(get("/healthz")).has_value());
}

TEST_F(ServerTest, HealthMetricsAndOpenApi) {
  start();
  TestClient c(server_->port());
  auto r = c.roundTrip(get("/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(jsonBody(*r)["status"], "ok");
  ASSERT_TRUE(c.roundTrip(get("/api/snapshots/a")));
  ASSERT_TRUE(c.roundTrip(get("/api/snapshots/b")));
  ASSERT_TRUE(c.roundTrip(get("/nope")));
  server_->metrics().counter("cairn_builds_total", "Builds by outcome").inc({{"outcome", "ok"}});
  r = c.roundTrip(get("/metrics"));
  ASSERT_TRUE(r);
  EXPECT_THAT(std::string((*r)[http::field::content_type]), HasSubstr("text/plain"));
  const std::string& m = r->body();
  EXPECT_THAT(m, HasSubstr("# TYPE cairn_http_requests_total counter"));
  EXPECT_THAT(
      m, HasSubstr("cairn_http_requests_total{method=\"GET\",route=\"/api/snapshots/{idOrName}\","
                   "status=\"200\"} 2\n"));
  EXPECT_THAT(m, HasSubstr("cairn_http_requests_total{method=\"GET\",route=\"unmatched\","
                           "status=\"404\"} 1\n"));
  EXPECT_THAT(m, HasSubstr("cairn_http_request_duration_seconds_bucket{route=\"/healthz\","
                           "le=\"+Inf\"} 1\n"));
  EXPECT_THAT(m, HasSubstr("cairn_http_connections 1\n"));
  EXPECT_THAT(m, HasSubstr("cairn_builds_total{outcome=\"ok\"} 1\n"));
  r = c.roundTrip(get("/api/openapi.json"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body(), R"({"openapi":"3.0.0"})");
}

TEST(RouterTest, BadPatternsAreRejected) {
  Router r;
  auto h = [](Request&) { return Response::empty(200); };
  EXPECT_THAT(r.add("GET", "nope", h), ::cairn::testing::StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(r.add("GET", "/a/{x", h), ::cairn::testing::StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(r.add("GET", "/a/{rest+}/b", h),
              ::cairn::testing::StatusIs(StatusCode::kInvalidArgument));
  EXPECT_OK(r.add("GET", "/a/{rest+}", h));
  std::map<std::string, std::string> params;
  EXPECT_EQ(r.match("GET", "/a", params).status, 404);
  EXPECT_EQ(r.match("GET", "/a/x%2Fy/z", params).status, 0);
  EXPECT_EQ(params["rest"], "x/y/z");
  EXPECT_EQ(r.match("PUT", "/a/x", params).status, 405);
}

TEST(ServerStartTest, SharedMetricsOutliveTheServer) {
  auto metrics = std::make_shared<MetricsRegistry>();
  {
    ASSERT_OK_AND_ASSIGN(auto server, Server::start(ServerOptions{}, Router(), metrics));
    TestClient c(server->port());
    ASSERT_TRUE(c.roundTrip(get("/healthz")));
  }
  std::string text = metrics->render();
  EXPECT_THAT(text, HasSubstr("cairn_http_connections 0\n"));
  EXPECT_THAT(text, HasSubstr("route=\"/healthz\",status=\"200\"} 1\n"));
}

TEST(ServerStartTest, BadHostAndPortInUse) {
  ServerOptions o;
  o.host = "not-an-ip";
  EXPECT_THAT(Server::start(o, Router()), ::cairn::testing::StatusIs(StatusCode::kInvalidArgument));
  ServerOptions a;
  ASSERT_OK_AND_ASSIGN(auto first, Server::start(a, Router()));
  ServerOptions b;
  b.port = first->port();
  EXPECT_THAT(Server::start(b, Router()),
              ::cairn::testing::StatusIs(StatusCode::kUnavailable, HasSubstr("cannot listen")));
}

}  // namespace
}  // namespace cairn::api
