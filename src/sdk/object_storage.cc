#include "cairn/sdk/object_storage.h"

#include <utility>

#include "cairn/image/context.h"
#include "cairn/sdk/errors.h"
#include "cairn/sdk/s3_client.h"

namespace cairn {
namespace {

// An S3 or archive failure as an exception; timeouts stay recognisable as timeouts.
[[noreturn]] void throwUploadError(const Status& status, const std::string& what) {
  std::string message = what + ": " + status.message();
  switch (status.code()) {
    case StatusCode::kDeadlineExceeded:
      throw DaytonaConnectionTimeoutError(message);
    case StatusCode::kUnavailable:
      throw DaytonaConnectionError(message);
    case StatusCode::kNotFound:
      throw DaytonaNotFoundError(status.message());
    default:
      throw DaytonaError(message);
  }
}

}  // namespace

ObjectStorage::ObjectStorage(ObjectStorageApi api) : api_(std::move(api)) {}

ObjectStorage::ObjectStorage(const ObjectStorage& other) : api_(other.api_) {}

ObjectStorage::Stats ObjectStorage::lastStats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void ObjectStorage::setStats(const Stats& stats) {
  std::lock_guard lock(mu_);
  stats_ = stats;
}

std::vector<std::string> ObjectStorage::uploadContext(const Image& image,
                                                      const sdk::Deadline& deadline) {
  return upload(image.contextList(), deadline);
}

std::vector<std::string> ObjectStorage::upload(const std::vector<ContextEntry>& entries,
                                               const sdk::Deadline& deadline) {
  std::vector<std::string> hashes;
  if (entries.empty()) {
    setStats({});
    return hashes;
  }
  StorageAccess access = api_.getPushAccess(deadline.remaining());
  Stats total;
  for (const ContextEntry& entry : entries) {
    Stats one;
    hashes.push_back(uploadOne(access, entry, deadline, &one));
    total.uploaded += one.uploaded;
    total.skipped += one.skipped;
    total.multipart += one.multipart;
  }
  setStats(total);
  return hashes;
}

std::string ObjectStorage::upload(const StorageAccess& access, const ContextEntry& entry,
                                  const sdk::Deadline& deadline) {
  Stats one;
  std::string hash = uploadOne(access, entry, deadline, &one);
  setStats(one);
  return hash;
}

std::string ObjectStorage::uploadOne(const StorageAccess& access, const ContextEntry& entry,
                                     const sdk::Deadline& deadline, Stats* stats) {
  Result<std::string> hash = contextHash(entry);
  if (!hash.ok()) {
    if (hash.status().code() == StatusCode::kNotFound) {
      throw DaytonaNotFoundError(hash.status().message());
    }
    throwUploadError(hash.status(), "hashing context " + entry.sourcePath);
  }
  const std::string prefix = access.organizationId + "/" + *hash + "/";
  const std::string key = prefix + "context.tar";
  sdk::S3Client s3(access, api_.connection().http);

  Result<bool> exists = s3.prefixExists(prefix, deadline);
  if (!exists.ok()) throwUploadError(exists.status(), "checking " + key);
  if (*exists) {
    stats->skipped = 1;
    return *hash;
  }
  Result<std::uint64_t> size = contextArchiveSize(entry);
  if (!size.ok()) {
    if (size.status().code() == StatusCode::kNotFound) {
      throw DaytonaNotFoundError(size.status().message());
    }
    throwUploadError(size.status(), "archiving context " + entry.sourcePath);
  }
  Status st = s3.upload(
      key, *size,
      [&entry](const sdk::ChunkSink& sink) {
        return writeContextArchive(entry, [&sink](std::string_view chunk) { return sink(chunk); });
      },
      deadline);
  if (!st.ok()) throwUploadError(st, "uploading context " + entry.sourcePath + " to " + key);
  stats->uploaded = 1;
  stats->multipart = s3.lastUpload().parts > 0 ? 1 : 0;
  return *hash;
}

}  // namespace cairn
