#include "cairn/common/sigv4.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "cairn/common/encoding.h"
#include "cairn/common/strings.h"

namespace cairn::sigv4 {
namespace {

bool isUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void appendEscaped(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out.push_back('%');
  out.push_back(kHex[c >> 4]);
  out.push_back(kHex[c & 0xF]);
}

// Re-encodes wire text canonically: a valid %XX escape of an unreserved byte becomes the byte,
// any other valid escape is kept (uppercased), everything else is encoded as uriEncode would.
// Keeping escapes is what makes "%2F" inside a key survive instead of turning into a separator.
std::string canonicalEncode(std::string_view s, bool encode_slash) {
  std::string out;
  out.reserve(s.size() + 8);
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '%' && i + 2 < s.size()) {
      int hi = hexValue(s[i + 1]);
      int lo = hexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        auto decoded = static_cast<unsigned char>(hi * 16 + lo);
        if (isUnreserved(decoded)) {
          out.push_back(static_cast<char>(decoded));
        } else {
          appendEscaped(out, decoded);
        }
        i += 2;
        continue;
      }
    }
    if (isUnreserved(c) || (c == '/' && !encode_slash)) {
      out.push_back(static_cast<char>(c));
    } else {
      appendEscaped(out, c);
    }
  }
  return out;
}

// SigV4's header value normalization: trim SP/HTAB at both ends, collapse inner runs of spaces.
std::string normalizeHeaderValue(std::string_view v) {
  std::size_t b = 0;
  std::size_t e = v.size();
  while (b < e && (v[b] == ' ' || v[b] == '\t'))
    ++b;
  while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t'))
    --e;
  std::string out;
  out.reserve(e - b);
  bool in_space = false;
  for (std::size_t i = b; i < e; ++i) {
    char c = v[i];
    if (c == ' ') {
      if (!in_space) out.push_back(' ');
      in_space = true;
    } else {
      out.push_back(c);
      in_space = false;
    }
  }
  return out;
}

bool isTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool isHeaderName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), isTokenChar);
}

bool isUpperToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

bool isLowerHex(std::string_view s, std::size_t n) {
  return s.size() == n && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool isDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string scopeOf(std::string_view date, std::string_view region, std::string_view service) {
  std::string s;
  s.append(date).append("/").append(region).append("/").append(service).append("/aws4_request");
  return s;
}

}  // namespace

std::string uriEncode(std::string_view s, bool encode_slash) {
  std::string out;
  out.reserve(s.size() + 8);
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (isUnreserved(c) || (c == '/' && !encode_slash)) {
      out.push_back(ch);
    } else {
      appendEscaped(out, c);
    }
  }
  return out;
}

std::string canonicalUri(std::string_view raw_path) {
  if (raw_path.empty()) return "/";
  return canonicalEncode(raw_path, /*encode_slash=*/false);
}

std::string canonicalQuery(std::string_view raw_query) {
  std::vector<std::pair<std::string, std::string>> params;
  std::size_t pos = 0;
  while (pos <= raw_query.size() && !raw_query.empty()) {
    std::size_t amp = raw_query.find('&', pos);
    if (amp == std::string_view::npos) amp = raw_query.size();
    std::string_view item = raw_query.substr(pos, amp - pos);
    if (!item.empty()) {
      std::size_t eq = item.find('=');
      std::string_view k = item.substr(0, eq);
      std::string_view v = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
      params.emplace_back(canonicalEncode(k, true), canonicalEncode(v, true));
    }
    pos = amp + 1;
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out.push_back('&');
    out.append(k).append("=").append(v);
  }
  return out;
}

