#include "cairn/store/local_blob_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "cairn/common/crypto.h"
#include "cairn/common/encoding.h"
#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/layer/diff.h"
#include "cairn/layer/stream.h"

namespace cairn::store {
namespace fs = std::filesystem;

namespace {

SystemTime mtimeOf(const struct stat& st) {
  return SystemTime(std::chrono::duration_cast<SystemTime::duration>(
      std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
}

Status mkdirs(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return errnoStatus(ec.value(), "create directory " + dir.string());
  return okStatus();
}

class LocalReadStream final : public BlobReadStream {
 public:
  LocalReadStream(UniqueFd fd, std::uint64_t size, std::string digest)
      : fd_(std::move(fd)), size_(size), digest_(std::move(digest)) {}

  std::uint64_t size() const override { return size_; }
  int fd() const override { return fd_.get(); }

  Result<std::size_t> read(void* buf, std::size_t n) override {
    CAIRN_ASSIGN_OR_RETURN(std::size_t got, readAt(pos_, buf, n));
    pos_ += got;
    return got;
  }

  Result<std::size_t> readAt(std::uint64_t offset, void* buf, std::size_t n) override {
    if (offset >= size_ || n == 0) return std::size_t{0};
    for (;;) {
      ssize_t got = ::pread(fd_.get(), buf, n, static_cast<off_t>(offset));
      if (got < 0) {
        if (errno == EINTR) continue;
        return errnoStatus(errno, "read blob " + digest_);
      }
      return static_cast<std::size_t>(got);
    }
  }

  Status seek(std::uint64_t offset) override {
    if (offset > size_) {
      return invalidArgument("seek to " + std::to_string(offset) + " past the end of blob " +
                             digest_ + " (" + std::to_string(size_) + " bytes)");
    }
    pos_ = offset;
    return okStatus();
  }

 private:
  UniqueFd fd_;
  std::uint64_t size_;
  std::uint64_t pos_ = 0;
  std::string digest_;
};

class LocalBlobWriter final : public BlobWriter {
 public:
  LocalBlobWriter(UniqueFd fd, fs::path tmp, fs::path blobs_dir)
      : fd_(std::move(fd)), tmp_(std::move(tmp)), blobs_dir_(std::move(blobs_dir)) {}
  ~LocalBlobWriter() override { abort(); }

  Status write(std::string_view data) override {
    if (!fd_.valid()) return failedPrecondition("blob writer already committed or aborted");
    if (Status s = writeAll(fd_.get(), data); !s.ok()) return s.withContext(tmp_.string());
    sha_.update(data);
    offset_ += data.size();
    return okStatus();
  }

  std::uint64_t offset() const override { return offset_; }

  Result<BlobInfo> commit(std::optional<std::uint64_t> expected_size,
                          std::optional<Digest> expected_digest) override {
    if (!fd_.valid()) return failedPrecondition("blob writer already committed or aborted");
    CAIRN_ASSIGN_OR_RETURN(Digest actual, Digest::fromSha256Hex(sha_.finishHex()));
    if (expected_size && *expected_size != offset_) {
      abort();
      return invalidArgument("blob size mismatch: expected " + std::to_string(*expected_size) +
                             " bytes, got " + std::to_string(offset_) + " bytes (content " +
                             actual.str() + ")");
    }
    if (expected_digest && *expected_digest != actual) {
      abort();
      return invalidArgument("blob digest mismatch: expected " + expected_digest->str() + ", got " +
                             actual.str());
    }
    fs::path final_path = blobs_dir_ / actual.hex();
    struct stat st {};
    if (::stat(final_path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        static_cast<std::uint64_t>(st.st_size) == offset_) {
      // Another writer got there first with the same bytes: one copy is enough.
      abort();
      return BlobInfo{actual, offset_, mtimeOf(st)};
    }
    if (::fchmod(fd_.get(), 0444) != 0) {
      Status s = errnoStatus(errno, "chmod " + tmp_.string());
      abort();
      return s;
    }
    if (::fsync(fd_.get()) != 0) {
      Status s = errnoStatus(errno, "fsync " + tmp_.string());
      abort();
      return s;
    }
    if (::fstat(fd_.get(), &st) != 0) {
      Status s = errnoStatus(errno, "stat " + tmp_.string());
      abort();
      return s;
    }
    fd_.reset();
    // rename() replaces atomically: if a concurrent writer renamed the same content in
    // between, readers see one complete copy or the other.
    if (::rename(tmp_.c_str(), final_path.c_str()) != 0) {
      Status s = errnoStatus(errno, "rename " + tmp_.string() + " to " + final_path.string());
      ::unlink(tmp_.c_str());
      return s;
    }
    tmp_.clear();
    CAIRN_RETURN_IF_ERROR(fsyncDir(blobs_dir_));
    return BlobInfo{actual, offset_, mtimeOf(st)};
  }

  void abort() override {
    if (fd_.valid()) fd_.reset();
    if (!tmp_.empty()) {
      ::unlink(tmp_.c_str());
      tmp_.clear();
    }
  }

 private:
  UniqueFd fd_;
  fs::path tmp_;
  fs::path blobs_dir_;
  Sha256 sha_;
  std::uint64_t offset_ = 0;
};

bool isSha256Hex(std::string_view name) {
  return Digest::fromSha256Hex(name).ok();
}

// The locks changes of layer-tar notes take (see the header): 16 lock files, chosen by the
// digest's first hex digit. Not one per note: a lock file cannot be removed safely while others
// may open it, so per-note lock files would pile up forever. Not one for all notes: a note
// update holds its lock across two fsyncs (≈ 10 ms here), and publishers of different layers
// should not queue behind each other.
std::string notesLockName(const Digest& digest) {
  return ".lock-" + digest.hex().substr(0, 1);
}

}  // namespace

LocalBlobStore::LocalBlobStore(fs::path root)
    : root_(std::move(root)),
      blobs_dir_(root_ / "blobs" / "sha256"),
      layer_tars_dir_(root_ / "blobs" / "layer-tars"),
      ingest_dir_(root_ / "ingest") {}

Result<std::unique_ptr<LocalBlobStore>> LocalBlobStore::open(const fs::path& root) {
  if (root.empty()) return invalidArgument("blob store root must not be empty");
  std::unique_ptr<LocalBlobStore> store(new LocalBlobStore(root));
  CAIRN_RETURN_IF_ERROR(mkdirs(store->blobs_dir_));
  CAIRN_RETURN_IF_ERROR(mkdirs(store->layer_tars_dir_));
  CAIRN_RETURN_IF_ERROR(mkdirs(store->ingest_dir_));
  return store;
}

fs::path LocalBlobStore::blobPath(const Digest& digest) const {
  return blobs_dir_ / digest.hex();
}

Result<BlobInfo> LocalBlobStore::info(const Digest& digest) const {
  if (digest.empty()) return invalidArgument("empty digest");
  fs::path p = blobPath(digest);
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) {
    if (errno != ENOENT) return errnoStatus(errno, "stat " + p.string());
    CAIRN_ASSIGN_OR_RETURN(LayerTarNote note, readNote(digest));
    CAIRN_RETURN_IF_ERROR(noteSource(digest, note).status());
    return BlobInfo{digest, note.size, note.written_at};
  }
  if (!S_ISREG(st.st_mode)) return internalError(p.string() + " is not a regular file");
  return BlobInfo{digest, static_cast<std::uint64_t>(st.st_size), mtimeOf(st)};
}

bool LocalBlobStore::exists(const Digest& digest) const {
  if (digest.empty()) return false;
  struct stat st {};
  if (::stat(blobPath(digest).c_str(), &st) == 0) return S_ISREG(st.st_mode);
  return info(digest).ok();
}

Result<std::unique_ptr<BlobReadStream>> LocalBlobStore::openRead(const Digest& digest) const {
  if (digest.empty()) return invalidArgument("empty digest");
  fs::path p = blobPath(digest);
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno != ENOENT) return errnoStatus(errno, "open " + p.string());
    CAIRN_ASSIGN_OR_RETURN(LayerTarNote note, readNote(digest));
    CAIRN_ASSIGN_OR_RETURN(UniqueFd tar, materializeAny(digest, note));
    return std::unique_ptr<BlobReadStream>(
        new LocalReadStream(std::move(tar), note.size, digest.str()));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errnoStatus(errno, "stat " + p.string());
  if (!S_ISREG(st.st_mode)) return internalError(p.string() + " is not a regular file");
  return std::unique_ptr<BlobReadStream>(
      new LocalReadStream(std::move(fd), static_cast<std::uint64_t>(st.st_size), digest.str()));
}

Result<UniqueFd> LocalBlobStore::lockNote(const Digest& digest) const {
  fs::path p = layer_tars_dir_ / notesLockName(digest);
  // A new open file description each time: flock excludes between descriptions, so this
  // serializes threads of one process as well as processes.
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd.valid()) return errnoStatus(errno, "open the layer-tar note lock " + p.string());
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return errnoStatus(errno, "lock " + p.string());
  }
  return fd;
}

