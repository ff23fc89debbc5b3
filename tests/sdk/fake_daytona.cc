#include "fake_daytona.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>

#include "cairn/common/checksum.h"
#include "cairn/common/crypto.h"
#include "cairn/common/encoding.h"
#include "cairn/common/sigv4.h"
#include "cairn/common/strings.h"
#include "cairn/common/time.h"
#include "cairn/common/uuid.h"
#include "cairn/common/xml.h"

namespace cairn::testing {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr std::size_t kPartSize = 5242880;

std::string percentDecode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      Result<std::string> b = hexDecode(s.substr(i + 1, 2));
      if (b.ok()) {
        out += *b;
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::map<std::string, std::string> parseQuery(std::string_view q) {
  std::map<std::string, std::string> out;
  for (const std::string& part : splitString(q, '&')) {
    if (part.empty()) continue;
    auto eq = part.find('=');
    if (eq == std::string::npos) {
      out[percentDecode(part)] = "";
    } else {
      out[percentDecode(part.substr(0, eq))] = percentDecode(part.substr(eq + 1));
    }
  }
  return out;
}

bool isTerminal(const std::string& state) {
  return state == "active" || state == "error" || state == "build_failed";
}

struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

Reply jsonReply(int status, const Json& j) {
  return Reply{status, j.dump(), "application/json", {}};
}

Reply errorReply(int status, const std::string& path, const std::string& message) {
  static const std::map<int, std::string> kReasons = {
      {400, "Bad Request"}, {401, "Unauthorized"}, {403, "Forbidden"},
      {404, "Not Found"},   {409, "Conflict"},     {500, "Internal Server Error"}};
  auto it = kReasons.find(status);
  Json j = {{"path", path},
            {"timestamp", formatRfc3339(std::chrono::system_clock::now())},
            {"statusCode", status},
            {"error", it == kReasons.end() ? "Error" : it->second},
            {"message", message}};
  return jsonReply(status, j);
}

Reply s3ErrorReply(int status, const std::string& code, const std::string& message) {
  return Reply{status,
               "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code +
                   "</Code><Message>" + message + "</Message></Error>",
               "application/xml",
               {}};
}

struct FakeSnapshot {
  Json dto;
  std::vector<std::string> script;
  std::size_t next = 1;
};

struct Upload {
  std::string key;
  std::map<int, std::pair<std::string, std::string>> parts;  // number → (etag, body)
};

}  // namespace

struct FakeDaytona::Impl {
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::thread accept_thread;
  std::atomic<bool> stopping{false};
  int port = 0;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<std::thread> conn_threads;
  std::vector<std::shared_ptr<tcp::socket>> sockets;

  std::vector<FakeSnapshot> snapshots;
  std::vector<std::string> script = {"pending", "building", "active"};
  std::string error_reason = "step 2/3 RUN false: exit code 1";
  std::vector<std::string> log_chunks = {"#1 [1/2] FROM alpine:3.19\n", "#2 [2/2] RUN echo hi\n",
                                         "#2 DONE 0.1s\n"};
  bool close_logs_when_terminal = true;
  bool push_access_minimal = false;
  bool empty_create_body = false;
  std::string logs_url;
  struct Failure {
    std::string method, prefix;
    int status;
    std::string body;
  };
  std::vector<Failure> failures;
  std::vector<RecordedRequest> recorded;
  std::map<std::string, std::string> objects;
  std::map<std::string, Upload> uploads;
  std::vector<std::string> s3_failures;
  int multipart_completed = 0;

  std::string base() const { return "http://127.0.0.1:" + std::to_string(port); }

  FakeSnapshot* findLocked(const std::string& seg, bool by_name, bool by_id) {
    for (auto& s : snapshots) {
      if (by_name && s.dto["name"] == seg) return &s;
    }
    for (auto& s : snapshots) {
      if (by_id && s.dto["id"] == seg) return &s;
    }
    return nullptr;
  }

