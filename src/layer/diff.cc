#include "cairn/layer/diff.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/layer/archive_api.h"

namespace cairn::layer {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

struct WriteContext {
  ByteSink* sink;
  Status status;
};

la_ssize_t writeCallback(struct archive*, void* client, const void* buf, size_t n) {
  auto* ctx = static_cast<WriteContext*>(client);
  Status s = ctx->sink->write(std::string_view(static_cast<const char*>(buf), n));
  if (!s.ok()) {
    ctx->status = s;
    return -1;
  }
  return static_cast<la_ssize_t>(n);
}

using ArchivePtr = std::unique_ptr<struct archive, int (*)(struct archive*)>;
using EntryPtr = std::unique_ptr<struct archive_entry, void (*)(struct archive_entry*)>;

// Overlay's own bookkeeping never goes into a layer; neither do ACLs (system.*), which need
// their own tar representation.
bool keepXattr(std::string_view name) {
  return name.rfind("trusted.overlay.", 0) != 0 && name.rfind("user.overlay.", 0) != 0 &&
         name.rfind("system.", 0) != 0;
}

Result<std::vector<std::pair<std::string, std::string>>> readXattrs(const fs::path& p) {
  std::vector<std::pair<std::string, std::string>> out;
  ssize_t len = ::llistxattr(p.c_str(), nullptr, 0);
  if (len < 0) {
    if (errno == ENOTSUP) return out;
    return errnoStatus(errno, "list xattrs of " + p.string());
  }
  if (len == 0) return out;
  std::string names(static_cast<std::size_t>(len), '\0');
  len = ::llistxattr(p.c_str(), names.data(), names.size());
  if (len < 0) return errnoStatus(errno, "list xattrs of " + p.string());
  names.resize(static_cast<std::size_t>(len));
  for (std::size_t pos = 0; pos < names.size();) {
    std::string name(names.c_str() + pos);
    pos += name.size() + 1;
    if (name.empty() || !keepXattr(name)) continue;
    ssize_t vlen = ::lgetxattr(p.c_str(), name.c_str(), nullptr, 0);
    if (vlen < 0) {
      if (errno == ENODATA) continue;
      return errnoStatus(errno, "read xattr " + name + " of " + p.string());
    }
    std::string value(static_cast<std::size_t>(vlen), '\0');
    vlen = ::lgetxattr(p.c_str(), name.c_str(), value.data(), value.size());
    if (vlen < 0) return errnoStatus(errno, "read xattr " + name + " of " + p.string());
    value.resize(static_cast<std::size_t>(vlen));
    out.emplace_back(std::move(name), std::move(value));
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool isOpaqueDir(const fs::path& p) {
  char v[4];
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
    ssize_t n = ::lgetxattr(p.c_str(), name, v, sizeof v);
    if (n == 1 && v[0] == 'y') return true;
  }
  return false;
}

class TarWriter {
 public:
  TarWriter(const ArchiveApi* ar, ByteSink* sink, const DiffOptions& options)
      : ar_(ar),
        ctx_{sink, okStatus()},
        archive_(ar->write_new(), ar->write_free),
        options_(options) {}

  Status open() {
    if (!archive_) return internalError("libarchive: cannot allocate a writer");
    if (ar_->write_set_format_pax_restricted(archive_.get()) != ARCHIVE_OK ||
        ar_->write_set_bytes_in_last_block(archive_.get(), 1) != ARCHIVE_OK) {
      return archiveError("set up tar writer");
    }
    if (ar_->write_open2(archive_.get(), &ctx_, nullptr, writeCallback, nullptr, nullptr) !=
        ARCHIVE_OK) {
      return archiveError("open tar writer");
    }
    return okStatus();
  }

  Status close() {
    if (ar_->write_close(archive_.get()) != ARCHIVE_OK) return archiveError("finish tar");
    return okStatus();
  }

  Status walk(const fs::path& abs, const std::string& rel) {
    DIR* dir = ::opendir(abs.c_str());
    if (dir == nullptr) return errnoStatus(errno, "open directory " + abs.string());
    std::vector<std::string> names;
    {
      std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
      for (;;) {
        errno = 0;
        struct dirent* e = ::readdir(dir);
        if (e == nullptr) {
          if (errno != 0) return errnoStatus(errno, "read directory " + abs.string());
          break;
        }
        std::string_view name = e->d_name;
        if (name == "." || name == "..") continue;
        names.emplace_back(name);
      }
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      fs::path child = abs / name;
      std::string child_rel = rel.empty() ? name : rel + "/" + name;
      struct stat st {};
      if (::lstat(child.c_str(), &st) != 0) return errnoStatus(errno, "stat " + child.string());
      CAIRN_RETURN_IF_ERROR(addEntry(child, child_rel, st));
      if (S_ISDIR(st.st_mode)) CAIRN_RETURN_IF_ERROR(walk(child, child_rel));
    }
    return okStatus();
  }

  DiffReport report() const { return report_; }

 private:
  Status archiveError(std::string_view what) {
    if (!ctx_.status.ok()) return ctx_.status;
    const char* msg = ar_->error_string(archive_.get());
    return internalError(std::string(what) + ": " + (msg ? msg : "libarchive error"));
  }

  void setTimes(struct archive_entry* e, const struct stat& st) {
    std::int64_t sec = st.st_mtim.tv_sec;
    long nsec = st.st_mtim.tv_nsec;
    if (options_.source_date_epoch && sec >= *options_.source_date_epoch) {
      if (sec > *options_.source_date_epoch || nsec > 0) {
        sec = *options_.source_date_epoch;
        nsec = 0;
      }
    }
    ar_->entry_set_mtime(e, static_cast<time_t>(sec), nsec);
  }

  Status writeHeader(struct archive_entry* e, const std::string& rel) {
    int rc = ar_->write_header(archive_.get(), e);
    if (rc < ARCHIVE_WARN) return archiveError("write tar header for " + rel);
    ++report_.entries;
    return okStatus();
  }

  Status addEmptyFile(const std::string& rel, const struct stat& like) {
    EntryPtr e(ar_->entry_new(), ar_->entry_free);
    ar_->entry_set_pathname(e.get(), rel.c_str());
    ar_->entry_set_filetype(e.get(), AE_IFREG);
    ar_->entry_set_perm(e.get(), 0);
    ar_->entry_set_size(e.get(), 0);
    ar_->entry_set_uid(e.get(), 0);
    ar_->entry_set_gid(e.get(), 0);
    setTimes(e.get(), like);
    return writeHeader(e.get(), rel);
  }

  Status addEntry(const fs::path& abs, const std::string& rel, const struct stat& st) {
    std::string_view base = std::string_view(rel).substr(rel.rfind('/') + 1);
    std::string parent_rel =
        rel.size() > base.size() ? rel.substr(0, rel.size() - base.size()) : std::string();
    if (options_.convert_whiteouts && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
      // Overlay whiteout → OCI whiteout (checked before hardlinks: the kernel may link all
      // whiteouts of a layer to one inode).
      return addEmptyFile(parent_rel + std::string(kWhiteoutPrefix) + std::string(base), st);
    }
    if (base.rfind(kWhiteoutPrefix, 0) == 0) {
      return invalidArgument("file " + abs.string() +
                             " has a name reserved for OCI whiteouts; it cannot go into a layer");
    }
    EntryPtr e(ar_->entry_new(), ar_->entry_free);
    std::string name = S_ISDIR(st.st_mode) ? rel + "/" : rel;
    ar_->entry_set_pathname(e.get(), name.c_str());
    ar_->entry_set_uid(e.get(), st.st_uid);
    ar_->entry_set_gid(e.get(), st.st_gid);
    ar_->entry_set_mode(e.get(), st.st_mode);
    setTimes(e.get(), st);
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      auto it = links_.find(key);
      if (it != links_.end()) {
        ar_->entry_set_filetype(e.get(), AE_IFREG);
        ar_->entry_set_hardlink(e.get(), it->second.c_str());
        ar_->entry_set_size(e.get(), 0);
        return writeHeader(e.get(), rel);
      }
      links_.emplace(key, rel);
    }
    CAIRN_ASSIGN_OR_RETURN(auto xattrs, readXattrs(abs));
    for (const auto& [k, v] : xattrs) {
      ar_->entry_xattr_add_entry(e.get(), k.c_str(), v.data(), v.size());
    }
    if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlink(abs.c_str(), target.data(), target.size());
      if (n < 0) return errnoStatus(errno, "readlink " + abs.string());
      target.resize(static_cast<std::size_t>(n));
      ar_->entry_set_symlink(e.get(), target.c_str());
      return writeHeader(e.get(), rel);
    }
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      ar_->entry_set_rdevmajor(e.get(), major(st.st_rdev));
      ar_->entry_set_rdevminor(e.get(), minor(st.st_rdev));
      return writeHeader(e.get(), rel);
    }
    if (S_ISFIFO(st.st_mode)) return writeHeader(e.get(), rel);
    if (S_ISDIR(st.st_mode)) {
      CAIRN_RETURN_IF_ERROR(writeHeader(e.get(), rel));
      if (options_.convert_whiteouts && isOpaqueDir(abs)) {
        CAIRN_RETURN_IF_ERROR(addEmptyFile(rel + "/" + std::string(kOpaqueMarker), st));
      }
      return okStatus();
    }
    if (S_ISSOCK(st.st_mode)) return okStatus();  // sockets are not archived (as tar does)
    if (!S_ISREG(st.st_mode)) return invalidArgument("unsupported file type: " + abs.string());
    ar_->entry_set_size(e.get(), st.st_size);
    UniqueFd fd(::open(abs.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return errnoStatus(errno, "open " + abs.string());
    CAIRN_RETURN_IF_ERROR(writeHeader(e.get(), rel));
    std::uint64_t left = static_cast<std::uint64_t>(st.st_size);
    buf_.resize(1 << 20);
    while (left > 0) {
      ssize_t n = ::read(fd.get(), buf_.data(), std::min<std::uint64_t>(left, buf_.size()));
      if (n < 0) {
        if (errno == EINTR) continue;
        return errnoStatus(errno, "read " + abs.string());
      }
      if (n == 0) {
        return failedPrecondition(abs.string() + " shrank while it was being archived");
      }
      la_ssize_t w = ar_->write_data(archive_.get(), buf_.data(), static_cast<size_t>(n));
      if (w < 0) return archiveError("write tar data for " + rel);
      left -= static_cast<std::uint64_t>(n);
      report_.bytes += static_cast<std::uint64_t>(n);
    }
    return okStatus();
  }

  const ArchiveApi* ar_;
  WriteContext ctx_;
  ArchivePtr archive_;
  DiffOptions options_;
  DiffReport report_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
  std::vector<char> buf_;
};

}  // namespace

Result<DiffReport> createLayerTar(const fs::path& dir, ByteSink& out, const DiffOptions& options) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return errnoStatus(errno, "stat " + dir.string());
  if (!S_ISDIR(st.st_mode)) return invalidArgument(dir.string() + " is not a directory");
  // libarchive is loaded here, on the first tar, not at program start (archive_api.h).
  CAIRN_ASSIGN_OR_RETURN(const ArchiveApi* ar, archiveApi());
  TarWriter writer(ar, &out, options);
  CAIRN_RETURN_IF_ERROR(writer.open());
  CAIRN_RETURN_IF_ERROR(writer.walk(dir, ""));
  CAIRN_RETURN_IF_ERROR(writer.close());
  return writer.report();
}

}  // namespace cairn::layer