std::string formatAmzDate(SystemTime t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

Result<SystemTime> parseAmzDate(std::string_view text) {
  auto bad = [&] {
    return invalidArgument("x-amz-date must be YYYYMMDDTHHMMSSZ, got \"" +
                           std::string(text.substr(0, 40)) + "\"");
  };
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z' || !isDigits(text.substr(0, 8)) ||
      !isDigits(text.substr(9, 6))) {
    return bad();
  }
  auto num = [&](std::size_t pos, std::size_t n) {
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i)
      v = v * 10 + (text[i] - '0');
    return v;
  };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(4, 2) - 1;
  tm.tm_mday = num(6, 2);
  tm.tm_hour = num(9, 2);
  tm.tm_min = num(11, 2);
  tm.tm_sec = num(13, 2);
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60) {
    return bad();
  }
  std::time_t tt = timegm(&tm);
  return std::chrono::system_clock::from_time_t(tt);
}

const std::string* findHeader(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (equalsIgnoreCase(k, name)) return &v;
  }
  return nullptr;
}

Result<std::string> canonicalRequest(const RequestView& req,
                                     const std::vector<std::string>& signed_headers) {
  if (!isUpperToken(req.method)) {
    return invalidArgument("HTTP method must be an uppercase token, got \"" +
                           std::string(req.method.substr(0, 20)) + "\"");
  }
  std::string out;
  out.append(req.method).append("\n");
  out.append(canonicalUri(req.path)).append("\n");
  out.append(canonicalQuery(req.query)).append("\n");
  for (const std::string& name : signed_headers) {
    // Several headers with one name are joined with ',' in arrival order.
    std::string value;
    bool found = false;
    for (const auto& [k, v] : req.headers) {
      if (!equalsIgnoreCase(trimSpace(k), name)) continue;
      if (v.find_first_of("\r\n") != std::string::npos) {
        return invalidArgument("header " + name + " contains CR or LF");
      }
      if (found) value.push_back(',');
      value += normalizeHeaderValue(v);
      found = true;
    }
    if (!found) return invalidArgument("signed header " + name + " is missing from the request");
    out.append(name).append(":").append(value).append("\n");
  }
  out.append("\n");
  out.append(joinStrings(signed_headers, ";")).append("\n");
  out.append(req.payload_hash);
  return out;
}

std::string stringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request) {
  std::string out(kAlgorithm);
  out.append("\n").append(amz_date).append("\n").append(scope).append("\n");
  out.append(sha256Hex(canonical_request));
  return out;
}

Sha256Bytes signingKey(std::string_view secret, std::string_view date_yyyymmdd,
                       std::string_view region, std::string_view service) {
  auto view = [](const Sha256Bytes& b) {
    return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
  };
  Sha256Bytes k_date = hmacSha256(std::string("AWS4").append(secret), date_yyyymmdd);
  Sha256Bytes k_region = hmacSha256(view(k_date), region);
  Sha256Bytes k_service = hmacSha256(view(k_region), service);
  return hmacSha256(view(k_service), "aws4_request");
}

namespace {

std::string signatureOf(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service, std::string_view string_to_sign) {
  Sha256Bytes key = signingKey(secret, date, region, service);
  return hexEncode(hmacSha256(
      std::string_view(reinterpret_cast<const char*>(key.data()), key.size()), string_to_sign));
}

}  // namespace

