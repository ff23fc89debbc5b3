// The part of S3 the SDK needs to upload build contexts (spec §2.2), path-style and SigV4-signed
// with the push-access session token: ListObjectsV2 (does a prefix exist?), PutObject for bodies
// up to 5 MiB, multipart upload with 5 242 880-byte parts above that. Every body carries
// x-amz-checksum-crc32 and x-amz-sdk-checksum-algorithm: CRC32, as SDK 0.218 sends them.
//
// Errors are Status values (this is inside the SDK); ObjectStorage turns them into exceptions.
// S3 error replies keep their XML Code and Message: "PUT …: 403 SignatureDoesNotMatch: …".
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "cairn/common/status.h"
#include "cairn/sdk/api.h"
#include "cairn/sdk/deadline.h"
#include "cairn/sdk/http_client.h"

namespace cairn::sdk {

inline constexpr std::size_t kMultipartPartSize = 5242880;
//! Parts uploaded concurrently, as @aws-sdk/lib-storage does.
inline constexpr int kMultipartConcurrency = 4;

//! Receives body bytes in order; a non-OK Status stops the producer.
using ChunkSink = std::function<Status(std::string_view chunk)>;
//! Writes the whole body to the sink it is given (e.g. writeContextArchive).
using BodyProducer = std::function<Status(const ChunkSink& sink)>;

//! base64 of the big-endian CRC-32/IEEE of `data` ("123456789" → "y/Q5Jg==").
std::string crc32Base64(std::string_view data);

class S3Client {
 public:
  S3Client(StorageAccess access, std::shared_ptr<HttpClient> http);

  //! ListObjectsV2 with max-keys=1: true when at least one object has this key prefix.
  Result<bool> prefixExists(std::string_view prefix, const Deadline& deadline = Deadline::none());

  //! Uploads the `size` bytes that `produce` writes to `key`: one PutObject when they fit in one
  //! part (<= 5 MiB), otherwise a multipart upload with up to 4 parts in flight, aborted again if
  //! a part fails. Producing a different number of bytes than `size` is an error.
  Status upload(std::string_view key, std::uint64_t size, const BodyProducer& produce,
                const Deadline& deadline = Deadline::none());

  Status putObject(std::string_view key, std::string_view body,
                   const Deadline& deadline = Deadline::none());

  //! What the last upload() did, for callers that report it (and tests).
  struct Stats {
    int parts = 0;  // 0 = single PutObject
    std::size_t bytes = 0;
  };
  const Stats& lastUpload() const { return stats_; }

 private:
  Result<HttpResponse> call(std::string_view method, std::string_view key, std::string_view query,
                            HttpHeaders extra_headers, std::string_view body,
                            const Deadline& deadline);
  Result<std::string> uploadPart(std::string_view key, const std::string& upload_id, int number,
                                 std::string_view body, const Deadline& deadline,
                                 std::string* echoed_crc);

  StorageAccess access_;
  std::shared_ptr<HttpClient> http_;
  std::string base_;       // scheme://authority[/path] without a trailing '/'
  std::string host_;       // authority, the Host header
  std::string base_path_;  // path part of storageUrl, "" or "/x"
  Stats stats_;
};

}  // namespace cairn::sdk
