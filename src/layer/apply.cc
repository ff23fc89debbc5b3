#include "cairn/layer/apply.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/common/rooted_fs.h"
#include "cairn/layer/archive_api.h"

namespace cairn::layer {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr std::size_t kMaxDepth = 256;

struct ReadContext {
  ByteSource* source;
  std::vector<char> buf;
  Status status;
};

la_ssize_t readCallback(struct archive*, void* client, const void** out) {
  auto* ctx = static_cast<ReadContext*>(client);
  auto n = ctx->source->read(ctx->buf.data(), ctx->buf.size());
  if (!n.ok()) {
    ctx->status = n.status();
    return -1;
  }
  *out = ctx->buf.data();
  return static_cast<la_ssize_t>(*n);
}

// Removes `name` in `dir_fd` (recursively for directories) without following symlinks.
Status removeAt(int dir_fd, const std::string& name, std::size_t depth = 0) {
  if (::unlinkat(dir_fd, name.c_str(), 0) == 0 || errno == ENOENT) return okStatus();
  if (errno != EISDIR && errno != EPERM) return errnoStatus(errno, "remove " + name);
  if (depth > kMaxDepth) return resourceExhausted("directory tree too deep to remove: " + name);
  int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errnoStatus(errno, "open " + name);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    ::close(fd);
    return errnoStatus(errno, "open directory " + name);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
  std::vector<std::string> children;
  for (;;) {
    errno = 0;
    struct dirent* e = ::readdir(dir);
    if (e == nullptr) {
      if (errno != 0) return errnoStatus(errno, "read directory " + name);
      break;
    }
    std::string_view child = e->d_name;
    if (child != "." && child != "..") children.emplace_back(child);
  }
  for (const std::string& child : children) {
    CAIRN_RETURN_IF_ERROR(removeAt(::dirfd(dir), child, depth + 1).withContext(name));
  }
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return errnoStatus(errno, "remove directory " + name);
  }
  return okStatus();
}

struct CleanPath {
  std::vector<std::string> parts;
  std::string joined() const {
    std::string out;
    for (const auto& p : parts) {
      if (!out.empty()) out += '/';
      out += p;
    }
    return out;
  }
  std::string parentJoined() const {
    std::string out;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      if (!out.empty()) out += '/';
      out += parts[i];
    }
    return out;
  }
};

struct DeferredDir {
  std::string path;
  mode_t mode;
  struct timespec mtime;
};

class Applier {
 public:
  Applier(const ApplyOptions& options) : options_(options) {}

  Result<ApplyReport> run(ByteSource& tar, const fs::path& target) {
    root_.reset(::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root_.valid()) return errnoStatus(errno, "open target directory " + target.string());
    is_root_ = ::geteuid() == 0;
    // libarchive is loaded here, on the first tar, not at program start (archive_api.h).
    CAIRN_ASSIGN_OR_RETURN(ar_, archiveApi());

    std::unique_ptr<struct archive, int (*)(struct archive*)> a(ar_->read_new(), ar_->read_free);
    if (!a) return internalError("libarchive: cannot allocate a reader");
    ar_->read_support_format_tar(a.get());
    ar_->read_support_format_empty(a.get());
    ReadContext ctx{&tar, std::vector<char>(256 * 1024), okStatus()};
    if (ar_->read_open(a.get(), &ctx, nullptr, readCallback, nullptr) != ARCHIVE_OK) {
      if (!ctx.status.ok()) return ctx.status;
      return invalidArgument(std::string("not a tar archive: ") + archiveMessage(a.get()));
    }
    auto tarError = [&](const std::string& where) -> Status {
      if (!ctx.status.ok()) return ctx.status.withContext(where);
      return invalidArgument(where + ": " + archiveMessage(a.get()));
    };
    for (;;) {
      struct archive_entry* e = nullptr;
      int rc = ar_->read_next_header(a.get(), &e);
      if (rc == ARCHIVE_EOF) break;
      if (rc < ARCHIVE_WARN) {
        return tarError("corrupt tar after entry " + std::to_string(report_.entries));
      }
      ++report_.entries;
      if (report_.entries > options_.max_entries) {
        return resourceExhausted("layer has more than " + std::to_string(options_.max_entries) +
                                 " entries");
      }
      const char* raw = ar_->entry_pathname(e);
      std::string name = raw ? raw : "";
      Status s = applyEntry(a.get(), e, name);
      if (!s.ok()) {
        if (!ctx.status.ok())
          return ctx.status.withContext("tar entry \"" + printable(name) + "\"");
        return s;
      }
    }
    CAIRN_RETURN_IF_ERROR(finishDirs());
    return report_;
  }

