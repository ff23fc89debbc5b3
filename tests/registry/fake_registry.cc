#include "fake_registry.h"

#include <sys/socket.h>

#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "cairn/common/crypto.h"
#include "cairn/common/encoding.h"
#include "cairn/common/strings.h"

#include <set>

namespace cairn::registry::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct FakeRegistry::Impl {
  FakeRegistry* owner;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::vector<std::thread> connections;
  // Kept open until the registry is destroyed, so that shutting them down wakes the threads
  // blocked reading from idle keep-alive connections (and no fd is reused meanwhile).
  std::vector<std::shared_ptr<tcp::socket>> sockets;
  std::mutex conn_mu;

  mutable std::mutex mu;
  std::map<std::string, std::string> blobs;  // digest → bytes
  // Which repositories a blob is linked into ("" = every repository), as real registries
  // scope blobs per repository (that is what cross-repo mounts are for).
  std::map<std::string, std::set<std::string>> linked;
  bool visible(const std::string& repo, const std::string& d) const {
    auto in = [&](const std::string& r) { return linked.count(r) && linked.at(r).contains(d); };
    return blobs.contains(d) && (in("") || in(repo));
  }
  struct Stored {
    std::string media_type, bytes;
  };
  std::map<std::string, std::map<std::string, Stored>> manifests;  // repo → ref → manifest
  std::map<std::string, std::string> uploads;                      // id → bytes so far
  int next_upload = 0;
  int next_token = 0;
  std::set<std::string> tokens;

  static std::string digestOf(const std::string& bytes) { return "sha256:" + sha256Hex(bytes); }

