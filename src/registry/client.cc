#include "cairn/registry/client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "cairn/common/crypto.h"
#include "cairn/common/encoding.h"
#include "cairn/common/json.h"
#include "cairn/common/strings.h"
#include "cairn/oci/catalog.h"
#include "http.h"

namespace cairn::registry {

const char* const kManifestAccept =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

namespace {

// One connection per thread, reused across requests (keep-alive).
HttpSession& threadSession() {
  thread_local HttpSession session;
  return session;
}

std::string v2Url(const std::string& base, const oci::Reference& repo, std::string_view rest) {
  return base + "/v2/" + repo.path() + "/" + std::string(rest);
}

std::string pullScope(const oci::Reference& repo) {
  return "repository:" + repo.path() + ":pull";
}
std::string pushScope(const oci::Reference& repo) {
  return "repository:" + repo.path() + ":pull,push";
}

bool isRetryableStatus(long status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

}  // namespace

Status statusFromHttp(std::string_view what, long http_status, std::string_view body) {
  std::string detail;
  auto j = parseJson(body);
  if (j.ok() && j->is_object() && j->contains("errors") && (*j)["errors"].is_array()) {
    std::vector<std::string> parts;
    for (const auto& e : (*j)["errors"]) {
      if (!e.is_object()) continue;
      std::string code =
          e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>() : "";
      std::string msg =
          e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : "";
      parts.push_back(code + (msg.empty() ? "" : ": " + msg));
    }
    detail = joinStrings(parts, "; ");
  } else if (!body.empty() && body.size() < 300) {
    detail = std::string(trimSpace(body));
  }
  std::string message = std::string(what) + ": HTTP " + std::to_string(http_status) +
                        (detail.empty() ? "" : " (" + detail + ")");
  if (http_status == 404) return notFound(message);
  if (http_status == 401) return unauthenticated(message);
  if (http_status == 403) return permissionDenied(message);
  if (http_status == 429) return resourceExhausted(message);
  if (http_status >= 500) return unavailable(message);
  return invalidArgument(message);
}

Result<Challenge> parseChallenge(std::string_view header) {
  header = trimSpace(header);
  auto sp = header.find(' ');
  Challenge c;
  c.scheme = toLowerAscii(header.substr(0, sp));
  if (c.scheme.empty()) return invalidArgument("empty WWW-Authenticate header");
  if (sp == std::string_view::npos) return c;
  std::string_view rest = header.substr(sp + 1);
  std::size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && (rest[i] == ' ' || rest[i] == ','))
      ++i;
    std::size_t eq = rest.find('=', i);
    if (eq == std::string_view::npos) break;
    std::string key = toLowerAscii(trimSpace(rest.substr(i, eq - i)));
    i = eq + 1;
    std::string value;
    if (i < rest.size() && rest[i] == '"') {
      ++i;
      while (i < rest.size() && rest[i] != '"') {
        if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
        value.push_back(rest[i++]);
      }
      if (i >= rest.size()) return invalidArgument("WWW-Authenticate: unterminated quote");
      ++i;
    } else {
      std::size_t end = rest.find(',', i);
      value = std::string(trimSpace(rest.substr(i, end == std::string_view::npos ? end : end - i)));
      i = end == std::string_view::npos ? rest.size() : end;
    }
    c.params[key] = value;
  }
  return c;
}

RegistryClient::RegistryClient(RegistryConfig config) : config_(std::move(config)) {}
RegistryClient::~RegistryClient() = default;

std::uint64_t RegistryClient::retries() const {
  std::lock_guard lock(mu_);
  return retries_;
}
std::uint64_t RegistryClient::resumes() const {
  std::lock_guard lock(mu_);
  return resumes_;
}

RegistryClient::Endpoint RegistryClient::originFor(const oci::Reference& ref) const {
  const std::string& host = ref.domain();
  return {config_.schemeFor(host) + "://" + RegistryConfig::apiHost(host), host, false};
}

std::vector<RegistryClient::Endpoint> RegistryClient::endpointsFor(const oci::Reference& ref,
                                                                   bool pull) const {
  std::vector<Endpoint> out;
  if (pull) {
    for (const auto& m : config_.mirrorsFor(ref.domain())) {
      auto scheme_end = m.find("://");
      std::string host = m.substr(scheme_end + 3);
      host = host.substr(0, host.find('/'));
      out.push_back({m, host, true});
    }
  }
  out.push_back(originFor(ref));
  return out;
}

