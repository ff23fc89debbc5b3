// AWS Signature Version 4 (AWS4-HMAC-SHA256), as S3 uses it: signing requests (the SDK's
// object-storage client) and verifying them (the server's S3-compatible endpoint).
//
// Paths and queries are taken as they travel on the wire (already percent-encoded) and are
// canonicalized the S3 way: the path is not normalized ("//" and ".." stay) and not
// double-encoded; every byte outside A-Z a-z 0-9 - . _ ~ (and '/' in the path) is %XX with
// uppercase hex; an existing escape is kept as it is, so "%2F" in a key stays "%2F". Query
// parameters are split on '&' and the first '=', re-encoded the same way ('/' included) and
// sorted; '+' is a literal plus, never a space.
//
//   sigv4::RequestView req{"PUT", "/bucket/org/abc/context.tar", "x-id=PutObject",
//                          {{"host", "127.0.0.1:3000"}}, sha256Hex(body)};
//   CAIRN_ASSIGN_OR_RETURN(auto signed_req, sigv4::signRequest(req, creds, {"us-east-1"}, now));
//   for (auto& [name, value] : signed_req.headers) curl_headers.add(name + ": " + value);
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/common/crypto.h"
#include "cairn/common/status.h"
#include "cairn/common/time.h"

namespace cairn::sigv4 {

inline constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
//! sha256 of the empty string: x-amz-content-sha256 of a request without a body.
inline constexpr std::string_view kEmptyPayloadSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
//! S3 rejects requests whose x-amz-date is further than this from the server's clock.
inline constexpr std::chrono::minutes kMaxClockSkew{15};

using Header = std::pair<std::string, std::string>;
using Headers = std::vector<Header>;

//! Percent-encodes every byte outside the unreserved set (and '/' unless encode_slash).
std::string uriEncode(std::string_view s, bool encode_slash);
//! S3 canonical URI of a wire path (see the file comment); "" becomes "/".
std::string canonicalUri(std::string_view raw_path);
//! Canonical query string of a wire query (without the leading '?').
std::string canonicalQuery(std::string_view raw_query);

//! "20150830T123600Z".
std::string formatAmzDate(SystemTime t);
//! Parses "YYYYMMDDTHHMMSSZ"; anything else is InvalidArgument.
Result<SystemTime> parseAmzDate(std::string_view text);

//! The parts of an HTTP request that SigV4 covers. Header names may have any case.
struct RequestView {
  std::string_view method;  // "GET", "PUT", ... (uppercase)
  std::string_view path;    // wire path, percent-encoded, starts with '/'
  std::string_view query;   // wire query without '?', may be empty
  Headers headers;
  //! Hex sha256 of the body, or "UNSIGNED-PAYLOAD". When verifying, empty means "take it from
  //! the x-amz-content-sha256 header".
  std::string payload_hash;
};

//! The canonical request over `signed_headers` (lowercase names, sorted, all present).
Result<std::string> canonicalRequest(const RequestView& req,
                                     const std::vector<std::string>& signed_headers);
//! "AWS4-HMAC-SHA256\n<amz date>\n<scope>\n<hex sha256(canonical request)>".
std::string stringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request);
//! kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
Sha256Bytes signingKey(std::string_view secret, std::string_view date_yyyymmdd,
                       std::string_view region, std::string_view service);

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty when the credentials are not temporary
};

struct SignOptions {
  std::string region = "us-east-1";
  std::string service = "s3";
  //! S3 requires x-amz-content-sha256; other services (and AWS's generic test suite) do not.
  bool add_content_sha256_header = true;
};

struct SignedRequest {
  //! Headers to add to the request: x-amz-date, x-amz-content-sha256 (if asked for),
  //! x-amz-security-token (with a session token) and Authorization.
  Headers headers;
  std::string authorization;
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;
};

//! Signs every header in req.headers (which must include host) plus the ones it adds. A header
//! in req.headers named x-amz-date is used as the request time instead of `now`.
Result<SignedRequest> signRequest(const RequestView& req, const Credentials& credentials,
                                  const SignOptions& options, SystemTime now);

//! The fields of an "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…" header.
struct Authorization {
  std::string access_key_id;
  std::string date;  // YYYYMMDD of the credential scope
  std::string region;
  std::string service;
  std::vector<std::string> signed_headers;
  std::string signature;  // 64 lowercase hex
};
Result<Authorization> parseAuthorization(std::string_view header);

//! Why verification failed, for callers that answer with S3 error codes.
enum class VerifyFailure {
  kNone,
  kMalformed,         // AuthorizationHeaderMalformed / AccessDenied
  kUnknownAccessKey,  // InvalidAccessKeyId
  kRequestTimeTooSkewed,
  kSignatureMismatch,  // SignatureDoesNotMatch
};

struct VerifyOptions {
  std::string service = "s3";
  //! Expected region of the credential scope; empty accepts any.
  std::string region;
  std::chrono::seconds max_clock_skew = kMaxClockSkew;
};

struct Verified {
  Authorization authorization;
  SystemTime request_time;
  std::string payload_hash;  // as signed (the caller checks it against the body)
};

//! Looks up the secret of an access key; a non-OK result means "unknown key".
using SecretLookup = std::function<Result<std::string>(std::string_view access_key_id)>;

//! Verifies a signed request as received: parses Authorization, checks x-amz-date against
//! `now` (± max_clock_skew) and the credential scope, recomputes the signature with the secret
//! from `lookup` over the headers the client listed (host must be among them) and compares in
//! constant time. Errors: InvalidArgument (malformed), Unauthenticated (unknown key, skew, bad
//! signature); `failure`, if given, says which.
Result<Verified> verifyRequest(const RequestView& req, const SecretLookup& lookup,
                               const VerifyOptions& options, SystemTime now,
                               VerifyFailure* failure = nullptr);

//! Value of the first header named `name` (case-insensitive), or nullptr.
const std::string* findHeader(const Headers& headers, std::string_view name);

}  // namespace cairn::sigv4