Result<LocalBlobStore::LayerTarNote> LocalBlobStore::readNote(const Digest& digest) const {
  fs::path p = layer_tars_dir_ / digest.hex();
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT) return notFound("blob " + digest.str() + " not found");
    return errnoStatus(errno, "open " + p.string());
  }
  // Stat and content from the same open file: a writer may rename a new note over the name
  // at any time (readers take no lock).
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errnoStatus(errno, "stat " + p.string());
  CAIRN_ASSIGN_OR_RETURN(std::string text, cairn::readAll(fd.get(), p));
  auto bad = [&](std::string_view why) {
    return internalError("layer-tar note " + p.string() + ": " + std::string(why));
  };
  auto j = parseJson(text);
  if (!j.ok() || !j->is_object()) return bad("not a JSON object");
  auto size = j->find("size");
  auto dirs = j->find("dirs");
  if (size == j->end() || !size->is_number_unsigned()) return bad("no size");
  if (dirs == j->end() || !dirs->is_array()) return bad("no dirs");
  LayerTarNote note;
  note.size = size->get<std::uint64_t>();
  note.written_at = mtimeOf(st);
  for (const auto& d : *dirs) {
    if (!d.is_string()) return bad("a dir that is not a string");
    fs::path rel = d.get<std::string>();
    // Relative to the root, so a data directory that moves keeps its blobs.
    if (rel.empty() || rel.is_absolute() || *rel.begin() == "..")
      return bad("a dir outside the root");
    note.dirs.push_back(root_ / rel);
  }
  return note;
}