void RegistryClient::backoff(int attempt) const {
  auto delay = config_.initial_backoff * (1 << std::min(attempt, 10));
  std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(delay, config_.max_backoff));
}

Result<std::string> RegistryClient::authorize(const Endpoint& endpoint, const std::string& scope,
                                              const std::string& header) {
  CAIRN_ASSIGN_OR_RETURN(Challenge challenge, parseChallenge(header));
  Credentials creds = config_.credentialsFor(endpoint.host);
  if (challenge.scheme == "basic") {
    if (creds.username.empty() && creds.password.empty()) {
      return unauthenticated(endpoint.base_url +
                             " wants a username and password (Basic auth); add them to the "
                             "registry config or ~/.docker/config.json");
    }
    return "Basic " + base64Encode(creds.username + ":" + creds.password);
  }
  if (challenge.scheme != "bearer") {
    return unauthenticated(endpoint.base_url + ": unsupported auth scheme \"" + challenge.scheme +
                           "\"");
  }
  auto realm = challenge.params.find("realm");
  if (realm == challenge.params.end() || realm->second.empty()) {
    return unauthenticated(endpoint.base_url + ": Bearer challenge without a realm");
  }
  if (!realm->second.starts_with("https://") && !realm->second.starts_with("http://")) {
    return unauthenticated(endpoint.base_url + ": token realm \"" + realm->second +
                           "\" is not an http(s) URL");
  }
  std::string url = realm->second;
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  if (auto svc = challenge.params.find("service"); svc != challenge.params.end()) {
    url += sep + std::string("service=") + urlEncode(svc->second);
    sep = '&';
  }
  // The scope we need, plus any the registry named (they may differ for mounts).
  std::string want_scope = scope;
  if (auto s = challenge.params.find("scope"); s != challenge.params.end() && !s->second.empty()) {
    if (scope.find(s->second) == std::string::npos) {
      url += sep + std::string("scope=") + urlEncode(s->second);
      sep = '&';
    }
  }
  for (const auto& one : splitString(want_scope, ' ')) {
    if (one.empty()) continue;
    url += sep + std::string("scope=") + urlEncode(one);
    sep = '&';
  }

  HttpRequest req;
  req.url = url;
  req.verify_tls = config_.verifyTlsFor(endpoint.host);
  if (!creds.empty()) {
    std::string user = creds.username.empty() ? "<token>" : creds.username;
    std::string pass = creds.identity_token.empty() ? creds.password : creds.identity_token;
    req.headers.push_back("Authorization: Basic " + base64Encode(user + ":" + pass));
  }
  Result<HttpResponse> resp = unavailable("not sent");
  for (int attempt = 0; attempt < config_.max_attempts; ++attempt) {
    resp = threadSession().perform(req);
    bool retry = resp.ok() ? isRetryableStatus(resp->status) : threadSession().lastErrorRetryable();
    if (!retry || attempt + 1 == config_.max_attempts) break;
    backoff(attempt);
  }
  if (!resp.ok()) return resp.status().withContext("token request");
  if (resp->status != 200) {
    Status s = statusFromHttp("token request to " + realm->second, resp->status, resp->body);
    if (resp->status == 401 || resp->status == 403) {
      return unauthenticated(s.message() + (creds.empty() ? " (no credentials configured)"
                                                          : " (credentials rejected)"));
    }
    return s;
  }
  auto j = parseJson(resp->body);
  if (!j.ok() || !j->is_object()) {
    return unauthenticated("token reply from " + realm->second + " is not a JSON object");
  }
  std::string token;
  for (const char* key : {"token", "access_token"}) {
    if (j->contains(key) && (*j)[key].is_string() && !(*j)[key].get<std::string>().empty()) {
      token = (*j)[key].get<std::string>();
      break;
    }
  }
  if (token.empty()) return unauthenticated("token reply from " + realm->second + " has no token");
  return "Bearer " + token;
}

