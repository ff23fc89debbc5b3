// The S3-compatible endpoint for build contexts (spec §2.2): path-style
// <prefix>/<bucket>/<key>, SigV4 with session tokens, ListObjectsV2, PutObject (x-amz-checksum-
// crc32 verified), multipart uploads (parts in any order, concurrently), HeadObject, GetObject
// (streamed from the file), DeleteObject; S3 XML bodies for results and errors.
//
// Credentials come from an S3CredentialProvider; the embedded default is CredentialMinter,
// which the push-access endpoint (§2.1) asks for short-lived credentials scoped to "<orgId>/".
//
//   auto minter = std::make_shared<CredentialMinter>();
//   CAIRN_ASSIGN_OR_RETURN(auto store, openFsObjectStore(data_dir / "objects"));
//   CAIRN_RETURN_IF_ERROR(mountS3(router, S3Options{}, std::move(store), minter));
//   S3Credential c = minter->mint(org_id);  // → StorageAccessDto
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cairn/api/object_store.h"
#include "cairn/api/router.h"
#include "cairn/common/status.h"
#include "cairn/common/time.h"

namespace cairn::api {

struct S3Credential {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // required on requests when not empty
  SystemTime expires_at{};    // SystemTime{} = never
  //! Keys (and list prefixes) this credential may touch, e.g. "<orgId>/"; empty = all.
  std::string allowed_prefix;
};

class S3CredentialProvider {
 public:
  virtual ~S3CredentialProvider() = default;
  //! NotFound for an unknown access key. Expiry is checked by the caller.
  virtual Result<S3Credential> lookup(std::string_view access_key_id) = 0;
};

//! Mints random temporary credentials (like STS AssumeRole with an inline policy limited to
//! the organization's prefix) and remembers them in memory until they have been expired for a
//! while. Thread-safe.
class CredentialMinter final : public S3CredentialProvider {
 public:
  explicit CredentialMinter(const Clock& clock = RealClock::instance(),
                            std::chrono::seconds ttl = std::chrono::hours(1))
      : clock_(clock), ttl_(ttl) {}

  //! A fresh credential for "<org_id>/". org_id must be non-empty and contain no '/'.
  Result<S3Credential> mint(std::string_view org_id);
  //! Registers a fixed credential (an operator's, or a test's).
  void add(S3Credential credential);
  Result<S3Credential> lookup(std::string_view access_key_id) override;

 private:
  const Clock& clock_;
  std::chrono::seconds ttl_;
  std::mutex mu_;
  std::unordered_map<std::string, S3Credential> credentials_;
};

struct S3Options {
  //! Path prefix the endpoint is mounted under ("" = at the root).
  std::string prefix = "/s3";
  //! The region clients sign for (push access returns it).
  std::string region = "us-east-1";
  //! Buckets that exist; empty accepts any valid bucket name.
  std::vector<std::string> buckets = {"daytona-volume-builds"};
  //! Largest single PutObject and largest part (the SDK uses 5 MiB parts).
  std::size_t max_object_bytes = 64 * 1024 * 1024;
  std::chrono::seconds max_clock_skew = std::chrono::minutes(15);
  const Clock* clock = &RealClock::instance();
};

//! Adds the S3 routes to `router`.
Status mountS3(Router& router, S3Options options, std::shared_ptr<ObjectStore> store,
               std::shared_ptr<S3CredentialProvider> credentials);

//! base64 of the big-endian CRC-32 of `data`, as in x-amz-checksum-crc32.
std::string s3Crc32Base64(std::string_view data);

}  // namespace cairn::api