  void acceptLoop() {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(io);
      boost::system::error_code ec;
      acceptor.accept(*socket, ec);
      if (ec || stopping) return;
      std::lock_guard lock(conn_mu);
      sockets.push_back(socket);
      connections.emplace_back([this, socket] { serve(*socket); });
    }
  }

  void serve(tcp::socket& socket) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(256u << 20);
      boost::system::error_code ec;
      http::read(socket, buffer, parser, ec);
      if (ec) return;
      auto req = parser.release();
      bool keep = handle(socket, req);
      if (!keep || !req.keep_alive()) {
        socket.shutdown(tcp::socket::shutdown_both, ec);
        return;
      }
    }
  }

  using Response = http::response<http::string_body>;

  static Response reply(const http::request<http::string_body>& req, http::status st,
                        std::string body = {}, std::string content_type = "application/json") {
    Response r(st, req.version());
    r.set(http::field::content_type, content_type);
    r.keep_alive(req.keep_alive());
    r.body() = std::move(body);
    r.prepare_payload();
    return r;
  }

  static Response error(const http::request<http::string_body>& req, http::status st,
                        const std::string& code, const std::string& msg) {
    return reply(req, st, R"({"errors":[{"code":")" + code + R"(","message":")" + msg + "\"}]}");
  }

  bool authorized(const http::request<http::string_body>& req) {
    auto auth = std::string(req[http::field::authorization]);
    switch (owner->options_.auth) {
      case Auth::kNone:
        return true;
      case Auth::kBasic:
        return auth ==
               "Basic " + base64Encode(owner->options_.username + ":" + owner->options_.password);
      case Auth::kBearer: {
        if (!auth.starts_with("Bearer ")) return false;
        std::lock_guard lock(mu);
        return tokens.contains(auth.substr(7));
      }
    }
    return false;
  }

  Response challenge(const http::request<http::string_body>& req, const std::string& scope) {
    Response r = error(req, http::status::unauthorized, "UNAUTHORIZED", "authentication required");
    if (owner->options_.auth == Auth::kBasic) {
      r.set(http::field::www_authenticate, "Basic realm=\"fake\"");
    } else {
      r.set(http::field::www_authenticate, "Bearer realm=\"http://" + owner->host() +
                                               "/token\",service=\"fake-registry\",scope=\"" +
                                               scope + "\"");
    }
    return r;
  }

  Response token(const http::request<http::string_body>& req) {
    ++owner->token_requests;
    std::string target(req.target());
    if (target.find("service=fake-registry") == std::string::npos ||
        target.find("scope=repository") == std::string::npos) {
      return error(req, http::status::bad_request, "BAD_TOKEN_REQUEST", "missing service/scope");
    }
    auto auth = std::string(req[http::field::authorization]);
    bool good =
        auth == "Basic " + base64Encode(owner->options_.username + ":" + owner->options_.password);
    if (!good && !(auth.empty() && owner->options_.anonymous_tokens)) {
      return error(req, http::status::unauthorized, "DENIED", "bad credentials");
    }
    std::lock_guard lock(mu);
    std::string t = "tok-" + std::to_string(++next_token);
    tokens.insert(t);
    return reply(req, http::status::ok, R"({"token":")" + t + R"(","expires_in":300})");
  }

  void write(tcp::socket& socket, Response r) {
    boost::system::error_code ec;
    http::write(socket, r, ec);
  }

  // Returns whether to keep the connection open.
  bool handle(tcp::socket& socket, http::request<http::string_body>& req) {
    std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    std::string query =
        target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
    auto param = [&](const std::string& name) -> std::string {
      for (const auto& kv : splitString(query, '&')) {
        if (kv.starts_with(name + "=")) {
          std::string v = kv.substr(name.size() + 1);
          std::string out;
          for (std::size_t i = 0; i < v.size(); ++i) {
            if (v[i] == '%' && i + 2 < v.size()) {
              out.push_back(static_cast<char>(std::stoi(v.substr(i + 1, 2), nullptr, 16)));
              i += 2;
            } else {
              out.push_back(v[i]);
            }
          }
          return out;
        }
      }
      return {};
    };
    if (path == "/token") {
      write(socket, token(req));
      return true;
    }
    if (path == "/v2/" || path == "/v2") {
      if (!authorized(req)) {
        write(socket, challenge(req, "registry:catalog:*"));
        return true;
      }
      write(socket, reply(req, http::status::ok, "{}"));
      return true;
    }
    if (!path.starts_with("/v2/")) {
      write(socket, error(req, http::status::not_found, "NOT_FOUND", "no such endpoint"));
      return true;
    }
    std::string rest = path.substr(4);
    std::string repo, kind, ref;
    for (std::string k : {"/manifests/", "/blobs/uploads/", "/blobs/"}) {
      auto pos = rest.rfind(k);
      if (pos != std::string::npos) {
        repo = rest.substr(0, pos);
        kind = k;
        ref = rest.substr(pos + k.size());
        break;
      }
    }
    if (repo.empty()) {
      write(socket, error(req, http::status::not_found, "NAME_UNKNOWN", "bad path"));
      return true;
    }
    bool write_op = req.method() != http::verb::get && req.method() != http::verb::head;
    if (!authorized(req)) {
      write(socket, challenge(req, "repository:" + repo + (write_op ? ":pull,push" : ":pull")));
      return true;
    }
    bool head = req.method() == http::verb::head;

    if (kind == "/manifests/") {
      if (req.method() == http::verb::put) {
        std::string media = std::string(req[http::field::content_type]);
        std::string d = digestOf(req.body());
        {
          std::lock_guard lock(mu);
          manifests[repo][ref] = {media, req.body()};
          manifests[repo][d] = {media, req.body()};
        }
        Response r = reply(req, http::status::created);
        r.set("Docker-Content-Digest", d);
        r.set(http::field::location, "/v2/" + repo + "/manifests/" + d);
        write(socket, std::move(r));
        return true;
      }
      if (owner->fail_manifest_gets.load() > 0) {
        --owner->fail_manifest_gets;
        write(socket, error(req, http::status::internal_server_error, "UNKNOWN", "injected"));
        return true;
      }
      Stored m;
      {
        std::lock_guard lock(mu);
        auto r = manifests.find(repo);
        if (r == manifests.end() || !r->second.contains(ref)) {
          write(socket,
                error(req, http::status::not_found, "MANIFEST_UNKNOWN", "manifest unknown"));
          return true;
        }
        m = r->second[ref];
      }
      Response r = reply(req, http::status::ok, head ? "" : m.bytes, m.media_type);
      if (head) r.content_length(m.bytes.size());
      r.set("Docker-Content-Digest", digestOf(m.bytes));
      write(socket, std::move(r));
      return true;
    }

    if (kind == "/blobs/") {
      std::string bytes;
      {
        std::lock_guard lock(mu);
        auto it = blobs.find(ref);
        if (it == blobs.end() || !visible(repo, ref)) {
          write(socket, error(req, http::status::not_found, "BLOB_UNKNOWN", "blob unknown"));
          return true;
        }
        bytes = it->second;
      }
      if (head) {
        Response r = reply(req, http::status::ok, "", "application/octet-stream");
        r.content_length(bytes.size());
        write(socket, std::move(r));
        return true;
      }
      ++owner->blob_gets;
      if (owner->fail_blob_gets.load() > 0) {
        --owner->fail_blob_gets;
        write(socket, error(req, http::status::service_unavailable, "UNAVAILABLE", "injected"));
        return true;
      }
      std::size_t start = 0;
      std::string range(req[http::field::range]);
      if (!range.empty()) {
        ++owner->range_requests;
        if (!owner->ignore_range.load() && range.starts_with("bytes=")) {
          start = std::stoull(range.substr(6));
        }
      }
      if (owner->cut_blob_gets.load() > 0) {
        --owner->cut_blob_gets;
        // Promise the whole rest, send half, hang up.
        std::string head_text =
            std::string(start > 0 ? "HTTP/1.1 206 Partial Content\r\n" : "HTTP/1.1 200 OK\r\n") +
            "Content-Type: application/octet-stream\r\nContent-Length: " +
            std::to_string(bytes.size() - start) + "\r\n\r\n";
        std::string half = bytes.substr(start, (bytes.size() - start) / 2);
        boost::system::error_code ec;
        asio::write(socket, asio::buffer(head_text + half), ec);
        socket.shutdown(tcp::socket::shutdown_both, ec);
        return false;
      }
      Response r = reply(req, start > 0 ? http::status::partial_content : http::status::ok,
                         bytes.substr(start), "application/octet-stream");
      if (start > 0) {
        r.set(http::field::content_range, "bytes " + std::to_string(start) + "-" +
                                              std::to_string(bytes.size() - 1) + "/" +
                                              std::to_string(bytes.size()));
      }
      write(socket, std::move(r));
      return true;
    }

    // Uploads.
    if (req.method() == http::verb::post) {
      std::string mount = param("mount");
      if (!mount.empty()) {
        std::lock_guard lock(mu);
        if (visible(param("from"), mount)) {
          ++owner->mounts;
          linked[repo].insert(mount);
          Response r = reply(req, http::status::created);
          r.set(http::field::location, "/v2/" + repo + "/blobs/" + mount);
          write(socket, std::move(r));
          return true;
        }
      }
      std::string id;
      {
        std::lock_guard lock(mu);
        id = "u" + std::to_string(++next_upload);
        uploads[id] = "";
      }
      Response r = reply(req, http::status::accepted);
      r.set(http::field::location, "/v2/" + repo + "/blobs/uploads/" + id + "?_state=x");
      r.set(http::field::range, "0-0");
      write(socket, std::move(r));
      return true;
    }
    std::lock_guard lock(mu);
    auto up = uploads.find(ref);
    if (up == uploads.end()) {
      write(socket, error(req, http::status::not_found, "BLOB_UPLOAD_UNKNOWN", "no upload"));
      return true;
    }
    if (req.method() == http::verb::patch) {
      ++owner->patch_requests;
      std::string cr(req[http::field::content_range]);
      if (!cr.empty() && std::stoull(cr) != up->second.size()) {
        write(socket,
              error(req, http::status::range_not_satisfiable, "BLOB_UPLOAD_INVALID", "bad range"));
        return true;
      }
      up->second += req.body();
      Response r = reply(req, http::status::accepted);
      r.set(http::field::location, "/v2/" + repo + "/blobs/uploads/" + ref + "?_state=y");
      r.set(http::field::range, "0-" + std::to_string(up->second.size() - 1));
      write(socket, std::move(r));
      return true;
    }
    if (req.method() == http::verb::put) {
      up->second += req.body();
      std::string want = param("digest");
      std::string got = digestOf(up->second);
      if (want != got) {
        write(socket, error(req, http::status::bad_request, "DIGEST_INVALID",
                            "got " + got + " want " + want));
        return true;
      }
      blobs[got] = up->second;
      linked[repo].insert(got);
      uploads.erase(up);
      Response r = reply(req, http::status::created);
      r.set(http::field::location, "/v2/" + repo + "/blobs/" + got);
      r.set("Docker-Content-Digest", got);
      write(socket, std::move(r));
      return true;
    }
    write(socket, error(req, http::status::method_not_allowed, "UNSUPPORTED", "method"));
    return true;
  }
};

