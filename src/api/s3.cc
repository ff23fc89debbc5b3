#include "cairn/api/s3.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>

#include "cairn/common/checksum.h"
#include "cairn/common/crypto.h"
#include "cairn/common/encoding.h"
#include "cairn/common/log.h"
#include "cairn/common/sigv4.h"
#include "cairn/common/strings.h"
#include "cairn/common/uuid.h"
#include "cairn/common/xml.h"

namespace cairn::api {
namespace {

constexpr std::string_view kXmlHeader = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
constexpr std::string_view kS3Ns = "http://s3.amazonaws.com/doc/2006-03-01/";

std::string httpDate(SystemTime t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string stripQuotes(std::string_view etag) {
  etag = trimSpace(etag);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

bool isHex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string randomAlnum(std::size_t n) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string bytes = randomBytes(n);
  std::string out;
  for (char b : bytes)
    out.push_back(kAlphabet[static_cast<unsigned char>(b) % 32]);
  return out;
}

struct S3 {
  S3Options options;
  std::shared_ptr<ObjectStore> store;
  std::shared_ptr<S3CredentialProvider> credentials;

  Response error(const Request& req, int status, std::string_view code, std::string_view message,
                 std::string_view resource = {}) const {
    std::string request_id = hexEncode(randomBytes(8));
    std::string body(kXmlHeader);
    body +=
        "<Error><Code>" + xmlEscape(code) + "</Code><Message>" + xmlEscape(message) + "</Message>";
    body += "<Resource>" + xmlEscape(resource.empty() ? std::string_view(req.path) : resource) +
            "</Resource>";
    body += "<RequestId>" + request_id + "</RequestId></Error>";
    Response r = Response::text(status, std::move(body), "application/xml");
    r.setHeader("x-amz-request-id", request_id);
    if (status >= 400 || status < 200) {
      spdlog::debug("s3 {} {}: {} {} ({})", req.method, req.target, status, code, message);
    }
    return r;
  }

  Response storeError(const Request& req, const Status& s, std::string_view not_found_code) const {
    switch (s.code()) {
      case StatusCode::kNotFound:
        return error(req, 404, not_found_code,
                     not_found_code == "NoSuchUpload"
                         ? "The specified multipart upload does not exist."
                         : "The specified key does not exist.");
      case StatusCode::kInvalidArgument:
        return error(req, 400, "InvalidArgument", s.message());
      case StatusCode::kResourceExhausted:
        return error(req, 507, "InsufficientStorage", "The store is out of space.");
      default:
        spdlog::error("s3 {} {}: {}", req.method, req.target, s.toString());
        return error(req, 500, "InternalError",
                     "We encountered an internal error. Please try again.");
    }
  }

  // SigV4, session token, expiry and payload hash. On success fills `cred`.
  std::optional<Response> authenticate(const Request& req, S3Credential& cred) const {
    const std::string* auth = req.header("authorization");
    if (!auth) {
      if (req.hasQueryParam("X-Amz-Signature")) {
        return error(req, 403, "AccessDenied", "Presigned URLs are not supported.");
      }
      return error(req, 403, "AccessDenied", "Anonymous access is not allowed.");
    }
    Result<sigv4::Authorization> parsed = sigv4::parseAuthorization(*auth);
    if (!parsed.ok()) {
      return error(req, 400, "AuthorizationHeaderMalformed", parsed.status().message());
    }
    Result<S3Credential> found = credentials->lookup(parsed->access_key_id);
    if (!found.ok()) {
      return error(req, 403, "InvalidAccessKeyId",
                   "The AWS Access Key Id you provided does not exist in our records.");
    }
    SystemTime now = options.clock->now();
    if (found->expires_at != SystemTime{} && now >= found->expires_at) {
      return error(req, 403, "ExpiredToken", "The provided token has expired.");
    }
    if (!found->session_token.empty()) {
      const std::string* token = req.header("x-amz-security-token");
      if (!token || !constantTimeEquals(*token, found->session_token)) {
        return error(req, 403, "InvalidToken",
                     "The provided token is malformed or otherwise invalid.");
      }
    }
    sigv4::RequestView view{req.method, req.path, req.query, req.headers, ""};
    sigv4::VerifyOptions vo;
    vo.service = "s3";
    vo.region = options.region;
    vo.max_clock_skew = options.max_clock_skew;
    std::string secret = found->secret_access_key;
    sigv4::SecretLookup lookup = [&secret](std::string_view) -> Result<std::string> {
      return secret;
    };
    sigv4::VerifyFailure why = sigv4::VerifyFailure::kNone;
    Result<sigv4::Verified> verified = sigv4::verifyRequest(view, lookup, vo, now, &why);
    if (!verified.ok()) {
      switch (why) {
        case sigv4::VerifyFailure::kRequestTimeTooSkewed:
          return error(req, 403, "RequestTimeTooSkewed",
                       "The difference between the request time and the server's time is too "
                       "large.");
        case sigv4::VerifyFailure::kSignatureMismatch:
          return error(req, 403, "SignatureDoesNotMatch",
                       "The request signature we calculated does not match the signature you "
                       "provided. Check your key and signing method.");
        default:
          return error(req, 400, "AuthorizationHeaderMalformed", verified.status().message());
      }
    }
    const std::string& hash = verified->payload_hash;
    if (hash.rfind("STREAMING-", 0) == 0) {
      return error(req, 501, "NotImplemented",
                   "Streaming (aws-chunked) payloads are not supported.");
    }
    if (hash != sigv4::kUnsignedPayload) {
      if (!isHex64(hash)) {
        return error(req, 400, "InvalidArgument", "x-amz-content-sha256 must be a hex SHA-256.");
      }
      if (sha256Hex(req.body) != hash) {
        return error(req, 400, "XAmzContentSHA256Mismatch",
                     "The provided 'x-amz-content-sha256' header does not match what was "
                     "computed.");
      }
    }
    cred = std::move(*found);
    return std::nullopt;
  }

  std::optional<Response> checkBucket(const Request& req, const std::string& bucket) const {
    if (!validateBucketName(bucket).ok()) {
      return error(req, 400, "InvalidBucketName", "The specified bucket is not valid.");
    }
    if (!options.buckets.empty() && std::find(options.buckets.begin(), options.buckets.end(),
                                              bucket) == options.buckets.end()) {
      return error(req, 404, "NoSuchBucket", "The specified bucket does not exist.", bucket);
    }
    return std::nullopt;
  }

  // Verifies checksums the client sent for the body: x-amz-checksum-crc32, -sha256, Content-MD5.
  std::optional<Response> checkDigests(const Request& req) const {
    if (const std::string* crc = req.header("x-amz-checksum-crc32")) {
      if (trimSpace(*crc) != s3Crc32Base64(req.body)) {
        return error(req, 400, "BadDigest",
                     "The CRC32 you specified did not match the calculated checksum.");
      }
    }
    if (const std::string* sha = req.header("x-amz-checksum-sha256")) {
      Sha256Bytes d = sha256(req.body);
      if (trimSpace(*sha) !=
          base64Encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()))) {
        return error(req, 400, "BadDigest",
                     "The SHA256 you specified did not match the calculated checksum.");
      }
    }
    if (const std::string* md5h = req.header("content-md5")) {
      Md5Bytes d = md5(req.body);
      if (trimSpace(*md5h) !=
          base64Encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()))) {
        return error(req, 400, "BadDigest",
                     "The Content-MD5 you specified did not match what we received.");
      }
    }
    return std::nullopt;
  }

  bool keyAllowed(const S3Credential& cred, std::string_view key) const {
    return cred.allowed_prefix.empty() ||
           key.substr(0, cred.allowed_prefix.size()) == cred.allowed_prefix;
  }

  Response handleBucket(Request& req) const {
    const std::string& bucket = req.param("bucket");
    S3Credential cred;
    if (auto r = authenticate(req, cred)) return *r;
    if (auto r = checkBucket(req, bucket)) return *r;
    if (req.method == "HEAD") return Response::empty(200);
    if (req.method != "GET") {
      return error(req, 405, "MethodNotAllowed",
                   "The specified method is not allowed against this resource.");
    }
    return listObjects(req, bucket, cred);
  }

  Response listObjects(Request& req, const std::string& bucket, const S3Credential& cred) const {
    std::string prefix = req.queryParam("prefix").value_or("");
    if (!cred.allowed_prefix.empty()) {
      std::string org = cred.allowed_prefix.substr(0, cred.allowed_prefix.size() - 1);
      if (prefix != org && prefix.rfind(cred.allowed_prefix, 0) != 0) {
        return error(req, 403, "AccessDenied", "Access Denied");
      }
    }
    std::size_t max_keys = 1000;
    if (auto mk = req.queryParam("max-keys")) {
      int v = -1;
      auto [p, ec] = std::from_chars(mk->data(), mk->data() + mk->size(), v);
      if (ec != std::errc() || p != mk->data() + mk->size() || v < 0) {
        return error(req, 400, "InvalidArgument", "max-keys must be a non-negative integer.");
      }
      max_keys = std::min<std::size_t>(static_cast<std::size_t>(v), 1000);
    }
    std::string start_after = req.queryParam("start-after").value_or("");
    std::optional<std::string> token = req.queryParam("continuation-token");
    if (token) {
      Result<std::string> decoded = base64Decode(*token);
      if (!decoded.ok() || decoded->rfind("k:", 0) != 0) {
        return error(req, 400, "InvalidArgument", "The continuation token provided is incorrect.");
      }
      start_after = std::max(start_after, decoded->substr(2));
    }
    bool url_encoding = req.queryParam("encoding-type") == std::optional<std::string>("url");
    Result<ListResult> listed = store->list(bucket, prefix, max_keys, start_after);
    if (!listed.ok()) return storeError(req, listed.status(), "NoSuchKey");
    // A prefix without the trailing '/' ("<orgId>") must still not show other prefixes.
    std::erase_if(listed->objects, [&](const ObjectInfo& o) { return !keyAllowed(cred, o.key); });

    auto enc = [&](const std::string& s) {
      return xmlEscape(url_encoding ? sigv4::uriEncode(s, false) : s);
    };
    std::string body(kXmlHeader);
    body += "<ListBucketResult xmlns=\"" + std::string(kS3Ns) + "\">";
    body += "<Name>" + xmlEscape(bucket) + "</Name><Prefix>" + enc(prefix) + "</Prefix>";
    if (auto sa = req.queryParam("start-after"))
      body += "<StartAfter>" + enc(*sa) + "</StartAfter>";
    if (token) body += "<ContinuationToken>" + xmlEscape(*token) + "</ContinuationToken>";
    body += "<KeyCount>" + std::to_string(listed->objects.size()) + "</KeyCount>";
    body += "<MaxKeys>" + std::to_string(max_keys) + "</MaxKeys>";
    if (url_encoding) body += "<EncodingType>url</EncodingType>";
    body +=
        std::string("<IsTruncated>") + (listed->truncated ? "true" : "false") + "</IsTruncated>";
    if (listed->truncated && !listed->objects.empty()) {
      body += "<NextContinuationToken>" + base64Encode("k:" + listed->objects.back().key) +
              "</NextContinuationToken>";
    }
    for (const ObjectInfo& o : listed->objects) {
      body += "<Contents><Key>" + enc(o.key) + "</Key><LastModified>" +
              formatRfc3339(o.last_modified) + "</LastModified><ETag>&quot;" + o.etag +
              "&quot;</ETag><Size>" + std::to_string(o.size) +
              "</Size><StorageClass>STANDARD</StorageClass></Contents>";
    }
    body += "</ListBucketResult>";
    return Response::text(200, std::move(body), "application/xml");
  }

  Response handleObject(Request& req) const {
    const std::string& bucket = req.param("bucket");
    const std::string& key = req.param("key");
    S3Credential cred;
    if (auto r = authenticate(req, cred)) return *r;
    if (auto r = checkBucket(req, bucket)) return *r;
    if (!validateObjectKey(key).ok()) {
      return error(req, 400, "InvalidArgument", "The object key is not valid.");
    }
    if (!keyAllowed(cred, key)) return error(req, 403, "AccessDenied", "Access Denied");

    std::optional<std::string> upload_id = req.queryParam("uploadId");
    if (req.method == "PUT") {
      if (req.header("x-amz-copy-source")) {
        return error(req, 501, "NotImplemented", "CopyObject is not supported.");
      }
      if (upload_id) return uploadPart(req, bucket, key, *upload_id);
      return putObject(req, bucket, key);
    }
    if (req.method == "POST") {
      if (req.hasQueryParam("uploads")) return createMultipart(req, bucket, key);
      if (upload_id) return completeMultipart(req, bucket, key, *upload_id);
      return error(req, 400, "InvalidRequest", "POST needs ?uploads or ?uploadId.");
    }
    if (req.method == "GET" || req.method == "HEAD") return getObject(req, bucket, key);
    if (req.method == "DELETE") {
      if (upload_id) {
        Status s = store->abortMultipart(bucket, key, *upload_id);
        if (!s.ok()) return storeError(req, s, "NoSuchUpload");
        return Response::empty(204);
      }
      Status s = store->remove(bucket, key);
      if (!s.ok()) return storeError(req, s, "NoSuchKey");
      return Response::empty(204);
    }
    return error(req, 405, "MethodNotAllowed",
                 "The specified method is not allowed against this resource.");
  }

  Response putObject(Request& req, const std::string& bucket, const std::string& key) const {
    if (auto r = checkDigests(req)) return *r;
    PutOptions po;
    if (const std::string* ct = req.header("content-type")) po.content_type = *ct;
    Result<ObjectInfo> info = store->put(bucket, key, req.body, po);
    if (!info.ok()) return storeError(req, info.status(), "NoSuchKey");
    Response r = Response::empty(200);
    r.setHeader("ETag", "\"" + info->etag + "\"");
    if (req.header("x-amz-checksum-crc32") || req.header("x-amz-sdk-checksum-algorithm")) {
      r.setHeader("x-amz-checksum-crc32", info->checksum_crc32);
    }
    return r;
  }

  Response uploadPart(Request& req, const std::string& bucket, const std::string& key,
                      const std::string& upload_id) const {
    std::string pn = req.queryParam("partNumber").value_or("");
    int part_number = 0;
    auto [p, ec] = std::from_chars(pn.data(), pn.data() + pn.size(), part_number);
    if (ec != std::errc() || p != pn.data() + pn.size() || part_number < 1 || part_number > 10000) {
      return error(req, 400, "InvalidArgument",
                   "Part number must be an integer between 1 and 10000, inclusive.");
    }
    if (auto r = checkDigests(req)) return *r;
    Result<PartInfo> part = store->uploadPart(bucket, key, upload_id, part_number, req.body);
    if (!part.ok()) return storeError(req, part.status(), "NoSuchUpload");
    Response r = Response::empty(200);
    r.setHeader("ETag", "\"" + part->etag + "\"");
    r.setHeader("x-amz-checksum-crc32", part->checksum_crc32);
    return r;
  }

  Response createMultipart(Request& req, const std::string& bucket, const std::string& key) const {
    PutOptions po;
    if (const std::string* ct = req.header("content-type")) po.content_type = *ct;
    Result<std::string> id = store->createMultipart(bucket, key, po);
    if (!id.ok()) return storeError(req, id.status(), "NoSuchKey");
    std::string body(kXmlHeader);
    body += "<InitiateMultipartUploadResult xmlns=\"" + std::string(kS3Ns) + "\"><Bucket>" +
            xmlEscape(bucket) + "</Bucket><Key>" + xmlEscape(key) + "</Key><UploadId>" + *id +
            "</UploadId></InitiateMultipartUploadResult>";
    Response r = Response::text(200, std::move(body), "application/xml");
    if (const std::string* algo = req.header("x-amz-checksum-algorithm")) {
      r.setHeader("x-amz-checksum-algorithm", *algo);
    }
    return r;
  }

  Response completeMultipart(Request& req, const std::string& bucket, const std::string& key,
                             const std::string& upload_id) const {
    std::string_view body = req.body;
    if (body.find("<CompleteMultipartUpload") == std::string_view::npos) {
      return error(req, 400, "MalformedXML",
                   "The XML you provided was not well-formed or did not validate against our "
                   "published schema.");
    }
    struct Wanted {
      int number;
      std::string etag;
      std::optional<std::string> crc;
    };
    std::vector<Wanted> wanted;
    for (std::string_view part : xmlElements(body, "Part")) {
      std::optional<std::string> number = xmlElementText(part, "PartNumber");
      std::optional<std::string> etag = xmlElementText(part, "ETag");
      int n = 0;
      if (!number || !etag ||
          std::from_chars(number->data(), number->data() + number->size(), n).ec != std::errc()) {
        return error(req, 400, "MalformedXML", "Each Part needs a PartNumber and an ETag.");
      }
      wanted.push_back({n, stripQuotes(*etag), xmlElementText(part, "ChecksumCRC32")});
    }
    if (wanted.empty()) {
      return error(req, 400, "MalformedXML", "CompleteMultipartUpload lists no parts.");
    }
    for (std::size_t i = 1; i < wanted.size(); ++i) {
      if (wanted[i].number <= wanted[i - 1].number) {
        return error(req, 400, "InvalidPartOrder",
                     "The list of parts was not in ascending order. Parts must be ordered by "
                     "part number.");
      }
    }
    Result<std::vector<PartInfo>> have = store->listParts(bucket, key, upload_id);
    if (!have.ok()) return storeError(req, have.status(), "NoSuchUpload");
    std::vector<int> numbers;
    for (const Wanted& w : wanted) {
      auto it = std::find_if(have->begin(), have->end(),
                             [&](const PartInfo& p) { return p.part_number == w.number; });
      if (it == have->end() || it->etag != w.etag || (w.crc && *w.crc != it->checksum_crc32)) {
        return error(req, 400, "InvalidPart",
                     "One or more of the specified parts could not be found. The part may not "
                     "have been uploaded, or the specified entity tag may not match the part's "
                     "entity tag (part " +
                         std::to_string(w.number) + ").");
      }
      numbers.push_back(w.number);
    }
    Result<ObjectInfo> info = store->completeMultipart(bucket, key, upload_id, numbers);
    if (!info.ok()) return storeError(req, info.status(), "NoSuchUpload");
    std::string host = req.header("host") ? *req.header("host") : "localhost";
    std::string out(kXmlHeader);
    out += "<CompleteMultipartUploadResult xmlns=\"" + std::string(kS3Ns) + "\"><Location>http://" +
           xmlEscape(host) + xmlEscape(options.prefix) + "/" + xmlEscape(bucket) + "/" +
           xmlEscape(sigv4::uriEncode(key, false)) + "</Location><Bucket>" + xmlEscape(bucket) +
           "</Bucket><Key>" + xmlEscape(key) + "</Key><ETag>&quot;" + info->etag +
           "&quot;</ETag></CompleteMultipartUploadResult>";
    return Response::text(200, std::move(out), "application/xml");
  }

  Response getObject(Request& req, const std::string& bucket, const std::string& key) const {
    bool head = req.method == "HEAD";
    Response r;
    ObjectInfo info;
    if (head) {
      Result<ObjectInfo> got = store->head(bucket, key);
      if (!got.ok()) return storeError(req, got.status(), "NoSuchKey");
      info = std::move(*got);
      r.setHeader("Content-Length", std::to_string(info.size));
    } else {
      Result<ObjectReader> got = store->get(bucket, key);
      if (!got.ok()) return storeError(req, got.status(), "NoSuchKey");
      info = std::move(got->info);
      r.file = std::make_shared<UniqueFd>(std::move(got->fd));
      r.file_size = info.size;
    }
    r.status = 200;
    r.setHeader("Content-Type",
                info.content_type.empty() ? "application/octet-stream" : info.content_type);
    r.setHeader("ETag", "\"" + info.etag + "\"");
    r.setHeader("Last-Modified", httpDate(info.last_modified));
    r.setHeader("Accept-Ranges", "none");
    const std::string* mode = req.header("x-amz-checksum-mode");
    if (mode && equalsIgnoreCase(*mode, "ENABLED") && !info.checksum_crc32.empty()) {
      r.setHeader("x-amz-checksum-crc32", info.checksum_crc32);
    }
    return r;
  }
};

}  // namespace