Result<fs::path> LocalBlobStore::noteSource(const Digest& digest, const LayerTarNote& note) const {
  for (const fs::path& dir : note.dirs) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return dir;
  }
  return notFound("blob " + digest.str() + " not found: the layer directories it is made from (" +
                  std::to_string(note.dirs.size()) + ") are gone");
}

Result<UniqueFd> LocalBlobStore::materializeAny(const Digest& digest,
                                                const LayerTarNote& note) const {
  // In the note's order; a dir that is gone, was removed while its tar was being made, or
  // changed is skipped for the next one, since any of them makes the same checked bytes.
  Status first_error;
  std::size_t failed = 0;
  for (const fs::path& dir : note.dirs) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    auto tar = materialize(digest, dir, note.size);
    if (tar.ok()) return tar;
    if (first_error.ok()) first_error = tar.status();
    ++failed;
  }
  // Every dir went while we read: absent, as a note whose dirs are all gone is.
  CAIRN_RETURN_IF_ERROR(noteSource(digest, note).status());
  if (first_error.ok()) return internalError("blob " + digest.str() + ": no tar was made");
  if (failed == 1) return first_error;
  return Status(first_error.code(), first_error.message() + " (and " + std::to_string(failed - 1) +
                                        " more of its " + std::to_string(note.dirs.size()) +
                                        " layer directories failed)");
}

