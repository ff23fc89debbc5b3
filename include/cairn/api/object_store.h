// The object store behind the S3-compatible endpoint: a seam (ObjectStore) with one real
// implementation on the local filesystem (FsObjectStore) and the S3 HTTP layer on top (s3.h).
//
// Keys are validated (1..1024 bytes, no control characters) and never joined to paths as they
// are: each '/'-separated segment is escaped to [A-Za-z0-9_%-] and suffixed (".d" for
// directories, ".o" for objects), so "../x", "a/./b" or a NUL cannot leave the store's
// directory and "a/b" and "a/b/c" can both exist. Writes are durable (write to a temporary
// file, fsync, rename, fsync the directory); readers see an old object or the new one.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/common/status.h"
#include "cairn/common/time.h"

namespace cairn::api {

struct ObjectInfo {
  std::string key;
  std::uint64_t size = 0;
  std::string etag;  // without quotes: md5 hex, or "<md5 of part md5s>-<parts>" for multipart
  std::string checksum_crc32;  // base64 of the big-endian CRC-32 of the whole object
  std::string content_type;
  SystemTime last_modified{};
};

struct ObjectReader {
  ObjectInfo info;
  UniqueFd fd;  // positioned at the start of the object
};

struct ListResult {
  std::vector<ObjectInfo> objects;  // in key (byte) order
  bool truncated = false;
};

struct PartInfo {
  int part_number = 0;
  std::string etag;  // md5 hex, no quotes
  std::string checksum_crc32;
  std::uint64_t size = 0;
};

struct PutOptions {
  std::string content_type;
};

//! S3 bucket naming: 3..63 of [a-z0-9.-], starting and ending with a letter or digit.
Status validateBucketName(std::string_view bucket);
//! 1..1024 bytes, no control characters (including NUL).
Status validateObjectKey(std::string_view key);

//! Errors: NotFound for a missing object or upload (the caller knows which it asked for),
//! InvalidArgument for bad names, Internal/ResourceExhausted for I/O failures.
class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  virtual Result<ObjectInfo> put(std::string_view bucket, std::string_view key,
                                 std::string_view data, const PutOptions& options) = 0;
  virtual Result<ObjectReader> get(std::string_view bucket, std::string_view key) = 0;
  virtual Result<ObjectInfo> head(std::string_view bucket, std::string_view key) = 0;
  //! Keys starting with `prefix` and greater than `start_after`, at most max_keys of them.
  virtual Result<ListResult> list(std::string_view bucket, std::string_view prefix,
                                  std::size_t max_keys, std::string_view start_after) = 0;
  //! Deleting a missing key is not an error (S3 semantics).
  virtual Status remove(std::string_view bucket, std::string_view key) = 0;

  //! Returns the new upload id.
  virtual Result<std::string> createMultipart(std::string_view bucket, std::string_view key,
                                              const PutOptions& options) = 0;
  //! Parts may arrive in any order and concurrently; re-uploading a number replaces it.
  virtual Result<PartInfo> uploadPart(std::string_view bucket, std::string_view key,
                                      std::string_view upload_id, int part_number,
                                      std::string_view data) = 0;
  //! The parts uploaded so far, by part number.
  virtual Result<std::vector<PartInfo>> listParts(std::string_view bucket, std::string_view key,
                                                  std::string_view upload_id) = 0;
  //! Joins the given parts (ascending part numbers, each uploaded) into the object.
  virtual Result<ObjectInfo> completeMultipart(std::string_view bucket, std::string_view key,
                                               std::string_view upload_id,
                                               const std::vector<int>& part_numbers) = 0;
  virtual Status abortMultipart(std::string_view bucket, std::string_view key,
                                std::string_view upload_id) = 0;
};

//! A filesystem store under `root` (created if missing).
Result<std::unique_ptr<ObjectStore>> openFsObjectStore(const std::filesystem::path& root,
                                                       const Clock& clock = RealClock::instance());

}  // namespace cairn::api