FakeRegistry::FakeRegistry(Options options) : options_(std::move(options)), impl_(new Impl) {
  impl_->owner = this;
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  port_ = impl_->acceptor.local_endpoint().port();
  impl_->thread = std::thread([this] { impl_->acceptLoop(); });
}

FakeRegistry::~FakeRegistry() {
  impl_->stopping = true;
  boost::system::error_code ec;
  // Wake the blocking accept() with a connection of our own, then close.
  {
    tcp::socket s(impl_->io);
    s.connect(impl_->acceptor.local_endpoint(), ec);
  }
  impl_->thread.join();
  impl_->acceptor.close(ec);
  std::lock_guard lock(impl_->conn_mu);
  for (auto& s : impl_->sockets)
    ::shutdown(s->native_handle(), SHUT_RDWR);
  for (auto& t : impl_->connections)
    t.join();
}

void FakeRegistry::putBlob(const std::string& bytes) {
  putBlobAs(Impl::digestOf(bytes), bytes);
}

void FakeRegistry::putBlobAs(const std::string& digest, const std::string& bytes) {
  std::lock_guard lock(impl_->mu);
  impl_->blobs[digest] = bytes;
  impl_->linked[""].insert(digest);
}

void FakeRegistry::putManifest(const std::string& repo, const std::string& ref,
                               const std::string& media_type, const std::string& bytes) {
  std::lock_guard lock(impl_->mu);
  impl_->manifests[repo][ref] = {media_type, bytes};
  impl_->manifests[repo][Impl::digestOf(bytes)] = {media_type, bytes};
}

bool FakeRegistry::hasBlob(const std::string& digest) const {
  std::lock_guard lock(impl_->mu);
  return impl_->blobs.contains(digest);
}

bool FakeRegistry::hasBlobIn(const std::string& repo, const std::string& digest) const {
  std::lock_guard lock(impl_->mu);
  return impl_->visible(repo, digest);
}

std::string FakeRegistry::manifest(const std::string& repo, const std::string& ref) const {
  std::lock_guard lock(impl_->mu);
  auto r = impl_->manifests.find(repo);
  if (r == impl_->manifests.end()) return {};
  auto m = r->second.find(ref);
  return m == r->second.end() ? std::string() : m->second.bytes;
}

}  // namespace cairn::registry::testing