Result<SignedRequest> signRequest(const RequestView& req, const Credentials& credentials,
                                  const SignOptions& options, SystemTime now) {
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return invalidArgument("SigV4 signing needs an access key id and a secret");
  }
  if (options.region.empty() || options.service.empty()) {
    return invalidArgument("SigV4 signing needs a region and a service");
  }
  if (req.payload_hash.empty()) {
    return invalidArgument("SigV4 signing needs the payload hash (or UNSIGNED-PAYLOAD)");
  }
  RequestView full = req;
  SignedRequest out;
  std::string amz_date;
  if (const std::string* d = findHeader(req.headers, "x-amz-date")) {
    CAIRN_RETURN_IF_ERROR(parseAmzDate(*d).status());
    amz_date = *d;
  } else {
    amz_date = formatAmzDate(now);
    out.headers.emplace_back("x-amz-date", amz_date);
  }
  if (options.add_content_sha256_header && !findHeader(req.headers, "x-amz-content-sha256")) {
    out.headers.emplace_back("x-amz-content-sha256", req.payload_hash);
  }
  if (!credentials.session_token.empty() && !findHeader(req.headers, "x-amz-security-token")) {
    out.headers.emplace_back("x-amz-security-token", credentials.session_token);
  }
  for (const auto& h : out.headers)
    full.headers.push_back(h);

  std::vector<std::string> names;
  bool has_host = false;
  for (const auto& [k, v] : full.headers) {
    std::string name = toLowerAscii(trimSpace(k));
    if (!isHeaderName(name)) return invalidArgument("invalid header name \"" + name + "\"");
    if (name == "authorization") continue;
    if (name == "host") has_host = true;
    names.push_back(std::move(name));
  }
  if (!has_host) return invalidArgument("SigV4 signing needs a host header");
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());

  CAIRN_ASSIGN_OR_RETURN(out.canonical_request, canonicalRequest(full, names));
  std::string date = amz_date.substr(0, 8);
  std::string scope = scopeOf(date, options.region, options.service);
  out.string_to_sign = stringToSign(amz_date, scope, out.canonical_request);
  out.signature = signatureOf(credentials.secret_access_key, date, options.region, options.service,
                              out.string_to_sign);
  out.authorization = std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + "/" +
                      scope + ", SignedHeaders=" + joinStrings(names, ";") +
                      ", Signature=" + out.signature;
  out.headers.emplace_back("Authorization", out.authorization);
  return out;
}

Result<Authorization> parseAuthorization(std::string_view header) {
  header = trimSpace(header);
  if (header.substr(0, kAlgorithm.size()) != kAlgorithm || header.size() == kAlgorithm.size() ||
      header[kAlgorithm.size()] != ' ') {
    return invalidArgument("Authorization must start with \"AWS4-HMAC-SHA256 \"");
  }
  Authorization auth;
  bool have_credential = false;
  bool have_signed = false;
  bool have_signature = false;
  for (const std::string& raw : splitString(header.substr(kAlgorithm.size() + 1), ',')) {
    std::string_view part = trimSpace(raw);
    std::size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      return invalidArgument("Authorization component without '=': \"" +
                             std::string(part.substr(0, 60)) + "\"");
    }
    std::string_view key = part.substr(0, eq);
    std::string_view value = part.substr(eq + 1);
    if (key == "Credential") {
      std::vector<std::string> f = splitString(value, '/');
      if (f.size() != 5 || f[0].empty() || f[4] != "aws4_request" || f[1].size() != 8 ||
          !isDigits(f[1]) || f[2].empty() || f[3].empty()) {
        return invalidArgument(
            "Authorization Credential must be <key>/<yyyymmdd>/<region>/<service>/aws4_request");
      }
      auth.access_key_id = f[0];
      auth.date = f[1];
      auth.region = f[2];
      auth.service = f[3];
      have_credential = true;
    } else if (key == "SignedHeaders") {
      auth.signed_headers = splitString(value, ';');
      for (const std::string& name : auth.signed_headers) {
        if (!isHeaderName(name) || toLowerAscii(name) != name) {
          return invalidArgument("Authorization SignedHeaders has an invalid name \"" + name +
                                 "\"");
        }
      }
      if (!std::is_sorted(auth.signed_headers.begin(), auth.signed_headers.end())) {
        return invalidArgument("Authorization SignedHeaders must be sorted");
      }
      have_signed = true;
    } else if (key == "Signature") {
      if (!isLowerHex(value, 64)) {
        return invalidArgument("Authorization Signature must be 64 lowercase hex digits");
      }
      auth.signature = value;
      have_signature = true;
    } else {
      return invalidArgument("Authorization has an unknown component \"" +
                             std::string(key.substr(0, 40)) + "\"");
    }
  }
  if (!have_credential || !have_signed || !have_signature) {
    return invalidArgument("Authorization needs Credential, SignedHeaders and Signature");
  }
  return auth;
}