Result<HttpResponse> RegistryClient::send(const Endpoint& endpoint, const std::string& scope,
                                          HttpRequest& request, bool retry_transport) {
  request.verify_tls = config_.verifyTlsFor(endpoint.host);
  const std::vector<std::string> base_headers = request.headers;
  const std::string cache_key = endpoint.base_url + " " + scope;
  bool authorized_fresh = false;
  for (int attempt = 0;; ++attempt) {
    request.headers = base_headers;
    {
      std::lock_guard lock(mu_);
      auto it = auth_cache_.find(cache_key);
      if (it != auth_cache_.end()) request.headers.push_back("Authorization: " + it->second);
    }
    if (attempt > 0 && request.rewind_body) CAIRN_RETURN_IF_ERROR(request.rewind_body());
    auto resp = threadSession().perform(request);
    bool last = attempt + 1 >= config_.max_attempts;
    if (!resp.ok()) {
      if (!retry_transport || !threadSession().lastErrorRetryable() || last) return resp;
      spdlog::debug("retrying after {}", resp.status().message());
      {
        std::lock_guard lock(mu_);
        ++retries_;
      }
      backoff(attempt);
      continue;
    }
    if (resp->status == 401 && !authorized_fresh) {
      std::string challenge = resp->header("www-authenticate");
      if (challenge.empty()) return resp;
      CAIRN_ASSIGN_OR_RETURN(std::string auth, authorize(endpoint, scope, challenge));
      {
        std::lock_guard lock(mu_);
        auth_cache_[cache_key] = auth;
      }
      authorized_fresh = true;
      --attempt;  // an auth round trip is not a failed attempt
      continue;
    }
    if (isRetryableStatus(resp->status) && !last) {
      spdlog::debug("{} {}: HTTP {}, retrying", request.method, request.url, resp->status);
      {
        std::lock_guard lock(mu_);
        ++retries_;
      }
      backoff(attempt);
      continue;
    }
    return resp;
  }
}

Result<FetchedManifest> RegistryClient::getManifest(const oci::Reference& ref) {
  Status last_error = notFound("no endpoint for " + ref.str());
  for (const Endpoint& ep : endpointsFor(ref, /*pull=*/true)) {
    HttpRequest req;
    req.url = v2Url(ep.base_url, ref, "manifests/" + ref.manifestReference());
    req.headers.push_back(std::string("Accept: ") + kManifestAccept);
    auto resp = send(ep, pullScope(ref), req);
    std::string what = "GET manifest " + ref.familiar() + " from " + ep.base_url;
    Status failure;
    if (!resp.ok()) {
      failure = resp.status().withContext(what);
    } else if (resp->status != 200) {
      failure = statusFromHttp(what, resp->status, resp->body);
    } else if (resp->body.size() > oci::kMaxManifestSize) {
      failure = resourceExhausted(what + ": manifest larger than 4 MiB");
    } else {
      FetchedManifest out;
      out.bytes = std::move(resp->body);
      out.endpoint = ep.base_url;
      auto kind = oci::detectManifestKind(out.bytes, resp->header("content-type"));
      if (!kind.ok()) return kind.status().withContext(what);
      std::string media_type;
      if (auto j = parseJson(out.bytes);
          j.ok() && j->contains("mediaType") && (*j)["mediaType"].is_string()) {
        media_type = (*j)["mediaType"].get<std::string>();
      }
      if (media_type.empty()) {
        std::string ct = resp->header("content-type");
        media_type = std::string(trimSpace(std::string_view(ct).substr(0, ct.find(';'))));
      }
      if (media_type.empty() ||
          (!oci::isManifestMediaType(media_type) && !oci::isIndexMediaType(media_type))) {
        media_type = *kind == oci::ManifestKind::kIndex ? std::string(oci::kMediaTypeOciIndex)
                                                        : std::string(oci::kMediaTypeOciManifest);
      }
      out.descriptor = oci::describe(media_type, out.bytes);
      if (!ref.digest().empty() && out.descriptor.digest != ref.digest()) {
        failure = invalidArgument(what + ": content hashes to " + out.descriptor.digest.str() +
                                  ", not the requested " + ref.digest().str());
      } else {
        return out;
      }
    }
    if (ep.mirror) {
      spdlog::info("mirror {} failed ({}); trying the next endpoint", ep.base_url,
                   failure.message());
    }
    last_error = failure;
  }
  return last_error;
}