Result<UniqueFd> LocalBlobStore::materialize(const Digest& digest, const fs::path& dir,
                                             std::uint64_t size) const {
  // An unlinked file: nothing to clean up after a crash, and the bytes go when the stream does.
  UniqueFd fd(::open(ingest_dir_.c_str(), O_RDWR | O_TMPFILE | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    if (errno != EOPNOTSUPP && errno != EISDIR) {
      return errnoStatus(errno, "create a temporary file in " + ingest_dir_.string());
    }
    fs::path tmp = ingest_dir_ / hexEncode(randomBytes(16));
    fd = UniqueFd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid()) return errnoStatus(errno, "create " + tmp.string());
    ::unlink(tmp.c_str());
  }
  layer::FdSink file(fd.get());
  layer::HashingSink hashed(&file);
  auto report = layer::createLayerTar(dir, hashed);
  if (!report.ok()) {
    return report.status().withContext("blob " + digest.str() + ": make the tar of " +
                                       dir.string());
  }
  Digest actual = hashed.digest();
  if (actual != digest || hashed.size() != size) {
    return internalError("blob " + digest.str() + ": the tar of " + dir.string() + " is now " +
                         actual.str() + " (" + std::to_string(hashed.size()) + " bytes, " +
                         std::to_string(size) + " expected): the directory changed");
  }
  return fd;
}

