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

std::vector<std::string> ObjectStorage::uploadContext(const Image& image,
                                                      const sdk::Deadline& deadline) {
  return upload(image.contextList(), deadline);
}

std::vector<std::string> ObjectStorage::upload(const std::vector<ContextEntry>& entries,
                                               const sdk::Deadline& deadline) {
  stats_ = {};
  std::vector<std::string> hashes;
  if (entries.empty()) return hashes;
  StorageAccess access = api_.getPushAccess(deadline.remaining());
  Stats total;
  for (const ContextEntry& entry : entries) {
    hashes.push_back(upload(access, entry, deadline));
    total.uploaded += stats_.uploaded;
    total.skipped += stats_.skipped;
    total.multipart += stats_.multipart;
  }
  stats_ = total;
  return hashes;
}

std::string ObjectStorage::upload(const StorageAccess& access, const ContextEntry& entry,
                                  const sdk::Deadline& deadline) {
  stats_ = {};
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
    stats_.skipped = 1;
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
  stats_.uploaded = 1;
  stats_.multipart = s3.lastUpload().parts > 0 ? 1 : 0;
  return *hash;
}

}  // namespace cairn
