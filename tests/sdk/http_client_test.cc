#include "cairn/sdk/http_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <thread>

#include "cairn/testing/status_matchers.h"
#include "fake_daytona.h"

namespace cairn::sdk {
namespace {

using ::cairn::testing::FakeDaytona;
using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;

HttpRequest apiGet(const FakeDaytona& fake, const std::string& path) {
  HttpRequest r;
  r.url = fake.apiUrl() + path;
  r.headers = {{"Authorization", std::string("Bearer ") + FakeDaytona::kApiKey}};
  r.timeout = std::chrono::seconds(30);
  return r;
}

TEST(HttpClientTest, SendsRequestsAndReadsResponses) {
  FakeDaytona fake;
  fake.addSnapshot("alpha");
  HttpClient http;
  for (int i = 0; i < 5; ++i) {  // several requests over the pooled handle
    ASSERT_OK_AND_ASSIGN(HttpResponse r, http.send(apiGet(fake, "/snapshots/alpha")));
    EXPECT_EQ(r.status, 200);
    EXPECT_THAT(r.body, HasSubstr("\"name\":\"alpha\""));
    EXPECT_EQ(r.header("Content-Type").value_or(""), "application/json");
  }
  EXPECT_EQ(fake.requests("GET", "/api/snapshots/alpha").size(), 5u);
}

TEST(HttpClientTest, SendsBodyAndMethodAndNoUnaskedHeaders) {
  FakeDaytona fake;
  HttpClient http;
  HttpRequest r = apiGet(fake, "/snapshots");
  r.method = "POST";
  r.body = R"({"name":"x","imageName":"alpine:3.19"})";
  ASSERT_OK_AND_ASSIGN(HttpResponse resp, http.send(r));
  EXPECT_EQ(resp.status, 200);
  auto recorded = fake.requests("POST", "/api/snapshots");
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].body, r.body);
  EXPECT_EQ(recorded[0].headers.count("content-type"), 0u);  // no form Content-Type added
  EXPECT_EQ(recorded[0].headers.count("expect"), 0u);
}

TEST(HttpClientTest, ErrorStatusIsAResponseAndIsNotRetried) {
  FakeDaytona fake;
  fake.failNext("GET", "/api/snapshots/x", 503, R"({"message":"down"})");
  HttpClient http;
  ASSERT_OK_AND_ASSIGN(HttpResponse r, http.send(apiGet(fake, "/snapshots/x")));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"message":"down"})");
  EXPECT_EQ(fake.requests("GET", "/api/snapshots/x").size(), 1u);
}

TEST(HttpClientTest, RefusedConnectionIsUnavailableAfterRetries) {
  int port;
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }  // closed: connecting is refused
  HttpClient http(RetryPolicy{3, std::chrono::milliseconds(10), std::chrono::milliseconds(20)});
  HttpRequest r;
  r.url = "http://127.0.0.1:" + std::to_string(port) + "/api/snapshots";
  EXPECT_THAT(http.send(r), StatusIs(StatusCode::kUnavailable, HasSubstr("after 3 attempts")));
}

// Closes the first `drop` connections right after reading the request, without replying, and
// answers "ok" on the others. Counts connections.
class FlakyServer {
 public:
  explicit FlakyServer(int drop)
      : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}), drop_(drop) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] {
      for (;;) {
        boost::asio::ip::tcp::socket s(ioc_);
        boost::system::error_code ec;
        acceptor_.accept(s, ec);
        if (ec || stopping_) return;
        int n = ++connections_;
        boost::asio::streambuf buf;
        boost::asio::read_until(s, buf, "\r\n\r\n", ec);
        if (n > drop_) {
          std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
          boost::asio::write(s, boost::asio::buffer(reply), ec);
        }
        s.close();
      }
    });
  }
  ~FlakyServer() {
    stopping_ = true;
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket wake(ioc);
    boost::system::error_code ec;
    wake.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port_)},
                 ec);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/x"; }
  int connections() const { return connections_; }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  int drop_;
  int port_;
  std::atomic<int> connections_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

TEST(HttpClientTest, RetriesWhenTheConnectionIsResetBeforeAReply) {
  FlakyServer server(1);
  HttpClient http(RetryPolicy{3, std::chrono::milliseconds(10), std::chrono::milliseconds(20)});
  HttpRequest r;
  r.url = server.url();
  Result<HttpResponse> resp = http.send(r);
  ASSERT_OK(resp);
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "ok");
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpClientTest, PostIsNotRepeatedOnceTheServerMayHaveSeenIt) {
  FlakyServer server(1);
  HttpClient http(RetryPolicy{3, std::chrono::milliseconds(10), std::chrono::milliseconds(20)});
  HttpRequest r;
  r.method = "POST";
  r.url = server.url();
  r.body = "{}";
  EXPECT_THAT(http.send(r), StatusIs(StatusCode::kUnavailable, HasSubstr("POST " + r.url)));
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpClientTest, StreamsChunksAndCanStopEarly) {
  FakeDaytona fake;
  Json snap = fake.addSnapshot("s", "active");
  fake.setLogChunks({"one\n", "two\n", "three\n"});
  HttpClient http;
  HttpRequest r;
  r.url = "http://127.0.0.1:" + std::to_string(fake.port()) + "/logs/" +
          snap["id"].get<std::string>() + "?follow=true";
  r.headers = {{"Authorization", std::string("Bearer ") + FakeDaytona::kApiKey}};
  std::string all;
  ASSERT_OK_AND_ASSIGN(HttpResponse resp, http.stream(r, [&](std::string_view c) {
    all += c;
    return true;
  }));
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(all, "one\ntwo\nthree\n");
  EXPECT_TRUE(resp.body.empty());

  std::string first;
  ASSERT_OK(http.stream(r, [&](std::string_view c) {
    first += c;
    return false;  // stop after the first chunk
  }));
  EXPECT_EQ(first, "one\n");
}

TEST(HttpClientTest, AbortCheckCancelsAndTimeoutExpires) {
  FakeDaytona fake;
  fake.setStateScript({"building"});
  Json snap = fake.addSnapshot("s", "building");  // never terminal: the follow stream stays open
  HttpClient http;
  HttpRequest r;
  r.url = "http://127.0.0.1:" + std::to_string(fake.port()) + "/logs/" +
          snap["id"].get<std::string>() + "?follow=true";
  int chunks = 0;
  EXPECT_THAT(http.stream(
                  r,
                  [&](std::string_view) {
                    ++chunks;
                    return true;
                  },
                  [&] { return chunks >= 3; }),
              StatusIs(StatusCode::kCancelled));
  r.timeout = std::chrono::milliseconds(300);
  EXPECT_THAT(http.stream(r, [](std::string_view) { return true; }),
              StatusIs(StatusCode::kDeadlineExceeded, HasSubstr("GET http://127.0.0.1")));
}

TEST(HttpClientTest, BadUrlIsAnError) {
  HttpClient http;
  HttpRequest r;
  r.url = "nonsense://x";
  Result<HttpResponse> resp = http.send(r);
  EXPECT_FALSE(resp.ok());
  EXPECT_THAT(resp.status().message(), HasSubstr("nonsense://x"));
}

}  // namespace
}  // namespace cairn::sdk
