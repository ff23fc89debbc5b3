// The OCI distribution API client (distribution-spec v1.1) over libcurl: manifests and blobs
// down, blobs (monolithic or chunked, or mounted from another repository) and manifests up.
//
// Every request goes through one path that handles auth and retries: a 401 with a
// `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge gets a token from the realm
// (anonymously, or with the host's credentials), `Basic` gets the credentials; tokens are
// cached per registry and scope. 5xx, 429 and connection resets are retried with exponential
// backoff; a broken blob download resumes with `Range`. Pulls try the host's mirrors first
// and fall back to the origin. Thread-safe: each thread uses its own connection.
//
//   RegistryClient client(config);
//   CAIRN_ASSIGN_OR_RETURN(auto m, client.getManifest(*oci::Reference::parse("busybox")));
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "cairn/common/status.h"
#include "cairn/oci/image.h"
#include "cairn/oci/reference.h"
#include "cairn/registry/config.h"
#include "cairn/store/blob_store.h"

namespace cairn::registry {

struct HttpRequest;
struct HttpResponse;

//! The Accept header of manifest GETs: OCI and Docker manifests and indexes.
extern const char* const kManifestAccept;

struct FetchedManifest {
  std::string bytes;
  oci::Descriptor descriptor;  //!< media type, digest of `bytes`, size
  std::string endpoint;        //!< base URL it came from (a mirror or the origin)
};

struct BlobPushOptions {
  //! 0: one monolithic PUT; otherwise PATCH chunks of this size, then a closing PUT.
  std::uint64_t chunk_size = 0;
  //! A repository path on the same registry to mount the blob from (cross-repo mount), tried
  //! before uploading.
  std::string mount_from;
};

enum class BlobPushOutcome { kExisted, kMounted, kUploaded };

class RegistryClient {
 public:
  explicit RegistryClient(RegistryConfig config);
  ~RegistryClient();

  const RegistryConfig& config() const { return config_; }

  //! GET of a manifest or index by tag or digest. When the reference has a digest, the bytes
  //! are verified against it. NotFound when no endpoint has it.
  Result<FetchedManifest> getManifest(const oci::Reference& ref);

  //! Streams a blob to `sink`, verifying size and digest at the end (so the sink must treat
  //! data as provisional until this returns OK). Resumes with Range after a broken connection;
  //! if the server ignores Range, the bytes already delivered are skipped. With
  //! `sink_verifies_digest` the sha256 is left to the sink (a blob store writer's commit
  //! checks it anyway): one hash pass over the blob instead of two; the size is still checked.
  Status getBlob(const oci::Reference& repo, const oci::Descriptor& blob,
                 const std::function<Status(std::string_view)>& sink,
                 bool sink_verifies_digest = false);

  Result<bool> blobExists(const oci::Reference& repo, const Digest& digest);

  //! Uploads `blob` from the store unless the registry has it already.
  Result<BlobPushOutcome> pushBlob(const oci::Reference& repo, const oci::Descriptor& blob,
                                   const store::BlobReader& blobs,
                                   const BlobPushOptions& options = {});

  //! PUT of a manifest under `reference` (a tag, or the digest). Returns its descriptor.
  Result<oci::Descriptor> putManifest(const oci::Reference& repo, std::string_view reference,
                                      std::string_view media_type, std::string_view bytes);

  //! How many requests were retried (5xx, 429, resets) and resumed (Range), for tests/logs.
  std::uint64_t retries() const;
  std::uint64_t resumes() const;

 private:
  struct Endpoint {
    std::string base_url;  //!< "https://registry-1.docker.io"
    std::string host;      //!< the key for TLS settings and credentials
    bool mirror = false;
  };
  std::vector<Endpoint> endpointsFor(const oci::Reference& ref, bool pull) const;
  Endpoint originFor(const oci::Reference& ref) const;
  //! Performs `request` against `endpoint` with auth and retries. `scope` is the token scope
  //! ("repository:library/busybox:pull"). With retry_transport false, a transport failure is
  //! returned at once (the caller resumes).
  Result<HttpResponse> send(const Endpoint& endpoint, const std::string& scope,
                            HttpRequest& request, bool retry_transport = true);
  Result<std::string> authorize(const Endpoint& endpoint, const std::string& scope,
                                const std::string& challenge);
  void backoff(int attempt) const;

  RegistryConfig config_;
  mutable std::mutex mu_;
  std::map<std::string, std::string> auth_cache_;  //!< base_url + " " + scope → header value
  std::uint64_t retries_ = 0;
  std::uint64_t resumes_ = 0;
};

//! A Status for a registry's non-2xx reply: the code from the HTTP status (404 NotFound, 401
//! Unauthenticated, 403 PermissionDenied, 429 ResourceExhausted, 5xx Unavailable, other 4xx
//! InvalidArgument), with the request and the registry's error codes/messages.
Status statusFromHttp(std::string_view what, long http_status, std::string_view body);

//! Parses a WWW-Authenticate header: the scheme ("bearer", lowercased) and its parameters.
struct Challenge {
  std::string scheme;
  std::map<std::string, std::string> params;
};
Result<Challenge> parseChallenge(std::string_view header);

}  // namespace cairn::registry