  void advanceLocked(FakeSnapshot& s) {
    if (s.next < s.script.size()) {
      std::string state = s.script[s.next++];
      s.dto["state"] = state;
      s.dto["updatedAt"] = formatRfc3339(std::chrono::system_clock::now());
      if (state == "error" || state == "build_failed") {
        s.dto["errorReason"] = error_reason.empty() ? Json(nullptr) : Json(error_reason);
      }
      if (state == "active") s.dto["size"] = 0.25;
    }
  }

  Json newDto(const std::string& name, const std::string& state) {
    std::string now = formatRfc3339(std::chrono::system_clock::now());
    return Json{{"id", uuidV4()},
                {"organizationId", kOrgId},
                {"general", false},
                {"name", name},
                {"imageName", ""},
                {"state", state},
                {"size", nullptr},
                {"entrypoint", nullptr},
                {"cpu", 1},
                {"gpu", 0},
                {"mem", 1},
                {"disk", 3},
                {"errorReason", nullptr},
                {"createdAt", now},
                {"updatedAt", now},
                {"lastUsedAt", nullptr},
                {"regionIds", Json::array({"default"})},
                {"sandboxClass", "container"},
                {"sourceSandboxId", nullptr},
                {"someFutureField", {{"nested", true}}}};
  }

  // --- the API -----------------------------------------------------------------------------

  Reply handleApi(const RecordedRequest& req) {
    const std::string url = req.path + (req.query.empty() ? "" : "?" + req.query);
    auto auth = req.headers.find("authorization");
    if (auth == req.headers.end() || auth->second != std::string("Bearer ") + kApiKey) {
      return errorReply(401, url, "Invalid credentials");
    }
    std::lock_guard lock(mu);
    std::string rest = req.path.substr(4);  // after "/api"
    if (rest == "/object-storage/push-access" && req.method == "GET") {
      Json j = {{"accessKey", kAccessKey},
                {"secret", kSecret},
                {"sessionToken", kSessionToken},
                {"storageUrl", base() + "/s3"},
                {"organizationId", kOrgId}};
      if (!push_access_minimal) {
        j["bucket"] = kBucket;
        j["region"] = "us-east-1";
      }
      return jsonReply(200, j);
    }
    if (rest == "/snapshots" && req.method == "POST") return createLocked(req, url);
    if (rest == "/snapshots" && req.method == "GET") return listLocked(req, url);
    if (!rest.starts_with("/snapshots/")) return errorReply(404, url, "Cannot " + req.method);
    std::vector<std::string> parts = splitString(rest.substr(11), '/');
    std::string seg = percentDecode(parts[0]);
    std::string action = parts.size() > 1 ? parts[1] : "";
    if (req.method == "GET" && action.empty()) {
      FakeSnapshot* s = findLocked(seg, true, isUuid(seg));
      if (s == nullptr) return errorReply(404, url, "Snapshot " + seg + " not found");
      advanceLocked(*s);
      return jsonReply(200, s->dto);
    }
    if (!isUuid(seg)) return errorReply(400, url, "Validation failed (uuid is expected)");
    FakeSnapshot* s = findLocked(seg, false, true);
    if (s == nullptr) return errorReply(404, url, "Snapshot " + seg + " not found");
    if (req.method == "DELETE" && action.empty()) {
      snapshots.erase(snapshots.begin() + (s - snapshots.data()));
      return Reply{200, "", "text/plain", {}};
    }
    if (req.method == "POST" && action == "activate") {
      if (s->dto["state"] == "active") {
        return errorReply(400, url, "Snapshot " + seg + " is already active");
      }
      s->dto["state"] = "active";
      s->dto["lastUsedAt"] = formatRfc3339(std::chrono::system_clock::now());
      return jsonReply(200, s->dto);
    }
    if (req.method == "POST" && action == "deactivate") {
      s->dto["state"] = "inactive";
      return Reply{204, "", "text/plain", {}};
    }
    if (req.method == "GET" && action == "build-logs-url") {
      return jsonReply(200, Json{{"url", logs_url.empty() ? base() + "/logs/" + seg : logs_url}});
    }
    return errorReply(404, url, "Cannot " + req.method + " " + req.path);
  }

