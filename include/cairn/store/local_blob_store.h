// The blob store on the local filesystem (containerd's plugins/content/local):
//
//   <root>/blobs/sha256/<hex>   committed blobs, read-only (0444), immutable
//   <root>/blobs/layer-tars/<hex>  blobs made on read: the uncompressed tar of an unpacked layer
//                               directory under <root> (putLayerTar); JSON {"size", "dirs"}
//   <root>/ingest/<random>      partial writes; commit = fsync → size/digest check → rename
//   <root>/quarantine/<hex>     corrupt blobs moved aside by fsck(kQuarantine)
//
// A layer-tar blob is what a build leaves for each layer of the image it made ("compressed
// lazily"): the layer directory is already on disk for overlay, so the store keeps only a note
// of where its tar comes from, and openRead writes the tar into an unlinked temporary file,
// checks its size and digest, and returns a stream on it. Exports and pushes read it once and
// compress; nothing else reads layer blobs of a local build. A layer-tar blob lists every
// directory it was published from (the same diff id can sit on several parents) and is
// readable while one of them exists; walk, remove and the GC treat it like any blob.
//
// The note, <root>/blobs/layer-tars/<hex>, mode 0444:
//   {"size": <tar bytes>, "dirs": ["layers/<chain-id>/fs", …]}   (dirs relative to <root>)
// Locking rule: every change of a note — putLayerTar's read → merge (set union of the dirs,
// dropping dirs that no longer exist) → write a temporary file → rename, remove()'s unlink,
// fsck's removal of a broken note — holds an exclusive flock on
// <root>/blobs/layer-tars/.lock-<first hex digit of the digest> (16 lock files, created on first
// use and never removed, since removing a lock file others may have open breaks it). Without it two
// processes publishing one diff id from different dirs could each read the old note and the last
// rename would drop the other's dir, leaving the blob to die with the remaining dir. Readers take
// no lock: a note is replaced by rename, so they see the old or the new one whole, and they make
// the tar from the first dir that still exists and gives the digest, falling back to the next ones.
//
// `root` is Cairn's data directory. Several LocalBlobStore objects (and processes) may share one
// root: rename() is atomic, so concurrent writers of the same content all succeed and leave
// one file, and a reader sees a blob whole or not at all.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <vector>

#include "cairn/common/fs.h"
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
  //! Records `dir` as a source of `digest` when it is under root() (no bytes are copied);
  //! writes the tar now otherwise. A blob already committed under `digest` is returned as is.
  Result<BlobInfo> putLayerTar(const std::filesystem::path& dir, const Digest& digest,
                               std::uint64_t size) override;
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
  //! The layer-tar note of `digest` (NotFound if there is none).
  struct LayerTarNote {
    std::uint64_t size = 0;
    std::vector<std::filesystem::path> dirs;  //!< absolute
    SystemTime written_at{};
  };
  Result<LayerTarNote> readNote(const Digest& digest) const;
  //! Takes the exclusive flock every change of `digest`'s note holds (see the file comment);
  //! released when the returned fd closes.
  Result<UniqueFd> lockNote(const Digest& digest) const;
  //! The first of the note's dirs that still exists; NotFound when none does.
  Result<std::filesystem::path> noteSource(const Digest& digest, const LayerTarNote& note) const;
  //! materialize() from the note's dirs in order, falling back to the next one when a dir is
  //! gone or its tar fails or no longer matches; NotFound when no dir is left.
  Result<UniqueFd> materializeAny(const Digest& digest, const LayerTarNote& note) const;
  //! Calls `fn` with the digest of every layer-tar note.
  Status walkNotes(const std::function<Status(const Digest&)>& fn) const;
  //! Writes the tar of `dir` into an unlinked file and checks it against `digest` and `size`.
  Result<UniqueFd> materialize(const Digest& digest, const std::filesystem::path& dir,
                               std::uint64_t size) const;

  std::filesystem::path blobs_dir_;
  std::filesystem::path layer_tars_dir_;
  std::filesystem::path ingest_dir_;
};

}  // namespace cairn::store
