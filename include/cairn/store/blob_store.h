// The content-addressed blob store, as small role interfaces (containerd's content.Store):
//
//   BlobReader    info / exists / open a read stream / read a whole small blob with a size cap
//   BlobIngester  a BlobWriter that commits under the content's digest after verifying it
//   BlobManager   list / walk / remove
//   BlobStore     all three; LocalBlobStore (files under <data>/blobs) is the real one,
//                 MemoryBlobStore the test double, and an S3-backed store can follow later.
//
// Blobs are immutable and named only by their sha256. Readers never see a partial blob: a
// blob becomes visible at its digest when a writer commits it, complete and verified.
//
//   ASSIGN_OR_RETURN(auto w, store.writer());
//   RETURN_IF_ERROR(w->write(chunk));            // any number of times
//   ASSIGN_OR_RETURN(BlobInfo info, w->commit(size, digest));  // verifies both
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/digest.h"
#include "cairn/common/status.h"
#include "cairn/common/time.h"

namespace cairn::store {

//! What the store knows about one committed blob.
struct BlobInfo {
  Digest digest;
  std::uint64_t size = 0;
  //! When the blob was committed (the file's mtime in the local store).
  SystemTime committed_at{};
};

//! A sequential and positional reader of one committed blob. Not thread-safe; open one per
//! thread. The blob cannot change under it (blobs are immutable; a removed blob stays readable
//! through streams already open, as an unlinked file does).
class BlobReadStream {
 public:
  virtual ~BlobReadStream() = default;
  //! Total size of the blob.
  virtual std::uint64_t size() const = 0;
  //! Reads up to `n` bytes at the current position and advances it; 0 means end of blob.
  virtual Result<std::size_t> read(void* buf, std::size_t n) = 0;
  //! Reads up to `n` bytes at `offset` without moving the position (HTTP Range, resume).
  virtual Result<std::size_t> readAt(std::uint64_t offset, void* buf, std::size_t n) = 0;
  //! Moves the position; past the end is InvalidArgument.
  virtual Status seek(std::uint64_t offset) = 0;
  //! A file descriptor open on the blob, or -1 if the store has none (then use read()). For
  //! sendfile/copy_file_range fast paths; the stream keeps ownership.
  virtual int fd() const { return -1; }
};

class BlobReader {
 public:
  virtual ~BlobReader() = default;
  //! NotFound if the blob is not committed.
  virtual Result<BlobInfo> info(const Digest& digest) const = 0;
  //! True if committed. I/O errors other than "absent" read as false.
  virtual bool exists(const Digest& digest) const { return info(digest).ok(); }
  //! NotFound if the blob is not committed.
  virtual Result<std::unique_ptr<BlobReadStream>> openRead(const Digest& digest) const = 0;
  //! The whole blob as bytes, for manifests and configs. A blob larger than `max_size` is
  //! ResourceExhausted naming both sizes, without reading it.
  virtual Result<std::string> readAll(const Digest& digest, std::uint64_t max_size) const;
};

//! Bytes on their way into the store. Not thread-safe. Destroying a writer that was neither
//! committed nor aborted aborts it.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  //! Appends bytes. After an error the writer is unusable; abort() it.
  virtual Status write(std::string_view data) = 0;
  //! Bytes written so far.
  virtual std::uint64_t offset() const = 0;
  //! Makes the bytes durable (fsync), checks them and publishes them under their digest.
  //! `expected_size`/`expected_digest`, when given, must match what was written: a mismatch is
  //! InvalidArgument naming both values and nothing is published. Committing a blob that is
  //! already present succeeds (the bytes are identical by construction) and leaves one copy, so
  //! concurrent writers of the same content all succeed. After commit the writer is spent.
  virtual Result<BlobInfo> commit(std::optional<std::uint64_t> expected_size = std::nullopt,
                                  std::optional<Digest> expected_digest = std::nullopt) = 0;
  //! Drops the partial data. Idempotent.
  virtual void abort() = 0;
};

class BlobIngester {
 public:
  virtual ~BlobIngester() = default;
  //! A new writer. Writers are independent: any number may be open at once, for the same or
  //! different content.
  virtual Result<std::unique_ptr<BlobWriter>> writer() = 0;
  //! Publishes the blob `digest` (`size` bytes): the uncompressed layer tar of directory `dir`
  //! as layer::createLayerTar(dir) writes it with default options (the caller got both values
  //! from such a pass). A store that can read `dir` again whenever the blob is read —
  //! LocalBlobStore, for a directory under its root that never changes, an unpacked layer —
  //! records only where the bytes come from and makes them when the blob is opened, so a build
  //! pays one hash pass per layer and no copy; the default writes the tar now. Readers see an
  //! ordinary blob either way. A tar that no longer hashes to `digest` when it is made is an
  //! error for the reader, never wrong bytes.
  virtual Result<BlobInfo> putLayerTar(const std::filesystem::path& dir, const Digest& digest,
                                       std::uint64_t size);
};

class BlobManager {
 public:
  virtual ~BlobManager() = default;
  //! Calls `fn` for each committed blob, in no particular order; a non-OK Status from `fn`
  //! stops the walk and is returned.
  virtual Status walk(const std::function<Status(const BlobInfo&)>& fn) const = 0;
  //! All committed blobs, sorted by digest.
  virtual Result<std::vector<BlobInfo>> list() const;
  //! Removes a committed blob. NotFound if absent. Streams already open keep working.
  virtual Status remove(const Digest& digest) = 0;
};

//! The whole store: what the service, the build engine and the registry client are handed.
class BlobStore : public BlobReader, public BlobIngester, public BlobManager {};

//! Writes `data` as one blob (commit verifies `expected_digest` if given).
Result<BlobInfo> writeBlob(BlobIngester& ingester, std::string_view data,
                           std::optional<Digest> expected_digest = std::nullopt);

//! Streams a whole file into the store.
Result<BlobInfo> writeBlobFromFd(BlobIngester& ingester, int fd,
                                 std::optional<Digest> expected_digest = std::nullopt);

//! What collectGarbage removed and kept.
struct GcReport {
  std::vector<Digest> removed;
  std::uint64_t removed_bytes = 0;
  std::uint64_t kept = 0;
};

//! Removes every committed blob that is not in `live`. Working out the live set (manifests →
//! configs and layers, snapshots → images) is the caller's business: it knows the references.
//! The caller must make sure no writer whose blob should survive commits during the sweep (a
//! blob committed after the walk started is kept: only blobs committed before `not_after` are
//! candidates).
Result<GcReport> collectGarbage(BlobStore& store, const std::vector<Digest>& live,
                                std::optional<SystemTime> not_after = std::nullopt);

//! A blob whose content no longer hashes to its name.
struct CorruptBlob {
  std::string name;     //!< the digest, or the stray file name that is not one
  std::string problem;  //!< "content hashes to sha256:…", "cannot read: …"
};

struct FsckReport {
  std::uint64_t checked = 0;
  std::uint64_t bytes = 0;
  std::vector<CorruptBlob> corrupt;
};

}  // namespace cairn::store
