#include "cairn/sdk/s3_client.h"

#include <algorithm>
#include <deque>
#include <future>
#include <utility>
#include <vector>

#include "cairn/common/checksum.h"
#include "cairn/common/crypto.h"
#include "cairn/common/encoding.h"
#include "cairn/common/sigv4.h"
#include "cairn/common/time.h"
#include "cairn/common/xml.h"

namespace cairn::sdk {
namespace {

Status s3Error(std::string_view what, const HttpResponse& r) {
  std::string detail;
  if (auto code = xmlElementText(r.body, "Code")) detail = " " + *code;
  if (auto message = xmlElementText(r.body, "Message")) detail += ": " + *message;
  if (detail.empty() && !r.body.empty()) detail = ": " + r.body.substr(0, 512);
  std::string text = std::string(what) + ": " + std::to_string(r.status) + detail;
  if (r.status == 403 || r.status == 401) return permissionDenied(std::move(text));
  if (r.status == 404) return notFound(std::move(text));
  if (r.status >= 500) return unavailable(std::move(text));
  return invalidArgument(std::move(text));
}

}  // namespace

std::string crc32Base64(std::string_view data) {
  return ::cairn::crc32Base64(data);
}

S3Client::S3Client(StorageAccess access, std::shared_ptr<HttpClient> http)
    : access_(std::move(access)), http_(std::move(http)) {
  std::string url = access_.storageUrl;
  while (!url.empty() && url.back() == '/')
    url.pop_back();
  base_ = url;
  auto scheme = url.find("://");
  std::string_view rest = scheme == std::string::npos ? std::string_view(url)
                                                      : std::string_view(url).substr(scheme + 3);
  auto slash = rest.find('/');
  host_ = std::string(rest.substr(0, slash));
  base_path_ = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
}

Result<HttpResponse> S3Client::call(std::string_view method, std::string_view key,
                                    std::string_view query, HttpHeaders extra_headers,
                                    std::string_view body, const Deadline& deadline) {
  if (deadline.expired()) return deadlineExceeded("S3 upload: the deadline has passed");
  std::string path = base_path_ + "/" + sigv4::uriEncode(access_.bucket, true) + "/" +
                     sigv4::uriEncode(key, false);
  std::string what =
      std::string(method) + " " + base_ + "/" + access_.bucket + "/" + std::string(key);

  sigv4::RequestView view;
  view.method = method;
  view.path = path;
  view.query = query;
  view.headers.emplace_back("host", host_);
  for (auto& h : extra_headers)
    view.headers.push_back(h);
  view.payload_hash = sha256Hex(body);
  sigv4::Credentials creds{access_.accessKey, access_.secret, access_.sessionToken};
  sigv4::SignOptions options;
  options.region = access_.region;
  Result<sigv4::SignedRequest> sig =
      sigv4::signRequest(view, creds, options, std::chrono::system_clock::now());
  if (!sig.ok()) return sig.status().withContext(what);

  HttpRequest req;
  req.method = std::string(method);
  std::string scheme_and_host = base_.substr(0, base_.size() - base_path_.size());
  req.url = scheme_and_host + path + (query.empty() ? "" : "?" + std::string(query));
  req.headers = std::move(extra_headers);
  // Send the Host that was signed: libcurl would drop an explicit default port (":80").
  req.headers.emplace_back("Host", host_);
  for (auto& h : sig->headers)
    req.headers.push_back(h);
  req.body = std::string(body);
  req.timeout = deadline.remaining();
  Result<HttpResponse> r = http_->send(req);
  if (!r.ok()) return r.status();
  if (r->status < 200 || r->status >= 300) return s3Error(what, *r);
  return r;
}

Result<bool> S3Client::prefixExists(std::string_view prefix, const Deadline& deadline) {
  std::string query = "list-type=2&max-keys=1&prefix=" + sigv4::uriEncode(prefix, true);
  CAIRN_ASSIGN_OR_RETURN(HttpResponse r, call("GET", "", query, {}, "", deadline));
  // An empty key gives "/bucket/", the path ListObjectsV2 is sent to.
  return r.body.find("<Contents>") != std::string::npos ||
         r.body.find("<Contents ") != std::string::npos;
}

Status S3Client::putObject(std::string_view key, std::string_view body, const Deadline& deadline) {
  HttpHeaders headers = {{"content-type", "application/octet-stream"},
                         {"x-amz-checksum-crc32", crc32Base64(body)},
                         {"x-amz-sdk-checksum-algorithm", "CRC32"}};
  Result<HttpResponse> r = call("PUT", key, "x-id=PutObject", std::move(headers), body, deadline);
  return r.status();
}

Result<std::string> S3Client::uploadPart(std::string_view key, const std::string& upload_id,
                                         int number, std::string_view body,
                                         const Deadline& deadline, std::string* echoed_crc) {
  std::string crc = crc32Base64(body);
  HttpHeaders headers = {{"content-type", "application/octet-stream"},
                         {"x-amz-checksum-crc32", crc},
                         {"x-amz-sdk-checksum-algorithm", "CRC32"}};
  std::string query = "partNumber=" + std::to_string(number) +
                      "&uploadId=" + sigv4::uriEncode(upload_id, true) + "&x-id=UploadPart";
  CAIRN_ASSIGN_OR_RETURN(HttpResponse r,
                         call("PUT", key, query, std::move(headers), body, deadline));
  auto etag = r.header("etag");
  if (!etag || etag->empty()) {
    return internalError("upload part " + std::to_string(number) + " of " + std::string(key) +
                         ": the reply has no ETag");
  }
  *echoed_crc = r.header("x-amz-checksum-crc32").value_or("");
  return *etag;
}

Status S3Client::upload(std::string_view key, std::uint64_t size, const BodyProducer& produce,
                        const Deadline& deadline) {
  stats_ = {};
  const std::string key_str(key);
  auto sizeMismatch = [&](std::uint64_t got) {
    return internalError("upload of " + key_str + ": the body has " + std::to_string(got) +
                         " bytes, " + std::to_string(size) + " were announced");
  };
  if (size <= kMultipartPartSize) {
    // Fits in one part: a single PutObject, as lib-storage's Upload does.
    std::string body;
    body.reserve(size);
    CAIRN_RETURN_IF_ERROR(produce([&body, size](std::string_view chunk) {
      if (body.size() + chunk.size() > size) return invalidArgument("body longer than announced");
      body.append(chunk);
      return okStatus();
    }));
    if (body.size() != size) return sizeMismatch(body.size());
    stats_.bytes = body.size();
    return putObject(key, body, deadline);
  }

  HttpHeaders init_headers = {{"x-amz-checksum-algorithm", "CRC32"}};
  CAIRN_ASSIGN_OR_RETURN(HttpResponse init,
                         call("POST", key, "uploads=", std::move(init_headers), "", deadline));
  std::optional<std::string> upload_id = xmlElementText(init.body, "UploadId");
  if (!upload_id || upload_id->empty()) {
    return internalError("create multipart upload of " + key_str + ": the reply has no UploadId");
  }

  struct Part {
    int number;
    std::string etag;
    std::string crc;
  };
  using PartResult = Result<std::pair<std::string, std::string>>;
  std::vector<Part> parts;
  std::deque<std::pair<int, std::future<PartResult>>> in_flight;
  Status failure;
  int next_number = 1;
  std::string buffer;
  std::uint64_t produced = 0;

  auto collect = [&](std::size_t keep) {
    while (in_flight.size() > keep) {
      auto [number, fut] = std::move(in_flight.front());
      in_flight.pop_front();
      PartResult r = fut.get();
      if (!r.ok()) {
        if (failure.ok()) failure = r.status();
        continue;
      }
      parts.push_back({number, r->first, r->second});
    }
  };
  auto launch = [&](std::string body) {
    collect(kMultipartConcurrency - 1);
    if (!failure.ok()) return;
    int number = next_number++;
    stats_.bytes += body.size();
    in_flight.emplace_back(
        number, std::async(std::launch::async,
                           [this, &key_str, &upload_id, number, body = std::move(body),
                            &deadline]() -> PartResult {
                             std::string crc;
                             CAIRN_ASSIGN_OR_RETURN(
                                 std::string etag,
                                 uploadPart(key_str, *upload_id, number, body, deadline, &crc));
                             return std::make_pair(std::move(etag), std::move(crc));
                           }));
  };

  Status produced_status = produce([&](std::string_view chunk) -> Status {
    if (!failure.ok()) return failure;
    produced += chunk.size();
    while (!chunk.empty()) {
      std::size_t take = std::min(chunk.size(), kMultipartPartSize - buffer.size());
      buffer.append(chunk.substr(0, take));
      chunk.remove_prefix(take);
      if (buffer.size() == kMultipartPartSize) {
        launch(std::move(buffer));
        buffer = std::string();
        buffer.reserve(kMultipartPartSize);
      }
    }
    return failure;
  });
  if (produced_status.ok() && failure.ok() && !buffer.empty()) launch(std::move(buffer));
  collect(0);
  stats_.parts = next_number - 1;
  if (failure.ok()) failure = produced_status;
  if (failure.ok() && produced != size) failure = sizeMismatch(produced);

  if (!failure.ok()) {
    // Best effort: free the parts already stored.
    (void)call("DELETE", key, "uploadId=" + sigv4::uriEncode(*upload_id, true), {}, "",
               Deadline::after(std::chrono::seconds(10)));
    return failure.withContext("multipart upload of " + key_str);
  }

  std::sort(parts.begin(), parts.end(),
            [](const Part& a, const Part& b) { return a.number < b.number; });
  std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
      "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (const Part& p : parts) {
    xml += "<Part><ETag>" + xmlEscape(p.etag) + "</ETag>";
    if (!p.crc.empty()) xml += "<ChecksumCRC32>" + xmlEscape(p.crc) + "</ChecksumCRC32>";
    xml += "<PartNumber>" + std::to_string(p.number) + "</PartNumber></Part>";
  }
  xml += "</CompleteMultipartUpload>";
  HttpHeaders complete_headers = {{"content-type", "application/xml"}};
  CAIRN_ASSIGN_OR_RETURN(HttpResponse done,
                         call("POST", key, "uploadId=" + sigv4::uriEncode(*upload_id, true),
                              std::move(complete_headers), xml, deadline));
  // S3 may answer 200 with an <Error> body when completion fails late.
  if (done.body.find("<Error>") != std::string::npos) {
    return s3Error("complete multipart upload of " + key_str, done);
  }
  return okStatus();
}

}  // namespace cairn::sdk
