// Uploads build contexts to the S3-compatible store behind push access (spec §2.6): for each
// context entry of an Image, in order, hash it (§2.5), skip it if
// <organizationId>/<hash>/context.tar already exists, otherwise stream its ustar archive
// (§2.4) there with PutObject or a multipart upload. The hashes become the build's
// contextHashes.
//
//   cairn::Daytona daytona;
//   std::vector<std::string> hashes = daytona.objectStorage.uploadContext(image);
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cairn/image/image.h"
#include "cairn/sdk/api.h"
#include "cairn/sdk/deadline.h"

namespace cairn {

class ObjectStorage {
 public:
  explicit ObjectStorage(ObjectStorageApi api);
  ObjectStorage(const ObjectStorage& other);

  //! Uploads every context entry of `image`; returns their hashes in contextList order
  //! (duplicates kept). Asks for push access once, and not at all when the list is empty.
  //! Throws DaytonaNotFoundError "Path does not exist: <path>" for a missing source, the API's
  //! errors for push access, DaytonaError naming the key for an S3 failure.
  std::vector<std::string> uploadContext(const Image& image,
                                         const sdk::Deadline& deadline = sdk::Deadline::none());
  std::vector<std::string> upload(const std::vector<ContextEntry>& entries,
                                  const sdk::Deadline& deadline = sdk::Deadline::none());
  //! One entry with credentials already at hand; returns its hash.
  std::string upload(const StorageAccess& access, const ContextEntry& entry,
                     const sdk::Deadline& deadline = sdk::Deadline::none());

  //! What the last upload() call finished did, for progress output and tests.
  struct Stats {
    int uploaded = 0;
    int skipped = 0;  // already present
    int multipart = 0;
  };
  Stats lastStats() const;

 private:
  void setStats(const Stats& stats);
  std::string uploadOne(const StorageAccess& access, const ContextEntry& entry,
                        const sdk::Deadline& deadline, Stats* stats);

  ObjectStorageApi api_;
  mutable std::mutex mu_;
  Stats stats_;
};

}  // namespace cairn