  Reply createLocked(const RecordedRequest& req, const std::string& url) {
    Result<Json> body = parseJson(req.body);
    if (!body.ok() || !body->is_object()) return errorReply(400, url, "body must be an object");
    const Json& b = *body;
    if (!b.contains("name") || !b["name"].is_string()) {
      return errorReply(400, url, "name must be a string");
    }
    std::string name = b["name"];
    bool build = b.contains("buildInfo");
    if (build && b.contains("imageName")) {
      return errorReply(400, url, "Cannot specify an image name when using a build info entry");
    }
    if (build && b.contains("entrypoint")) {
      return errorReply(400, url, "Cannot specify an entrypoint when using a build info entry");
    }
    if (!build && !b.contains("imageName")) {
      return errorReply(400, url, "Must specify an image name when not using a build info entry");
    }
    if (findLocked(name, true, false) != nullptr) {
      return errorReply(409, url,
                        "Snapshot with name \"" + name + "\" already exists for this organization");
    }
    FakeSnapshot s;
    s.script = script;
    s.dto = newDto(name, script.empty() ? "pending" : script[0]);
    if (!script.empty() && (script[0] == "error" || script[0] == "build_failed")) {
      s.dto["errorReason"] = error_reason.empty() ? Json(nullptr) : Json(error_reason);
    }
    if (b.contains("imageName")) s.dto["imageName"] = b["imageName"];
    if (b.contains("entrypoint")) s.dto["entrypoint"] = b["entrypoint"];
    for (const char* k : {"cpu", "gpu", "disk"}) {
      if (b.contains(k)) s.dto[k] = b[k];
    }
    if (b.contains("memory")) s.dto["mem"] = b["memory"];
    if (build) {
      Json info = b["buildInfo"];
      info["snapshotRef"] =
          "daytona-" + sha256Hex(info.value("dockerfileContent", "")) + ":daytona";
      info["createdAt"] = s.dto["createdAt"];
      info["updatedAt"] = s.dto["createdAt"];
      s.dto["buildInfo"] = info;
      s.dto["entrypoint"] = Json::array({"sleep", "infinity"});
    }
    if (b.contains("regionId")) s.dto["regionIds"] = Json::array({b["regionId"]});
    snapshots.push_back(s);
    if (empty_create_body) return Reply{200, "", "application/json", {}};
    return jsonReply(200, s.dto);
  }

  Reply listLocked(const RecordedRequest& req, const std::string& url) {
    auto q = parseQuery(req.query);
    long page = 1;
    long limit = 100;
    if (q.count("page")) page = std::stol(q["page"]);
    if (q.count("limit")) {
      limit = std::stol(q["limit"]);
      if (limit > 200) return errorReply(400, url, "limit must not be greater than 200");
      if (limit < 1) return errorReply(400, url, "limit must not be less than 1");
    }
    std::vector<Json> all;
    for (const auto& s : snapshots)
      all.push_back(s.dto);
    std::sort(all.begin(), all.end(), [](const Json& a, const Json& b) {
      return a["name"].get<std::string>() < b["name"].get<std::string>();
    });
    Json items = Json::array();
    for (std::size_t i = (page - 1) * limit; i < all.size() && i < std::size_t(page * limit); ++i) {
      items.push_back(all[i]);
    }
    long total = static_cast<long>(all.size());
    return jsonReply(200, Json{{"items", items},
                               {"total", total},
                               {"page", page},
                               {"totalPages", (total + limit - 1) / limit}});
  }

  // --- S3 ------------------------------------------------------------------------------------

  Reply s3Fail(const std::string& what, const std::string& code) {
    s3_failures.push_back(what);
    return s3ErrorReply(code == "NoSuchKey" ? 404 : (code == "BadDigest" ? 400 : 403), code, what);
  }