Result<BlobInfo> LocalBlobStore::putLayerTar(const fs::path& dir, const Digest& digest,
                                             std::uint64_t size) {
  if (digest.empty()) return invalidArgument("empty digest");
  struct stat st {};
  if (::stat(blobPath(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    // Committed already (pulled, or written by a store that cannot link): nothing to record.
    if (static_cast<std::uint64_t>(st.st_size) != size) {
      return invalidArgument("blob " + digest.str() + " has " + std::to_string(st.st_size) +
                             " bytes, not " + std::to_string(size));
    }
    return BlobInfo{digest, size, mtimeOf(st)};
  }
  std::error_code ec;
  fs::path abs = fs::absolute(dir, ec).lexically_normal();
  fs::path root = fs::absolute(root_, ec).lexically_normal();
  fs::path rel = abs.lexically_relative(root);
  if (ec || rel.empty() || *rel.begin() == ".." || *rel.begin() == ".") {
    // Not a directory this store answers for (a layer store opened on another root): the
    // bytes are written now, as a store that cannot link does.
    return BlobIngester::putLayerTar(dir, digest, size);
  }
  if (::stat(abs.c_str(), &st) != 0) return errnoStatus(errno, "stat " + abs.string());
  if (!S_ISDIR(st.st_mode)) return invalidArgument(abs.string() + " is not a directory");
  // A rebuild that hit the cache publishes the same dir again: nothing to change, no lock.
  if (auto named = readNote(digest);
      named.ok() && named->size == size &&
      std::find(named->dirs.begin(), named->dirs.end(), root_ / rel) != named->dirs.end()) {
    return BlobInfo{digest, size, named->written_at};
  }
  // Read → merge → write-temp → rename under the note's lock: two publishers of one digest
  // from different dirs (a server build and a CLI build, or two builds) would otherwise both
  // read the old note and the last rename would drop the other's dir.
  CAIRN_ASSIGN_OR_RETURN(UniqueFd lock, lockNote(digest));
  // Keep the other directories the note names that still exist: any of them makes the blob.
  // A note that cannot be read is replaced by this one (fsck would only have removed it).
  Json dirs = Json::array();
  dirs.push_back(rel.string());
  if (auto old = readNote(digest); old.ok()) {
    if (old->size != size) {
      return invalidArgument("blob " + digest.str() + " has " + std::to_string(old->size) +
                             " bytes, not " + std::to_string(size));
    }
    if (std::find(old->dirs.begin(), old->dirs.end(), root_ / rel) != old->dirs.end()) {
      return BlobInfo{digest, size, old->written_at};  // named already
    }
    for (const fs::path& d : old->dirs) {
      fs::path r = d.lexically_relative(root_);
      if (r == rel) continue;
      struct stat dst {};
      if (::stat(d.c_str(), &dst) == 0 && S_ISDIR(dst.st_mode)) dirs.push_back(r.string());
    }
  }
  Json note = {{"size", size}, {"dirs", dirs}};
  fs::path p = layer_tars_dir_ / digest.hex();
  CAIRN_RETURN_IF_ERROR(writeFileDurable(p, note.dump() + "\n", 0444));
  if (::stat(p.c_str(), &st) != 0) return errnoStatus(errno, "stat " + p.string());
  return BlobInfo{digest, size, mtimeOf(st)};
}

Result<std::unique_ptr<BlobWriter>> LocalBlobStore::writer() {
  for (int attempt = 0; attempt < 8; ++attempt) {
    fs::path tmp = ingest_dir_ / hexEncode(randomBytes(16));
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (fd.valid()) {
      return std::unique_ptr<BlobWriter>(new LocalBlobWriter(std::move(fd), tmp, blobs_dir_));
    }
    if (errno != EEXIST) return errnoStatus(errno, "create " + tmp.string());
  }
  return internalError("could not create a unique ingest file in " + ingest_dir_.string());
}

Status LocalBlobStore::walk(const std::function<Status(const BlobInfo&)>& fn) const {
  DIR* dir = ::opendir(blobs_dir_.c_str());
  if (dir == nullptr) return errnoStatus(errno, "open directory " + blobs_dir_.string());
  std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
  int dfd = ::dirfd(dir);
  for (;;) {
    errno = 0;
    struct dirent* e = ::readdir(dir);
    if (e == nullptr) {
      if (errno != 0) return errnoStatus(errno, "read directory " + blobs_dir_.string());
      break;
    }
    std::string_view name = e->d_name;
    if (!isSha256Hex(name)) continue;
    struct stat st {};
    if (::fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // removed while walking
      return errnoStatus(errno, "stat " + (blobs_dir_ / e->d_name).string());
    }
    if (!S_ISREG(st.st_mode)) continue;
    BlobInfo info{*Digest::fromSha256Hex(name), static_cast<std::uint64_t>(st.st_size),
                  mtimeOf(st)};
    CAIRN_RETURN_IF_ERROR(fn(info));
  }
  return walkNotes([&](const Digest& digest) -> Status {
    if (::faccessat(dfd, digest.hex().c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
      return okStatus();  // committed as well: reported above
    }
    auto note = readNote(digest);
    if (!note.ok()) {
      if (note.status().code() == StatusCode::kNotFound) return okStatus();  // removed meanwhile
      // A note that cannot be read is still listed (0 bytes), so that the GC can remove it;
      // fsck reports it.
      struct stat st {};
      if (::stat((layer_tars_dir_ / digest.hex()).c_str(), &st) != 0) return okStatus();
      return fn(BlobInfo{digest, 0, mtimeOf(st)});
    }
    // Reported even when its directories are gone, so that the GC can remove it.
    return fn(BlobInfo{digest, note->size, note->written_at});
  });
}

Status LocalBlobStore::walkNotes(const std::function<Status(const Digest&)>& fn) const {
  DIR* dir = ::opendir(layer_tars_dir_.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return okStatus();
    return errnoStatus(errno, "open directory " + layer_tars_dir_.string());
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
  std::vector<Digest> digests;
  for (;;) {
    errno = 0;
    struct dirent* e = ::readdir(dir);
    if (e == nullptr) {
      if (errno != 0) return errnoStatus(errno, "read directory " + layer_tars_dir_.string());
      break;
    }
    if (!isSha256Hex(e->d_name)) continue;  // also skips writeFileDurable's temporary files
    digests.push_back(*Digest::fromSha256Hex(e->d_name));
  }
  closer.reset();
  for (const Digest& d : digests)
    CAIRN_RETURN_IF_ERROR(fn(d));
  return okStatus();
}

Status LocalBlobStore::remove(const Digest& digest) {
  if (digest.empty()) return invalidArgument("empty digest");
  bool removed = false;
  fs::path blob = blobPath(digest);
  if (::unlink(blob.c_str()) == 0) {
    removed = true;
  } else if (errno != ENOENT) {
    return errnoStatus(errno, "remove " + blob.string());
  }
  fs::path note = layer_tars_dir_ / digest.hex();
  // The lock only when there is a note: most blobs the GC removes have none.
  if (::access(note.c_str(), F_OK) == 0) {
    CAIRN_ASSIGN_OR_RETURN(UniqueFd lock, lockNote(digest));
    if (::unlink(note.c_str()) == 0) {
      removed = true;
    } else if (errno != ENOENT) {
      return errnoStatus(errno, "remove " + note.string());
    }
  }
  if (!removed) return notFound("blob " + digest.str() + " not found");
  return okStatus();
}

Result<FsckReport> LocalBlobStore::fsck(FsckMode mode) {
  FsckReport report;
  std::vector<std::string> names;
  {
    std::error_code ec;
    for (fs::directory_iterator it(blobs_dir_, ec), end; !ec && it != end; it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    if (ec) return errnoStatus(ec.value(), "list " + blobs_dir_.string());
  }
  fs::path quarantine_dir = root_ / "quarantine";
  auto quarantine = [&](const std::string& name) -> Status {
    CAIRN_RETURN_IF_ERROR(mkdirs(quarantine_dir));
    fs::path from = blobs_dir_ / name;
    fs::path to = quarantine_dir / name;
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return errnoStatus(errno, "move " + from.string() + " to " + to.string());
    }
    return okStatus();
  };
  std::string buf(1 << 20, '\0');
  for (const std::string& name : names) {
    if (!isSha256Hex(name)) {
      if (name.rfind(".", 0) == 0) continue;
      report.corrupt.push_back({name, "file name is not a sha256 digest"});
      if (mode == FsckMode::kQuarantine) CAIRN_RETURN_IF_ERROR(quarantine(name));
      continue;
    }
    Digest digest = *Digest::fromSha256Hex(name);
    fs::path p = blobs_dir_ / name;
    UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    std::string problem;
    if (!fd.valid()) {
      if (errno == ENOENT) continue;  // removed meanwhile
      problem = "cannot open: " + errnoStatus(errno, p.string()).message();
    } else {
      Sha256 sha;
      std::uint64_t size = 0;
      for (;;) {
        ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0) {
          if (errno == EINTR) continue;
          problem = "cannot read: " + errnoStatus(errno, p.string()).message();
          break;
        }
        if (n == 0) break;
        sha.update(buf.data(), static_cast<std::size_t>(n));
        size += static_cast<std::uint64_t>(n);
      }
      ++report.checked;
      report.bytes += size;
      if (problem.empty()) {
        std::string hex = sha.finishHex();
        if (hex != name) problem = "content hashes to sha256:" + hex;
      }
    }
    if (problem.empty()) continue;
    report.corrupt.push_back({digest.str(), problem});
    if (mode == FsckMode::kQuarantine) CAIRN_RETURN_IF_ERROR(quarantine(name));
  }
  // Layer-tar blobs: the tar of the directory must still hash to the name. A broken note has
  // no bytes to quarantine; it is removed, as a corrupt blob leaves the store.
  CAIRN_RETURN_IF_ERROR(walkNotes([&](const Digest& digest) -> Status {
    if (std::find(names.begin(), names.end(), digest.hex()) != names.end()) return okStatus();
    std::string problem;
    auto note = readNote(digest);
    if (!note.ok()) {
      if (note.status().code() == StatusCode::kNotFound) return okStatus();
      problem = note.status().message();
    } else if (auto tar = materializeAny(digest, *note); !tar.ok()) {
      problem = tar.status().message();
    } else {
      ++report.checked;
      report.bytes += note->size;
      return okStatus();
    }
    report.corrupt.push_back({digest.str(), problem});
    if (mode == FsckMode::kQuarantine) {
      // Under the note's lock, and only if the note is still the one checked: a publisher may
      // have replaced it meanwhile (a broken one with a good one, or added a dir), and its new
      // note must not go for the old one's problem.
      CAIRN_ASSIGN_OR_RETURN(UniqueFd lock, lockNote(digest));
      auto now = readNote(digest);
      bool same = note.ok() ? now.ok() && now->size == note->size && now->dirs == note->dirs
                            : !now.ok() && now.status().code() != StatusCode::kNotFound;
      fs::path p = layer_tars_dir_ / digest.hex();
      if (same && ::unlink(p.c_str()) != 0 && errno != ENOENT) {
        return errnoStatus(errno, "remove " + p.string());
      }
    }
    return okStatus();
  }));
  return report;
}

Result<std::size_t> LocalBlobStore::cleanIngest(std::chrono::seconds older_than) {
  std::size_t removed = 0;
  auto now = std::chrono::system_clock::now();
  std::error_code ec;
  for (fs::directory_iterator it(ingest_dir_, ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (now - mtimeOf(st) < older_than) continue;
    if (::unlink(it->path().c_str()) == 0) ++removed;
  }
  if (ec) return errnoStatus(ec.value(), "list " + ingest_dir_.string());
  return removed;
}

}  // namespace cairn::store