Result<Verified> verifyRequest(const RequestView& req, const SecretLookup& lookup,
                               const VerifyOptions& options, SystemTime now,
                               VerifyFailure* failure) {
  auto fail = [&](VerifyFailure why, Status status) -> Status {
    if (failure) *failure = why;
    return status;
  };
  if (failure) *failure = VerifyFailure::kNone;

  const std::string* auth_header = findHeader(req.headers, "authorization");
  if (!auth_header) {
    return fail(VerifyFailure::kMalformed, invalidArgument("missing Authorization header"));
  }
  Result<Authorization> auth = parseAuthorization(*auth_header);
  if (!auth.ok()) return fail(VerifyFailure::kMalformed, auth.status());

  if (auth->service != options.service) {
    return fail(VerifyFailure::kMalformed,
                invalidArgument("credential scope service is \"" + auth->service +
                                "\", expected \"" + options.service + "\""));
  }
  if (!options.region.empty() && auth->region != options.region) {
    return fail(VerifyFailure::kMalformed,
                invalidArgument("credential scope region is \"" + auth->region + "\", expected \"" +
                                options.region + "\""));
  }
  if (std::find(auth->signed_headers.begin(), auth->signed_headers.end(), "host") ==
      auth->signed_headers.end()) {
    return fail(VerifyFailure::kMalformed, invalidArgument("SignedHeaders must include host"));
  }

  const std::string* amz_date = findHeader(req.headers, "x-amz-date");
  if (!amz_date) {
    return fail(VerifyFailure::kMalformed, invalidArgument("missing x-amz-date header"));
  }
  Result<SystemTime> when = parseAmzDate(*amz_date);
  if (!when.ok()) return fail(VerifyFailure::kMalformed, when.status());
  if (amz_date->substr(0, 8) != auth->date) {
    return fail(VerifyFailure::kMalformed,
                invalidArgument("credential scope date " + auth->date +
                                " does not match x-amz-date " + *amz_date));
  }
  auto skew = *when > now ? *when - now : now - *when;
  if (skew > options.max_clock_skew) {
    return fail(VerifyFailure::kRequestTimeTooSkewed,
                unauthenticated("request time " + *amz_date + " is too far from the server time " +
                                formatAmzDate(now)));
  }

  RequestView view = req;
  if (view.payload_hash.empty()) {
    const std::string* h = findHeader(req.headers, "x-amz-content-sha256");
    if (!h) {
      return fail(VerifyFailure::kMalformed, invalidArgument("missing x-amz-content-sha256"));
    }
    view.payload_hash = *h;
  }

  Result<std::string> secret = lookup(auth->access_key_id);
  if (!secret.ok()) {
    return fail(VerifyFailure::kUnknownAccessKey,
                unauthenticated("unknown access key " + auth->access_key_id + ": " +
                                secret.status().message()));
  }
  Result<std::string> creq = canonicalRequest(view, auth->signed_headers);
  if (!creq.ok()) return fail(VerifyFailure::kMalformed, creq.status());
  std::string sts =
      stringToSign(*amz_date, scopeOf(auth->date, auth->region, auth->service), *creq);
  std::string expected = signatureOf(*secret, auth->date, auth->region, auth->service, sts);
  if (!constantTimeEquals(expected, auth->signature)) {
    return fail(VerifyFailure::kSignatureMismatch,
                unauthenticated("the request signature does not match the signature computed "
                                "with the secret of access key " +
                                auth->access_key_id));
  }
  Verified v;
  v.authorization = std::move(*auth);
  v.request_time = *when;
  v.payload_hash = view.payload_hash;
  return v;
}

}  // namespace cairn::sigv4