std::string s3Crc32Base64(std::string_view data) {
  return crc32Base64(data);
}

Result<S3Credential> CredentialMinter::mint(std::string_view org_id) {
  if (org_id.empty() || org_id.find('/') != std::string_view::npos) {
    return invalidArgument("organization id must be non-empty and contain no '/'");
  }
  S3Credential c;
  c.access_key_id = "CAIRN" + randomAlnum(15);
  c.secret_access_key = base64UrlEncode(randomBytes(30));
  c.session_token = base64UrlEncode(randomBytes(48));
  c.expires_at = clock_.now() + ttl_;
  c.allowed_prefix = std::string(org_id) + "/";
  std::lock_guard lock(mu_);
  // Forget credentials that expired more than a ttl ago (requests with them fail with
  // InvalidAccessKeyId instead of ExpiredToken after that, which is still a rejection).
  SystemTime now = clock_.now();
  std::erase_if(credentials_, [&](const auto& kv) {
    return kv.second.expires_at != SystemTime{} && kv.second.expires_at + ttl_ < now;
  });
  credentials_[c.access_key_id] = c;
  return c;
}

void CredentialMinter::add(S3Credential credential) {
  std::lock_guard lock(mu_);
  std::string id = credential.access_key_id;
  credentials_[id] = std::move(credential);
}