  Reply handleS3(const RecordedRequest& req) {
    sigv4::RequestView view;
    view.method = req.method;
    view.path = req.path;
    view.query = req.query;
    for (const auto& [k, v] : req.headers)
      view.headers.emplace_back(k, v);
    auto lookup = [](std::string_view key) -> Result<std::string> {
      if (key == kAccessKey) return std::string(kSecret);
      return notFound("unknown access key");
    };
    sigv4::VerifyOptions options;
    options.region = "us-east-1";
    std::lock_guard lock(mu);
    Result<sigv4::Verified> v =
        sigv4::verifyRequest(view, lookup, options, std::chrono::system_clock::now());
    std::string what = req.method + " " + req.path + "?" + req.query;
    if (!v.ok()) return s3Fail(what + ": " + v.status().message(), "SignatureDoesNotMatch");
    auto token = req.headers.find("x-amz-security-token");
    if (token == req.headers.end() || token->second != kSessionToken) {
      return s3Fail(what + ": missing or wrong x-amz-security-token", "InvalidToken");
    }
    if (v->payload_hash != sha256Hex(req.body)) {
      return s3Fail(what + ": x-amz-content-sha256 does not match the body", "BadDigest");
    }
    std::string prefix = std::string("/s3/") + kBucket;
    if (!req.path.starts_with(prefix)) return s3Fail(what + ": unknown bucket", "NoSuchBucket");
    std::string key = percentDecode(req.path.substr(std::min(req.path.size(), prefix.size() + 1)));
    auto q = parseQuery(req.query);

    auto checkCrc = [&](const char* op) -> std::optional<Reply> {
      auto alg = req.headers.find("x-amz-sdk-checksum-algorithm");
      auto crc = req.headers.find("x-amz-checksum-crc32");
      if (alg == req.headers.end() || alg->second != "CRC32" || crc == req.headers.end()) {
        return s3Fail(what + ": " + op + " without CRC32 checksum headers", "InvalidRequest");
      }
      if (crc->second != crc32Base64(req.body)) {
        return s3Fail(what + ": " + op + " CRC32 mismatch", "BadDigest");
      }
      return std::nullopt;
    };

    if (req.method == "GET" && key.empty() && q["list-type"] == "2") {
      std::string pfx = q["prefix"];
      long max_keys = q.count("max-keys") ? std::stol(q["max-keys"]) : 1000;
      std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>" +
                        std::string(kBucket) + "</Name><Prefix>" + pfx + "</Prefix>";
      long n = 0;
      for (const auto& [k, bytes] : objects) {
        if (!k.starts_with(pfx) || n >= max_keys) continue;
        xml += "<Contents><Key>" + k + "</Key><Size>" + std::to_string(bytes.size()) +
               "</Size></Contents>";
        ++n;
      }
      xml += "<KeyCount>" + std::to_string(n) + "</KeyCount></ListBucketResult>";
      return Reply{200, xml, "application/xml", {}};
    }
    if (key.empty()) return s3Fail(what + ": no key", "InvalidRequest");
    if (req.method == "HEAD") {
      return objects.count(key) ? Reply{200, "", "application/octet-stream", {}}
                                : Reply{404, "", "application/xml", {}};
    }
    if (req.method == "PUT" && q.count("partNumber")) {
      if (auto bad = checkCrc("UploadPart")) return *bad;
      auto up = uploads.find(q["uploadId"]);
      if (up == uploads.end() || up->second.key != key) {
        return s3Fail(what + ": no such upload", "NoSuchUpload");
      }
      std::string etag = "\"" + md5Hex(req.body) + "\"";
      up->second.parts[std::stoi(q["partNumber"])] = {etag, req.body};
      return Reply{200,
                   "",
                   "application/xml",
                   {{"ETag", etag}, {"x-amz-checksum-crc32", crc32Base64(req.body)}}};
    }
    if (req.method == "PUT") {
      if (q["x-id"] != "PutObject") return s3Fail(what + ": expected x-id=PutObject", "Invalid");
      if (auto bad = checkCrc("PutObject")) return *bad;
      auto ct = req.headers.find("content-type");
      if (ct == req.headers.end() || ct->second != "application/octet-stream") {
        return s3Fail(what + ": Content-Type must be application/octet-stream", "Invalid");
      }
      objects[key] = req.body;
      return Reply{200,
                   "",
                   "application/xml",
                   {{"ETag", "\"" + md5Hex(req.body) + "\""},
                    {"x-amz-checksum-crc32", crc32Base64(req.body)}}};
    }
    if (req.method == "POST" && q.count("uploads")) {
      auto alg = req.headers.find("x-amz-checksum-algorithm");
      if (alg == req.headers.end() || alg->second != "CRC32") {
        return s3Fail(what + ": CreateMultipartUpload without x-amz-checksum-algorithm", "Invalid");
      }
      std::string id = "upload-" + uuidV4();
      uploads[id] = Upload{key, {}};
      return Reply{200,
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?><InitiateMultipartUploadResult>"
                   "<Bucket>" +
                       std::string(kBucket) + "</Bucket><Key>" + key + "</Key><UploadId>" + id +
                       "</UploadId></InitiateMultipartUploadResult>",
                   "application/xml",
                   {}};
    }
    if (req.method == "POST" && q.count("uploadId")) {
      auto up = uploads.find(q["uploadId"]);
      if (up == uploads.end()) return s3Fail(what + ": no such upload", "NoSuchUpload");
      if (req.body.find(
              "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">") ==
          std::string::npos) {
        return s3Fail(what + ": malformed CompleteMultipartUpload", "MalformedXML");
      }
      std::string assembled;
      int expected = 1;
      std::size_t count = 0;
      // Element text is unescaped, as S3 does: the AWS SDK writes an ETag's quotes as &quot;.
      for (std::string_view part : xmlElements(req.body, "Part")) {
        auto etag = xmlElementText(part, "ETag");
        auto crc = xmlElementText(part, "ChecksumCRC32");
        auto number = xmlElementText(part, "PartNumber");
        if (!etag || !number || std::stoi(*number) != expected) {
          return s3Fail(what + ": part list out of order or incomplete", "InvalidPartOrder");
        }
        auto stored = up->second.parts.find(expected);
        if (stored == up->second.parts.end() || stored->second.first != *etag) {
          return s3Fail(what + ": part " + *number + " ETag mismatch", "InvalidPart");
        }
        if (!crc || *crc != crc32Base64(stored->second.second)) {
          return s3Fail(what + ": part " + *number + " ChecksumCRC32 missing or wrong",
                        "InvalidPart");
        }
        ++count;
        ++expected;
        assembled += stored->second.second;
      }
      if (count == 0 || count != up->second.parts.size()) {
        return s3Fail(what + ": completion lists " + std::to_string(count) + " of " +
                          std::to_string(up->second.parts.size()) + " parts",
                      "InvalidPart");
      }
      for (const auto& [n, p] : up->second.parts) {
        if (n < static_cast<int>(count) && p.second.size() != kPartSize) {
          return s3Fail(what + ": part " + std::to_string(n) + " has " +
                            std::to_string(p.second.size()) + " bytes, expected 5242880",
                        "EntityTooSmall");
        }
      }
      objects[key] = std::move(assembled);
      uploads.erase(up);
      ++multipart_completed;
      return Reply{
          200,
          "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CompleteMultipartUploadResult><Key>" + key +
              "</Key></CompleteMultipartUploadResult>",
          "application/xml",
          {}};
    }
    if (req.method == "DELETE" && q.count("uploadId")) {
      uploads.erase(q["uploadId"]);
      return Reply{204, "", "application/xml", {}};
    }
    return s3Fail(what + ": unsupported S3 operation", "NotImplemented");
  }

  // --- transport -----------------------------------------------------------------------------

  void writeReply(tcp::socket& sock, const Reply& r, bool keep_alive, beast::error_code& ec) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
    res.set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers)
      res.set(k, v);
    res.keep_alive(keep_alive);
    res.body() = r.body;
    res.prepare_payload();
    http::write(sock, res, ec);
  }