Status RegistryClient::getBlob(const oci::Reference& repo, const oci::Descriptor& blob,
                               const std::function<Status(std::string_view)>& sink,
                               bool sink_verifies_digest) {
  const std::uint64_t size = static_cast<std::uint64_t>(blob.size);
  Status last_error = notFound("no endpoint for " + repo.str());
  for (const Endpoint& ep : endpointsFor(repo, /*pull=*/true)) {
    std::string what =
        "GET blob " + blob.digest.str() + " of " + repo.name() + " from " + ep.base_url;
    Sha256 sha;
    std::uint64_t received = 0;
    Status failure;
    bool delivered_any = false;
    bool sink_failed = false;
    for (int attempt = 0; attempt < config_.max_attempts; ++attempt) {
      HttpRequest req;
      req.url = v2Url(ep.base_url, repo, "blobs/" + blob.digest.str());
      const std::uint64_t start = received;
      if (start > 0) req.headers.push_back("Range: bytes=" + std::to_string(start) + "-");
      std::uint64_t skip = 0;
      bool first = true;
      req.on_data = [&](long status, std::string_view data) -> Status {
        if (first) {
          first = false;
          // A server that ignores Range resends from byte 0: skip what we already have.
          if (start > 0 && status == 200) skip = start;
        }
        if (skip > 0) {
          std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(skip, data.size()));
          skip -= n;
          data.remove_prefix(n);
          if (data.empty()) return okStatus();
        }
        if (received + data.size() > size) {
          sink_failed = true;
          return invalidArgument(what + ": more than the descriptor's " + std::to_string(size) +
                                 " bytes");
        }
        if (!sink_verifies_digest) sha.update(data);
        received += data.size();
        delivered_any = true;
        Status s = sink(data);
        if (!s.ok()) sink_failed = true;
        return s;
      };
      auto resp = send(ep, pullScope(repo), req, /*retry_transport=*/false);
      if (!resp.ok()) {
        failure = resp.status().withContext(what);
        if (sink_failed || !threadSession().lastErrorRetryable()) break;
        {
          std::lock_guard lock(mu_);
          if (received > start) ++resumes_;
          ++retries_;
        }
        backoff(attempt);
        continue;
      }
      if (resp->status != 200 && resp->status != 206) {
        failure = statusFromHttp(what, resp->status, resp->body);
        break;
      }
      if (received < size) {
        // The connection closed early without an error (some proxies do): resume.
        failure = unavailable(what + ": connection closed after " + std::to_string(received) +
                              " of " + std::to_string(size) + " bytes");
        std::lock_guard lock(mu_);
        ++resumes_;
        continue;
      }
      failure = okStatus();
      break;
    }
    if (failure.ok()) {
      if (sink_verifies_digest) return okStatus();
      Digest got = *Digest::fromSha256Hex(hexEncode(sha.finish()));
      if (got != blob.digest) {
        return invalidArgument(what + ": content hashes to " + got.str() + ", not " +
                               blob.digest.str());
      }
      return okStatus();
    }
    if (sink_failed) return failure;
    // Bytes already delivered to the sink cannot be taken back: a mirror that fails half-way
    // is not retried against the origin.
    if (delivered_any) return failure;
    if (ep.mirror)
      spdlog::info("mirror {} failed ({}); trying the next", ep.base_url, failure.message());
    last_error = failure;
  }
  return last_error;
}

Result<bool> RegistryClient::blobExists(const oci::Reference& repo, const Digest& digest) {
  Endpoint ep = originFor(repo);
  HttpRequest req;
  req.method = "HEAD";
  req.url = v2Url(ep.base_url, repo, "blobs/" + digest.str());
  CAIRN_ASSIGN_OR_RETURN(HttpResponse resp, send(ep, pushScope(repo), req));
  if (resp.status == 200) return true;
  if (resp.status == 404) return false;
  return statusFromHttp("HEAD blob " + digest.str() + " in " + repo.name(), resp.status, resp.body);
}

