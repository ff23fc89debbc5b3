// The blob store on the local filesystem (containerd's plugins/content/local):
//
//   <root>/blobs/sha256/<hex>   committed blobs, read-only (0444), immutable
//   <root>/ingest/<random>      partial writes; commit = fsync → size/digest check → rename
//   <root>/quarantine/<hex>     corrupt blobs moved aside by fsck(kQuarantine)
//
// `root` is Cairn's data directory. Several LocalBlobStore objects (and processes) may share one
// root: rename() is atomic, so concurrent writers of the same content all succeed and leave
// one file, and a reader sees a blob whole or not at all.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>

#include "cairn/store/blob_store.h"

namespace cairn::store {

class LocalBlobStore final : public BlobStore {
 public:
  //! Creates <root>/blobs/sha256 and <root>/ingest if missing.
  static Result<std::unique_ptr<LocalBlobStore>> open(const std::filesystem::path& root);

  Result<BlobInfo> info(const Digest& digest) const override;
  bool exists(const Digest& digest) const override;
  Result<std::unique_ptr<BlobReadStream>> openRead(const Digest& digest) const override;
  Result<std::unique_ptr<BlobWriter>> writer() override;
  Status walk(const std::function<Status(const BlobInfo&)>& fn) const override;
  Status remove(const Digest& digest) override;

  //! Where a committed blob lives (whether or not it exists). Read-only use: hardlink,
  //! reflink or open it, never write to it.
  std::filesystem::path blobPath(const Digest& digest) const;
  const std::filesystem::path& root() const { return root_; }

  enum class FsckMode {
    kReport,      //!< only report corrupt blobs
    kQuarantine,  //!< also move them to <root>/quarantine/<hex>, out of the store
  };
  //! Re-hashes every committed blob; also reports files in blobs/sha256 whose names are not
  //! digests. Corruption is reported, not returned as an error; an error means fsck itself
  //! could not run.
  Result<FsckReport> fsck(FsckMode mode = FsckMode::kReport);

  //! Removes ingest files not modified for `older_than` (writers of crashed processes). Returns
  //! how many were removed. Live writers keep touching their files, so a generous age (an hour)
  //! never hits one.
  Result<std::size_t> cleanIngest(std::chrono::seconds older_than);

 private:
  explicit LocalBlobStore(std::filesystem::path root);
  std::filesystem::path root_;
  std::filesystem::path blobs_dir_;
  std::filesystem::path ingest_dir_;
};

}  // namespace cairn::store