  // GET /logs/<id>?follow=…: the chunks, then (following) wait for a terminal state.
  void streamLogs(tcp::socket& sock, const RecordedRequest& req, beast::error_code& ec) {
    std::string id = req.path.substr(6);
    auto query = parseQuery(req.query);
    bool follow = query["follow"] == "true";
    std::size_t offset = query.count("offset") ? std::stoul(query["offset"]) : 0;
    std::vector<std::string> chunks;
    bool close_when_terminal;
    {
      std::lock_guard lock(mu);
      chunks = log_chunks;
      close_when_terminal = close_logs_when_terminal;
    }
    http::response<http::empty_body> res{http::status::ok, 11};
    res.set(http::field::content_type, "application/octet-stream");
    res.chunked(true);
    res.keep_alive(false);
    http::response_serializer<http::empty_body> sr{res};
    http::write_header(sock, sr, ec);
    for (const auto& c : chunks) {  // the extension `offset` skips that many bytes (§0.3)
      if (ec) return;
      if (offset >= c.size()) {
        offset -= c.size();
        continue;
      }
      std::string part = c.substr(offset);
      offset = 0;
      net::write(sock, http::make_chunk(net::buffer(part)), ec);
    }
    if (follow) {
      // Bounded: 30 s at most, or until the server stops.
      for (int i = 0; i < 1500 && !stopping; ++i) {
        {
          std::lock_guard lock(mu);
          FakeSnapshot* s = findLocked(id, false, true);
          if (close_when_terminal && (s == nullptr || isTerminal(s->dto["state"]))) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    if (!ec) net::write(sock, http::make_chunk_last(), ec);
  }

  void serve(std::shared_ptr<tcp::socket> sock) {
    beast::flat_buffer buf;
    beast::error_code ec;
    while (!stopping) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      http::read(*sock, buf, parser, ec);
      if (ec) break;
      auto msg = parser.release();
      RecordedRequest req;
      req.method = std::string(msg.method_string());
      std::string target(msg.target());
      auto qpos = target.find('?');
      req.path = target.substr(0, qpos);
      req.query = qpos == std::string::npos ? "" : target.substr(qpos + 1);
      for (const auto& f : msg) {
        req.headers[toLowerAscii(std::string(f.name_string()))] = std::string(f.value());
      }
      req.body = msg.body();
      bool keep = msg.keep_alive();
      std::optional<Reply> injected;
      {
        std::lock_guard lock(mu);
        recorded.push_back(req);
        for (auto it = failures.begin(); it != failures.end(); ++it) {
          if (it->method == req.method && req.path.starts_with(it->prefix)) {
            injected = Reply{it->status, it->body, "application/json", {}};
            failures.erase(it);
            break;
          }
        }
      }
      if (injected) {
        writeReply(*sock, *injected, keep, ec);
      } else if (req.path.starts_with("/logs/") && req.method == "GET") {
        streamLogs(*sock, req, ec);
        break;
      } else if (req.path.starts_with("/api/")) {
        writeReply(*sock, handleApi(req), keep, ec);
      } else if (req.path.starts_with("/s3/")) {
        writeReply(*sock, handleS3(req), keep, ec);
      } else {
        writeReply(*sock, errorReply(404, req.path, "Cannot " + req.method + " " + req.path), keep,
                   ec);
      }
      if (ec || !keep) break;
    }
    sock->shutdown(tcp::socket::shutdown_both, ec);
  }

  void acceptLoop() {
    while (!stopping) {
      auto sock = std::make_shared<tcp::socket>(ioc);
      beast::error_code ec;
      acceptor.accept(*sock, ec);
      if (ec || stopping) break;
      std::lock_guard lock(mu);
      sockets.push_back(sock);
      conn_threads.emplace_back([this, sock] { serve(sock); });
    }
  }
};

FakeDaytona::FakeDaytona() : impl_(std::make_unique<Impl>()) {
  tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(net::socket_base::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  port_ = impl_->acceptor.local_endpoint().port();
  impl_->port = port_;
  impl_->accept_thread = std::thread([this] { impl_->acceptLoop(); });
}

FakeDaytona::~FakeDaytona() {
  impl_->stopping = true;
  // Wake the blocking accept() with a connection of our own.
  {
    net::io_context ioc;
    tcp::socket s(ioc);
    beast::error_code ec;
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port_)),
              ec);
  }
  impl_->accept_thread.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& s : impl_->sockets)
      ::shutdown(s->native_handle(), SHUT_RDWR);
    threads.swap(impl_->conn_threads);
  }
  for (auto& t : threads)
    t.join();
}