Result<BlobPushOutcome> RegistryClient::pushBlob(const oci::Reference& repo,
                                                 const oci::Descriptor& blob,
                                                 const store::BlobReader& blobs,
                                                 const BlobPushOptions& options) {
  CAIRN_ASSIGN_OR_RETURN(bool exists, blobExists(repo, blob.digest));
  if (exists) return BlobPushOutcome::kExisted;
  Endpoint ep = originFor(repo);
  const std::string scope = pushScope(repo);
  const std::string what = "push blob " + blob.digest.str() + " to " + repo.name();

  HttpRequest start;
  start.method = "POST";
  start.url = v2Url(ep.base_url, repo, "blobs/uploads/");
  std::string start_scope = scope;
  if (!options.mount_from.empty() && options.mount_from != repo.path()) {
    start.url +=
        "?mount=" + urlEncode(blob.digest.str()) + "&from=" + urlEncode(options.mount_from);
    // Mounting needs pull access to the source repository too.
    start_scope += " repository:" + options.mount_from + ":pull";
  }
  CAIRN_ASSIGN_OR_RETURN(HttpResponse started, send(ep, start_scope, start));
  if (started.status == 201) return BlobPushOutcome::kMounted;
  if (started.status != 202)
    return statusFromHttp(what + ": start upload", started.status, started.body);
  std::string location = started.header("location");
  if (location.empty()) return invalidArgument(what + ": upload started without a Location");
  location = resolveUrl(start.url, location);

  CAIRN_ASSIGN_OR_RETURN(auto stream, blobs.openRead(blob.digest));
  const std::uint64_t size = stream->size();
  if (size != static_cast<std::uint64_t>(blob.size)) {
    return invalidArgument(what + ": the store has " + std::to_string(size) +
                           " bytes, the descriptor says " + std::to_string(blob.size));
  }
  auto withDigest = [&](const std::string& url) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") +
           "digest=" + urlEncode(blob.digest.str());
  };

  const std::uint64_t chunk = options.chunk_size == 0 ? size : options.chunk_size;
  std::uint64_t offset = 0;
  if (options.chunk_size != 0 && size > 0) {
    while (offset < size) {
      std::uint64_t len = std::min(chunk, size - offset);
      HttpRequest patch;
      patch.method = "PATCH";
      patch.url = location;
      patch.headers = {
          "Content-Type: application/octet-stream",
          "Content-Range: " + std::to_string(offset) + "-" + std::to_string(offset + len - 1)};
      std::uint64_t pos = 0;
      patch.body_size = len;
      patch.body_reader = [&, base = offset](char* buf, std::size_t n) -> Result<std::size_t> {
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n, len - pos));
        if (want == 0) return std::size_t{0};
        CAIRN_ASSIGN_OR_RETURN(std::size_t got, stream->readAt(base + pos, buf, want));
        pos += got;
        return got;
      };
      patch.rewind_body = [&]() {
        pos = 0;
        return okStatus();
      };
      CAIRN_ASSIGN_OR_RETURN(HttpResponse resp, send(ep, scope, patch));
      if (resp.status != 202) return statusFromHttp(what + ": PATCH chunk", resp.status, resp.body);
      std::string next = resp.header("location");
      if (!next.empty()) location = resolveUrl(location, next);
      offset += len;
    }
    HttpRequest put;
    put.method = "PUT";
    put.url = withDigest(location);
    put.headers = {"Content-Type: application/octet-stream"};
    put.body_size = 0;
    CAIRN_ASSIGN_OR_RETURN(HttpResponse resp, send(ep, scope, put));
    if (resp.status != 201) return statusFromHttp(what + ": closing PUT", resp.status, resp.body);
    return BlobPushOutcome::kUploaded;
  }

  HttpRequest put;
  put.method = "PUT";
  put.url = withDigest(location);
  put.headers = {"Content-Type: application/octet-stream"};
  put.body_size = size;
  put.body_reader = [&](char* buf, std::size_t n) -> Result<std::size_t> {
    return stream->read(buf, n);
  };
  put.rewind_body = [&]() { return stream->seek(0); };
  CAIRN_ASSIGN_OR_RETURN(HttpResponse resp, send(ep, scope, put));
  if (resp.status != 201) return statusFromHttp(what + ": PUT", resp.status, resp.body);
  return BlobPushOutcome::kUploaded;
}

Result<oci::Descriptor> RegistryClient::putManifest(const oci::Reference& repo,
                                                    std::string_view reference,
                                                    std::string_view media_type,
                                                    std::string_view bytes) {
  Endpoint ep = originFor(repo);
  HttpRequest req;
  req.method = "PUT";
  req.url = v2Url(ep.base_url, repo, "manifests/" + std::string(reference));
  req.headers = {"Content-Type: " + std::string(media_type)};
  req.body = std::string(bytes);
  CAIRN_ASSIGN_OR_RETURN(HttpResponse resp, send(ep, pushScope(repo), req));
  std::string what = "PUT manifest " + repo.name() + ":" + std::string(reference);
  if (resp.status != 201 && resp.status != 200) {
    return statusFromHttp(what, resp.status, resp.body);
  }
  oci::Descriptor d = oci::describe(media_type, bytes);
  std::string reported = resp.header("docker-content-digest");
  if (!reported.empty() && reported != d.digest.str()) {
    return internalError(what + ": registry reports digest " + reported + ", we sent " +
                         d.digest.str());
  }
  return d;
}

}  // namespace cairn::registry