 private:
  std::string archiveMessage(struct archive* a) const {
    const char* m = ar_->error_string(a);
    return m ? m : "unknown libarchive error";
  }

  static std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 200)) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", u);
        out += buf;
      } else {
        out += c;
      }
    }
    if (s.size() > 200) out += "...";
    return out;
  }

  Status entryError(const std::string& name, StatusCode code, const std::string& what) {
    return Status(code, "tar entry \"" + printable(name) + "\": " + what);
  }

  Result<CleanPath> clean(const std::string& name, bool allow_root = false) {
    if (name.empty()) return entryError(name, StatusCode::kInvalidArgument, "empty path");
    if (name.size() > options_.max_path_length) {
      return entryError(name, StatusCode::kResourceExhausted,
                        "path is " + std::to_string(name.size()) + " bytes, limit " +
                            std::to_string(options_.max_path_length));
    }
    if (name.find('\0') != std::string::npos) {
      return entryError(name, StatusCode::kInvalidArgument, "path contains a NUL byte");
    }
    CleanPath out;
    std::size_t pos = 0;
    while (pos <= name.size()) {
      std::size_t slash = name.find('/', pos);
      if (slash == std::string::npos) slash = name.size();
      std::string part = name.substr(pos, slash - pos);
      pos = slash + 1;
      if (part.empty() || part == ".") continue;
      if (part == "..") {
        return entryError(name, StatusCode::kInvalidArgument,
                          "path contains \"..\"; layer paths must stay inside the layer");
      }
      if (part.size() > 255) {
        return entryError(name, StatusCode::kInvalidArgument, "a path component exceeds 255 bytes");
      }
      out.parts.push_back(std::move(part));
    }
    if (out.parts.size() > kMaxDepth) {
      return entryError(name, StatusCode::kResourceExhausted,
                        "path is deeper than " + std::to_string(kMaxDepth) + " directories");
    }
    if (out.parts.empty() && !allow_root) {
      return entryError(name, StatusCode::kInvalidArgument, "path names the layer root");
    }
    return out;
  }

  // The directory that will hold the last component of `p`, created (0755, like Docker) where
  // missing. Resolution stays inside the target.
  Result<int> parentDir(const std::string& name, const CleanPath& p, bool create) {
    std::string parent = p.parentJoined();
    auto cached = dir_cache_.find(parent);
    if (cached != dir_cache_.end()) return cached->second.get();
    // Every lookup stays inside the target and on its mount, whatever links the layers made.
    int fd = openInRootRaw(root_.get(), parent, O_RDONLY | O_DIRECTORY, 0, /*same_mount=*/true);
    if (fd < 0 && errno == ENOENT && create) {
      // Missing parents are created like Docker's (0755 under the umask); a link on the way
      // must already lead to a directory inside the target: nothing is created through it.
      MkdirAllOptions mkdir_options;
      mkdir_options.mode = 0755;
      mkdir_options.exact_mode = false;
      mkdir_options.create_link_targets = false;
      mkdir_options.same_mount = true;
      mkdir_options.on_created = [this](const std::string& path) { markCreated(path); };
      auto made = mkdirAllInRoot(root_.get(), parent, mkdir_options);
      if (!made.ok()) {
        // What the tar put in the way is the tar's fault; the target's own failures keep theirs.
        StatusCode code = made.status().code();
        bool environment = code == StatusCode::kPermissionDenied ||
                           code == StatusCode::kResourceExhausted || code == StatusCode::kInternal;
        return entryError(name, environment ? code : StatusCode::kInvalidArgument,
                          "create parent: " + made.status().message());
      }
      fd = made->release();
    }
    if (fd < 0) {
      return entryError(name, StatusCode::kInvalidArgument,
                        "parent directory \"" + printable(parent) +
                            "\" cannot be opened inside the layer: " + std::strerror(errno));
    }
    dir_cache_[parent] = UniqueFd(fd);
    return fd;
  }

  // Directory fds handed out for the current entry stay open until the next entry starts;
  // structural changes (removals, symlinks, whiteouts) only mark the cache stale.
  void invalidateCache() { cache_stale_ = true; }

  void markCreated(const std::string& path) {
    if (options_.whiteouts != WhiteoutMode::kFlatten) return;
    // An opaque marker must not remove the directories leading to what this layer wrote.
    for (std::size_t pos = path.find('/'); pos != std::string::npos;
         pos = path.find('/', pos + 1)) {
      created_.insert(path.substr(0, pos));
    }
    created_.insert(path);
  }

  Status setXattrs(struct archive_entry* e, int fd, const std::string& name) {
    if (!options_.preserve_xattrs) return okStatus();
    ar_->entry_xattr_reset(e);
    const char* key = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    while (ar_->entry_xattr_next(e, &key, &value, &size) == ARCHIVE_OK) {
      std::string_view k = key ? key : "";
      if (k.empty()) continue;
      // Overlay's own markers come only from whiteout entries, never from a tar's xattrs.
      if (k.rfind("trusted.overlay.", 0) == 0 || k.rfind("user.overlay.", 0) == 0) continue;
      if (!is_root_ && k.rfind("trusted.", 0) == 0) continue;
      if (::fsetxattr(fd, key, value, size, 0) != 0) {
        return entryError(name, StatusCode::kInternal,
                          "set xattr " + std::string(k) + ": " + std::strerror(errno));
      }
    }
    return okStatus();
  }

  Status replaceExisting(int dir_fd, const std::string& base, bool keep_dir, bool* kept_dir) {
    struct stat st {};
    *kept_dir = false;
    if (::fstatat(dir_fd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return okStatus();
      return errnoStatus(errno, "stat " + base);
    }
    if (keep_dir && S_ISDIR(st.st_mode)) {
      *kept_dir = true;
      return okStatus();
    }
    if (S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode)) invalidateCache();
    return removeAt(dir_fd, base);
  }

  Status applyEntry(struct archive* a, struct archive_entry* e, const std::string& name) {
    if (cache_stale_ || dir_cache_.size() > 64) {
      dir_cache_.clear();
      cache_stale_ = false;
    }
    CAIRN_ASSIGN_OR_RETURN(CleanPath p, clean(name, /*allow_root=*/true));
    if (p.parts.empty()) return okStatus();  // "./": the target itself
    const std::string& base = p.parts.back();
    mode_t type = ar_->entry_filetype(e);
    const char* hardlink = ar_->entry_hardlink(e);

    if (base.rfind(kWhiteoutPrefix, 0) == 0) return applyWhiteout(name, p);

    CAIRN_ASSIGN_OR_RETURN(int dir_fd, parentDir(name, p, /*create=*/true));
    std::string path = p.joined();
    markCreated(path);
    bool kept_dir = false;
    if (hardlink != nullptr) {
      auto lp_or = clean(hardlink);
      if (!lp_or.ok()) {
        return entryError(name, lp_or.status().code(),
                          "hardlink target: " + lp_or.status().message());
      }
      const CleanPath& lp = *lp_or;
      CAIRN_RETURN_IF_ERROR(replaceExisting(dir_fd, base, false, &kept_dir));
      auto ldir_or = parentDir(name, lp, /*create=*/false);
      if (!ldir_or.ok()) {
        return entryError(
            name, StatusCode::kInvalidArgument,
            "hardlink target \"" + printable(hardlink) + "\" does not exist in this layer");
      }
      int ldir = *ldir_or;
      struct stat lst {};
      if (::fstatat(ldir, lp.parts.back().c_str(), &lst, AT_SYMLINK_NOFOLLOW) != 0) {
        return entryError(
            name, StatusCode::kInvalidArgument,
            "hardlink target \"" + printable(hardlink) + "\" does not exist in this layer");
      }
      if (S_ISDIR(lst.st_mode)) {
        return entryError(name, StatusCode::kInvalidArgument,
                          "hardlink target \"" + printable(hardlink) + "\" is a directory");
      }
      if (::linkat(ldir, lp.parts.back().c_str(), dir_fd, base.c_str(), 0) != 0) {
        return entryError(
            name, StatusCode::kInternal,
            std::string("hardlink to \"") + printable(hardlink) + "\": " + std::strerror(errno));
      }
      return okStatus();
    }

    uid_t uid = static_cast<uid_t>(ar_->entry_uid(e));
    gid_t gid = static_cast<gid_t>(ar_->entry_gid(e));
    mode_t perm = ar_->entry_perm(e) & 07777;
    struct timespec times[2];
    times[1].tv_sec = ar_->entry_mtime(e);
    times[1].tv_nsec = ar_->entry_mtime_nsec(e);
    if (times[1].tv_nsec < 0 || times[1].tv_nsec >= 1000000000) times[1].tv_nsec = 0;
    times[0] = times[1];

    switch (type) {
      case AE_IFDIR: {
        CAIRN_RETURN_IF_ERROR(replaceExisting(dir_fd, base, true, &kept_dir));
        if (!kept_dir && ::mkdirat(dir_fd, base.c_str(), 0700) != 0) {
          return entryError(name, StatusCode::kInternal,
                            std::string("mkdir: ") + std::strerror(errno));
        }
        UniqueFd fd(
            ::openat(dir_fd, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd.valid()) {
          return entryError(name, StatusCode::kInternal,
                            std::string("open directory: ") + std::strerror(errno));
        }
        if (options_.preserve_owner && ::fchown(fd.get(), uid, gid) != 0) {
          return entryError(name, StatusCode::kInternal,
                            std::string("chown: ") + std::strerror(errno));
        }
        CAIRN_RETURN_IF_ERROR(setXattrs(e, fd.get(), name));
        // Mode and mtime last: children still have to be created inside, which would bump
        // the mtime and may need write permission.
        deferred_.push_back({path, perm, times[1]});
        return okStatus();
      }
      case AE_IFREG:
        return writeFile(a, e, name, dir_fd, base, uid, gid, perm, times);
      case AE_IFLNK: {
        const char* target = ar_->entry_symlink(e);
        if (target == nullptr || *target == '\0') {
          return entryError(name, StatusCode::kInvalidArgument, "symlink without a target");
        }
        if (std::strlen(target) > options_.max_path_length) {
          return entryError(name, StatusCode::kResourceExhausted, "symlink target too long");
        }
        CAIRN_RETURN_IF_ERROR(replaceExisting(dir_fd, base, false, &kept_dir));
        invalidateCache();
        if (::symlinkat(target, dir_fd, base.c_str()) != 0) {
          return entryError(name, StatusCode::kInternal,
                            std::string("symlink: ") + std::strerror(errno));
        }
        if (options_.preserve_owner &&
            ::fchownat(dir_fd, base.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
          return entryError(name, StatusCode::kInternal,
                            std::string("chown: ") + std::strerror(errno));
        }
        ::utimensat(dir_fd, base.c_str(), times, AT_SYMLINK_NOFOLLOW);
        return okStatus();
      }
      case AE_IFCHR:
      case AE_IFBLK:
        if (options_.devices == DevicePolicy::kSkip) {
          ++report_.skipped;
          return okStatus();
        }
        if (options_.devices == DevicePolicy::kReject) {
          return entryError(name, StatusCode::kPermissionDenied,
                            "device nodes are not allowed in this layer");
        }
        return makeNode(name, dir_fd, base, type | perm,
                        makedev(ar_->entry_rdevmajor(e), ar_->entry_rdevminor(e)), uid, gid, perm,
                        times);
      case AE_IFIFO:
        return makeNode(name, dir_fd, base, S_IFIFO | perm, 0, uid, gid, perm, times);
      default:
        ++report_.skipped;  // sockets and unknown types carry no content
        return okStatus();
    }
  }

  Status makeNode(const std::string& name, int dir_fd, const std::string& base, mode_t mode,
                  dev_t dev, uid_t uid, gid_t gid, mode_t perm, const struct timespec* times) {
    bool kept = false;
    CAIRN_RETURN_IF_ERROR(replaceExisting(dir_fd, base, false, &kept));
    if (::mknodat(dir_fd, base.c_str(), mode, dev) != 0) {
      return entryError(name, StatusCode::kInternal, std::string("mknod: ") + std::strerror(errno));
    }
    if (options_.preserve_owner &&
        ::fchownat(dir_fd, base.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return entryError(name, StatusCode::kInternal, std::string("chown: ") + std::strerror(errno));
    }
    // Just created by us and not a symlink: fchmodat cannot be redirected.
    if (::fchmodat(dir_fd, base.c_str(), perm, 0) != 0) {
      return entryError(name, StatusCode::kInternal, std::string("chmod: ") + std::strerror(errno));
    }
    ::utimensat(dir_fd, base.c_str(), times, AT_SYMLINK_NOFOLLOW);
    return okStatus();
  }

  Status writeFile(struct archive* a, struct archive_entry* e, const std::string& name, int dir_fd,
                   const std::string& base, uid_t uid, gid_t gid, mode_t perm,
                   const struct timespec* times) {
    la_int64_t size = ar_->entry_size(e);
    if (size < 0) size = 0;
    if (report_.bytes + static_cast<std::uint64_t>(size) > options_.max_total_bytes) {
      return entryError(name, StatusCode::kResourceExhausted,
                        "layer content exceeds the limit of " +
                            std::to_string(options_.max_total_bytes) + " bytes");
    }
    bool kept = false;
    CAIRN_RETURN_IF_ERROR(replaceExisting(dir_fd, base, false, &kept));
    UniqueFd fd(
        ::openat(dir_fd, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.valid()) {
      return entryError(name, StatusCode::kInternal,
                        std::string("create: ") + std::strerror(errno));
    }
    const void* block = nullptr;
    size_t len = 0;
    la_int64_t offset = 0;
    std::uint64_t written = 0;
    for (;;) {
      int rc = ar_->read_data_block(a, &block, &len, &offset);
      if (rc == ARCHIVE_EOF) break;
      if (rc < ARCHIVE_WARN) {
        return entryError(name, StatusCode::kInvalidArgument,
                          std::string("reading content: ") + archiveMessage(a));
      }
      if (offset < 0 ||
          static_cast<std::uint64_t>(offset) + len > static_cast<std::uint64_t>(size)) {
        return entryError(name, StatusCode::kInvalidArgument, "content block outside the file");
      }
      const char* p = static_cast<const char*>(block);
      while (len > 0) {
        ssize_t n = ::pwrite(fd.get(), p, len, offset);
        if (n < 0) {
          if (errno == EINTR) continue;
          return entryError(name, StatusCode::kInternal,
                            std::string("write: ") + std::strerror(errno));
        }
        p += n;
        len -= static_cast<size_t>(n);
        offset += n;
        written += static_cast<std::uint64_t>(n);
      }
    }
    if (::ftruncate(fd.get(), size) != 0) {
      return entryError(name, StatusCode::kInternal,
                        std::string("truncate: ") + std::strerror(errno));
    }
    if (options_.preserve_owner && ::fchown(fd.get(), uid, gid) != 0) {
      return entryError(name, StatusCode::kInternal, std::string("chown: ") + std::strerror(errno));
    }
    // After chown, which clears setuid/setgid.
    if (::fchmod(fd.get(), perm) != 0) {
      return entryError(name, StatusCode::kInternal, std::string("chmod: ") + std::strerror(errno));
    }
    CAIRN_RETURN_IF_ERROR(setXattrs(e, fd.get(), name));
    ::futimens(fd.get(), times);
    ++report_.files;
    report_.bytes += written;
    return okStatus();
  }

  Status applyWhiteout(const std::string& name, const CleanPath& p) {
    const std::string& base = p.parts.back();
    ++report_.whiteouts;
    if (base == kOpaqueMarker) {
      CleanPath dir = p;
      dir.parts.pop_back();
      std::string dir_path = dir.joined();
      int fd = -1;
      UniqueFd owned;
      if (dir.parts.empty()) {
        fd = root_.get();
      } else {
        // The marker's parent: the opaque directory itself (created if the tar has no entry).
        CleanPath probe = p;
        CAIRN_ASSIGN_OR_RETURN(fd, parentDir(name, probe, true));
      }
      if (options_.whiteouts == WhiteoutMode::kOverlay) {
        if (::fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0) != 0) {
          return entryError(name, StatusCode::kInternal,
                            std::string("mark directory opaque: ") + std::strerror(errno));
        }
        return okStatus();
      }
      // Flatten: drop whatever lower layers put in this directory.
      invalidateCache();
      UniqueFd dfd(::dup(fd));
      DIR* d = ::fdopendir(dfd.release());
      if (d == nullptr) return errnoStatus(errno, "open opaque directory");
      std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
      ::rewinddir(d);
      std::vector<std::string> children;
      for (;;) {
        errno = 0;
        struct dirent* de = ::readdir(d);
        if (de == nullptr) break;
        std::string_view c = de->d_name;
        if (c == "." || c == "..") continue;
        std::string child_path =
            dir_path.empty() ? std::string(c) : dir_path + "/" + std::string(c);
        if (created_.count(child_path) == 0) children.emplace_back(c);
      }
      for (const std::string& c : children) {
        CAIRN_RETURN_IF_ERROR(
            removeAt(::dirfd(d), c).withContext("tar entry \"" + printable(name) + "\""));
      }
      return okStatus();
    }
    if (base.rfind(kWhiteoutMetaPrefix, 0) == 0) {
      --report_.whiteouts;
      ++report_.skipped;  // aufs bookkeeping (.wh..wh.plnk etc.): nothing to apply
      return okStatus();
    }
    std::string victim = base.substr(kWhiteoutPrefix.size());
    if (victim.empty() || victim == "." || victim == "..") {
      return entryError(name, StatusCode::kInvalidArgument, "whiteout names no file");
    }
    CAIRN_ASSIGN_OR_RETURN(int dir_fd, parentDir(name, p, true));
    invalidateCache();
    CAIRN_RETURN_IF_ERROR(
        removeAt(dir_fd, victim).withContext("tar entry \"" + printable(name) + "\""));
    if (options_.whiteouts == WhiteoutMode::kOverlay) {
      if (::mknodat(dir_fd, victim.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
        return entryError(name, StatusCode::kInternal,
                          std::string("create overlay whiteout: ") + std::strerror(errno));
      }
    }
    return okStatus();
  }

  Status finishDirs() {
    // Deepest first, so setting a parent's mtime is the last touch it gets.
    for (auto it = deferred_.rbegin(); it != deferred_.rend(); ++it) {
      UniqueFd fd(openInRootRaw(root_.get(), it->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0,
                                /*same_mount=*/true));
      if (!fd.valid()) continue;  // replaced or whited out later in the tar
      if (::fchmod(fd.get(), it->mode) != 0) {
        return errnoStatus(errno, "chmod directory " + it->path);
      }
      struct timespec times[2] = {it->mtime, it->mtime};
      ::futimens(fd.get(), times);
    }
    return okStatus();
  }

  ApplyOptions options_;
  const ArchiveApi* ar_ = nullptr;
  ApplyReport report_;
  UniqueFd root_;
  bool is_root_ = false;
  std::unordered_map<std::string, UniqueFd> dir_cache_;
  bool cache_stale_ = false;
  std::unordered_set<std::string> created_;
  std::vector<DeferredDir> deferred_;
};

}  // namespace

Result<ApplyReport> applyLayerTar(ByteSource& tar, const fs::path& target,
                                  const ApplyOptions& options) {
  Applier applier(options);
  return applier.run(tar, target);
}

}  // namespace cairn::layer
