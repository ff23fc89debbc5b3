// The object store behind the S3-compatible endpoint: a seam (ObjectStore) with two
// implementations and the S3 HTTP layer on top (s3.h):
//   - BlobObjectStore (what `cairn serve` uses): bodies are blobs in the content-addressed blob
//     store (<data>/blobs/sha256), so a context uploaded twice, or by two organizations, is
//     stored once; an SQLite index (<root>/index.db) maps bucket + key to digest, size, etag,
//     crc32, content type and time. Removing or overwriting a key only drops the index row: the
//     body goes when the store's GC (service/store_gc.h) finds nothing else using it.
//   - FsObjectStore: one file per object under <root>/buckets/<bucket>/objects. Kept as the
//     second implementation of the conformance tests and to read old data directories:
//     BlobObjectStore::open moves any objects it finds there into the blob store.
// Both stage multipart parts as files under <root>/buckets/<bucket>/uploads/<id> until complete.
//
// Keys are validated (1..1024 bytes, no control characters) and never joined to paths as they
// are: each '/'-separated segment is escaped to [A-Za-z0-9_%-] and suffixed (".d" for
// directories, ".o" for objects), so "../x", "a/./b" or a NUL cannot leave the store's
// directory and "a/b" and "a/b/c" can both exist. The blob-backed store never turns keys into
// paths but validates them the same way, so both accept exactly the same keys. Writes are durable
// (write to a temporary file, fsync, rename, fsync the directory); readers see an old object or the
// new one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/common/status.h"
#include "cairn/common/time.h"
#include "cairn/meta/meta_store.h"
#include "cairn/service/store_gc.h"
#include "cairn/store/blob_store.h"

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

//! The blob-backed store. It is also a GC root set: every indexed object keeps its body blob.
class BlobObjectStore : public ObjectStore, public service::BlobRootSet {
 public:
  //! `root` holds the index and the multipart staging (created if missing); bodies go to
  //! `blobs`, which must outlive the store. Objects an FsObjectStore left under `root` are
  //! moved into the blob store here (see the file comment).
  static Result<std::unique_ptr<BlobObjectStore>> open(const std::filesystem::path& root,
                                                       store::BlobStore& blobs,
                                                       const Clock& clock = RealClock::instance());

  //! Objects of `bucket` last written before `before`, in key order (for expiry).
  virtual Result<std::vector<ObjectInfo>> listModifiedBefore(std::string_view bucket,
                                                             SystemTime before) = 0;
  //! Removes the objects of `bucket` last written before `before` for which `keep` says no,
  //! and returns them. An object rewritten meanwhile (newer than `before`) stays: each removal
  //! checks the time again. Bodies go at the next blob GC.
  virtual Result<std::vector<ObjectInfo>> expire(
      std::string_view bucket, SystemTime before,
      const std::function<bool(const ObjectInfo&)>& keep) = 0;
  //! Aborts multipart uploads (any bucket) whose last part arrived before `before` (the staging
  //! directory's mtime: real time, not the store's Clock). Returns how many.
  virtual Result<std::size_t> abortUploadsIdleSince(SystemTime before) = 0;
};

//! Expires build contexts (`<orgId>/<hash>/context.tar`, spec §2.3) in `bucket` uploaded before
//! `before`, except those a pending or building snapshot of that organization still has to
//! fetch. A context used again after it expired is uploaded again by the SDK (it uploads what
//! the bucket does not list), so expiry costs at most one upload. Returns how many went.
Result<std::size_t> expireBuildContexts(BlobObjectStore& store, meta::MetaStore& meta,
                                        std::string_view bucket, SystemTime before);

//! Expires build contexts older than `ttl` every `interval` on a thread of its own (and aborts
//! multipart uploads idle that long), and calls
//! `after_expired` (the blob GC, which frees the bodies) when a pass removed any. The thread
//! stops, and is joined, on destruction.
class ContextExpiry {
 public:
  struct Options {
    std::string bucket;                       //!< the contexts bucket
    std::chrono::seconds ttl{7 * 24 * 3600};  //!< contexts uploaded longer ago expire
    std::chrono::seconds interval{3600};      //!< between passes (the first one too)
    const Clock* clock = &RealClock::instance();
    std::function<void()> after_expired;
  };
  ContextExpiry(BlobObjectStore& store, meta::MetaStore& meta, Options options);
  ~ContextExpiry();
  ContextExpiry(const ContextExpiry&) = delete;
  ContextExpiry& operator=(const ContextExpiry&) = delete;

  //! One pass now, on the caller's thread; returns how many contexts went.
  Result<std::size_t> runOnce();

 private:
  void loop();
  BlobObjectStore& store_;
  meta::MetaStore& meta_;
  Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace cairn::api