std::string FakeDaytona::apiUrl() const {
  return impl_->base() + "/api";
}
std::string FakeDaytona::storageUrl() const {
  return impl_->base() + "/s3";
}

Json FakeDaytona::addSnapshot(const std::string& name, const std::string& state) {
  std::lock_guard lock(impl_->mu);
  FakeSnapshot s;
  s.dto = impl_->newDto(name, state);
  s.dto["imageName"] = "alpine:3.19";
  s.script = {state};
  impl_->snapshots.push_back(s);
  return s.dto;
}

std::optional<Json> FakeDaytona::snapshotByName(const std::string& name) const {
  std::lock_guard lock(impl_->mu);
  for (const auto& s : impl_->snapshots) {
    if (s.dto["name"] == name) return s.dto;
  }
  return std::nullopt;
}

void FakeDaytona::setStateScript(std::vector<std::string> states) {
  std::lock_guard lock(impl_->mu);
  impl_->script = std::move(states);
}
void FakeDaytona::setErrorReason(std::string reason) {
  std::lock_guard lock(impl_->mu);
  impl_->error_reason = std::move(reason);
}
void FakeDaytona::setLogChunks(std::vector<std::string> chunks) {
  std::lock_guard lock(impl_->mu);
  impl_->log_chunks = std::move(chunks);
}
void FakeDaytona::setCloseLogsWhenTerminal(bool close) {
  std::lock_guard lock(impl_->mu);
  impl_->close_logs_when_terminal = close;
}
void FakeDaytona::failNext(const std::string& method, const std::string& path_prefix, int status,
                           std::string body) {
  std::lock_guard lock(impl_->mu);
  impl_->failures.push_back({method, path_prefix, status, std::move(body)});
}
void FakeDaytona::setPushAccessMinimal(bool minimal) {
  std::lock_guard lock(impl_->mu);
  impl_->push_access_minimal = minimal;
}
void FakeDaytona::setLogsUrl(std::string url) {
  std::lock_guard lock(impl_->mu);
  impl_->logs_url = std::move(url);
}
void FakeDaytona::setEmptyCreateBody(bool empty) {
  std::lock_guard lock(impl_->mu);
  impl_->empty_create_body = empty;
}

std::vector<RecordedRequest> FakeDaytona::requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->recorded;
}
std::vector<RecordedRequest> FakeDaytona::requests(const std::string& method,
                                                   const std::string& path_prefix) const {
  std::lock_guard lock(impl_->mu);
  std::vector<RecordedRequest> out;
  for (const auto& r : impl_->recorded) {
    if (r.method == method && r.path.starts_with(path_prefix)) out.push_back(r);
  }
  return out;
}
void FakeDaytona::clearRequests() {
  std::lock_guard lock(impl_->mu);
  impl_->recorded.clear();
}

std::map<std::string, std::string> FakeDaytona::objects() const {
  std::lock_guard lock(impl_->mu);
  return impl_->objects;
}
void FakeDaytona::putObject(const std::string& key, std::string bytes) {
  std::lock_guard lock(impl_->mu);
  impl_->objects[key] = std::move(bytes);
}
std::vector<std::string> FakeDaytona::s3Failures() const {
  std::lock_guard lock(impl_->mu);
  return impl_->s3_failures;
}
int FakeDaytona::multipartCompleted() const {
  std::lock_guard lock(impl_->mu);
  return impl_->multipart_completed;
}

}  // namespace cairn::testing
