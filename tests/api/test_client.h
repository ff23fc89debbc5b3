// A blocking HTTP/1.1 test client on a plain POSIX socket: every read has a deadline (so a
// broken server fails the test instead of hanging it), and responses are parsed with Beast's
// parser, so tests can send byte-exact garbage and still read what comes back.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace cairn::api::testing {

namespace http = boost::beast::http;
using TestResponse = http::response<http::string_body>;

class TestClient {
 public:
  explicit TestClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~TestClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  bool connected() const { return connected_; }

  bool send(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }

  //! Reads whatever arrives within `timeout` (at least one byte, or "" on timeout/EOF).
  std::string readSome(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    if (!pending_.empty()) return std::exchange(pending_, {});
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      eof_ = true;
      return {};
    }
    return std::string(buf, static_cast<std::size_t>(n));
  }

  //! True when the server closes the connection within `timeout`.
  bool waitClosed(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return true;
    }
    return false;
  }

  //! Reads one full response (nullopt if the connection closed or timed out first).
  std::optional<TestResponse> readResponse(
      bool head = false, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    parser.body_limit(1ull << 32);
    if (head) parser.skip(true);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!parser.is_done()) {
      if (buffer_.empty()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        std::string more = readSome(left);
        if (more.empty()) {
          if (eof_ && parser.got_some()) {
            boost::beast::error_code ec;
            parser.put_eof(ec);
            if (!ec && parser.is_done()) break;
          }
          return std::nullopt;
        }
        buffer_ += more;
      }
      boost::beast::error_code ec;
      std::size_t used = parser.put(boost::asio::buffer(buffer_), ec);
      buffer_.erase(0, used);
      if (ec == http::error::need_more) {
        if (used == 0) {
          std::string more = readSome(std::chrono::duration_cast<std::chrono::milliseconds>(
              deadline - std::chrono::steady_clock::now()));
          if (more.empty()) {
            if (eof_ && parser.got_some()) {
              boost::beast::error_code ec2;
              parser.put_eof(ec2);
              if (!ec2 && parser.is_done()) break;
            }
            return std::nullopt;
          }
          buffer_ += more;
        }
        continue;
      }
      if (ec) return std::nullopt;
    }
    return parser.release();
  }

  //! Sends a request and reads its response.
  std::optional<TestResponse> roundTrip(const std::string& request, bool head = false) {
    if (!send(request)) return std::nullopt;
    return readResponse(head);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string buffer_;
  std::string pending_;
};

inline std::string get(const std::string& target, const std::string& extra_headers = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra_headers + "\r\n";
}

}  // namespace cairn::api::testing