Result<S3Credential> CredentialMinter::lookup(std::string_view access_key_id) {
  std::lock_guard lock(mu_);
  auto it = credentials_.find(std::string(access_key_id));
  if (it == credentials_.end()) return notFound("unknown access key");
  return it->second;
}

Status mountS3(Router& router, S3Options options, std::shared_ptr<ObjectStore> store,
               std::shared_ptr<S3CredentialProvider> credentials) {
  if (!store || !credentials) return invalidArgument("mountS3 needs a store and credentials");
  if (!options.clock) options.clock = &RealClock::instance();
  while (!options.prefix.empty() && options.prefix.back() == '/')
    options.prefix.pop_back();
  if (!options.prefix.empty() && options.prefix.front() != '/') {
    return invalidArgument("S3 prefix must start with '/': \"" + options.prefix + "\"");
  }
  auto s3 = std::make_shared<S3>(S3{options, std::move(store), std::move(credentials)});
  // Bodies up to the object limit plus slack for the XML of CompleteMultipartUpload.
  RouteOptions ro;
  ro.max_body_bytes = options.max_object_bytes + 64 * 1024;
  ro.error_formatter = [s3](const Request& r, int status, std::string_view message) {
    return s3->error(r, status, status == 413 ? "EntityTooLarge" : "InvalidRequest", message);
  };
  const std::string& p = options.prefix;
  auto bucket = [s3](Request& r) { return s3->handleBucket(r); };
  auto object = [s3](Request& r) { return s3->handleObject(r); };
  CAIRN_RETURN_IF_ERROR(router.add("*", p + "/{bucket}", bucket, ro));
  CAIRN_RETURN_IF_ERROR(router.add("*", p + "/{bucket}/", bucket, ro));
  CAIRN_RETURN_IF_ERROR(router.add("*", p + "/{bucket}/{key+}", object, ro));
  return okStatus();
}

}  // namespace cairn::api
