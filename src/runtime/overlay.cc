#include "cairn/runtime/overlay.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "cairn/common/crypto.h"
#include "cairn/common/fs.h"
#include "cairn/common/log.h"
#include "cairn/common/strings.h"
#include "cairn/common/uuid.h"

namespace cairn::runtime {

namespace fs = std::filesystem;

namespace {

Status checkOverlayPath(const fs::path& p, std::string_view what) {
  const std::string& s = p.native();
  if (s.empty() || s[0] != '/')
    return invalidArgument(std::string(what) + " '" + s + "' must be absolute");
  // overlayfs splits its options on ',' and lowerdir on ':' (escaping is not portable).
  if (s.find_first_of(",:\n") != std::string::npos)
    return invalidArgument(std::string(what) + " '" + s +
                           "' contains a character overlayfs options cannot carry (',' ':')");
  return okStatus();
}

std::string xattrGet(const fs::path& p, const char* name) {
  char buf[16];
  ssize_t n = lgetxattr(p.c_str(), name, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

bool isOpaqueDir(const fs::path& p) {
  return xattrGet(p, "trusted.overlay.opaque") == "y" || xattrGet(p, "user.overlay.opaque") == "y";
}

// Copies xattrs except overlayfs' own (they describe the source layer, not the merged tree).
Status copyXattrs(const fs::path& src, const fs::path& dst) {
  ssize_t len = llistxattr(src.c_str(), nullptr, 0);
  if (len <= 0) return okStatus();
  std::string names(static_cast<std::size_t>(len), '\0');
  len = llistxattr(src.c_str(), names.data(), names.size());
  if (len < 0) return errnoStatus(errno, "listxattr " + src.string());
  for (std::size_t i = 0; i < static_cast<std::size_t>(len);) {
    std::string name(names.c_str() + i);
    i += name.size() + 1;
    if (name.rfind("trusted.overlay.", 0) == 0 || name.rfind("user.overlay.", 0) == 0) continue;
    ssize_t vlen = lgetxattr(src.c_str(), name.c_str(), nullptr, 0);
    if (vlen < 0) continue;
    std::string value(static_cast<std::size_t>(vlen), '\0');
    vlen = lgetxattr(src.c_str(), name.c_str(), value.data(), value.size());
    if (vlen < 0) continue;
    if (lsetxattr(dst.c_str(), name.c_str(), value.data(), static_cast<std::size_t>(vlen), 0) != 0)
      return errnoStatus(errno, "setxattr " + name + " on " + dst.string());
  }
  return okStatus();
}

Status copyMetadata(const fs::path& dst, const struct stat& st, const fs::path& src) {
  if (lchown(dst.c_str(), st.st_uid, st.st_gid) != 0)
    return errnoStatus(errno, "lchown " + dst.string());
  if (!S_ISLNK(st.st_mode) && chmod(dst.c_str(), st.st_mode & 07777) != 0)
    return errnoStatus(errno, "chmod " + dst.string());
  CAIRN_RETURN_IF_ERROR(copyXattrs(src, dst));
  timespec times[2] = {st.st_atim, st.st_mtim};
  if (utimensat(AT_FDCWD, dst.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    return errnoStatus(errno, "utimensat " + dst.string());
  return okStatus();
}

Status copyRegularFile(const fs::path& src, const fs::path& dst, const struct stat& st) {
  UniqueFd in(open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!in.valid()) return errnoStatus(errno, "open " + src.string());
  UniqueFd out(open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out.valid()) return errnoStatus(errno, "create " + dst.string());
  // Reflink when the filesystem can share extents; otherwise an in-kernel copy.
  if (ioctl(out.get(), FICLONE, in.get()) != 0) {
    off_t left = st.st_size;
    while (left > 0) {
      ssize_t n =
          copy_file_range(in.get(), nullptr, out.get(), nullptr, static_cast<std::size_t>(left), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errnoStatus(errno, "copy " + src.string() + " to " + dst.string());
      if (n == 0) break;
      left -= n;
    }
  }
  return okStatus();
}

Status removeIfPresent(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  if (ec) return internalError("remove " + p.string() + ": " + ec.message());
  return okStatus();
}

Status mergeDir(const fs::path& src, const fs::path& dst, bool drop_whiteouts) {
  DIR* dir = opendir(src.c_str());
  if (dir == nullptr) return errnoStatus(errno, "opendir " + src.string());
  std::vector<std::string> names;
  while (dirent* e = readdir(dir)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  closedir(dir);
  for (const std::string& name : names) {
    fs::path s = src / name;
    fs::path d = dst / name;
    struct stat st {};
    if (lstat(s.c_str(), &st) != 0) return errnoStatus(errno, "lstat " + s.string());
    struct stat dst_st {};
    bool dst_exists = lstat(d.c_str(), &dst_st) == 0;
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {  // whiteout
      if (dst_exists) CAIRN_RETURN_IF_ERROR(removeIfPresent(d));
      if (!drop_whiteouts && mknod(d.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0)
        return errnoStatus(errno, "mknod whiteout " + d.string());
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      bool merge = dst_exists && S_ISDIR(dst_st.st_mode) && !isOpaqueDir(s);
      if (!merge) {
        if (dst_exists) CAIRN_RETURN_IF_ERROR(removeIfPresent(d));
        if (mkdir(d.c_str(), 0700) != 0) return errnoStatus(errno, "mkdir " + d.string());
      }
      CAIRN_RETURN_IF_ERROR(mergeDir(s, d, drop_whiteouts));
      CAIRN_RETURN_IF_ERROR(copyMetadata(d, st, s));
      continue;
    }
    if (dst_exists) CAIRN_RETURN_IF_ERROR(removeIfPresent(d));
    if (S_ISREG(st.st_mode)) {
      if (link(s.c_str(), d.c_str()) == 0) continue;  // shares the inode: metadata included
      if (errno != EXDEV && errno != EMLINK && errno != EPERM)
        return errnoStatus(errno, "link " + s.string() + " to " + d.string());
      CAIRN_RETURN_IF_ERROR(copyRegularFile(s, d, st));
    } else if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      fs::path target = fs::read_symlink(s, ec);
      if (ec) return internalError("readlink " + s.string() + ": " + ec.message());
      if (symlink(target.c_str(), d.c_str()) != 0)
        return errnoStatus(errno, "symlink " + d.string());
    } else {
      if (mknod(d.c_str(), st.st_mode, st.st_rdev) != 0)
        return errnoStatus(errno, "mknod " + d.string());
    }
    CAIRN_RETURN_IF_ERROR(copyMetadata(d, st, s));
  }
  return okStatus();
}

std::string unescapeMountinfo(std::string_view s) {
  auto oct = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && oct(s[i + 1]) && oct(s[i + 2]) && oct(s[i + 3])) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
      continue;
    }
    out += s[i];
  }
  return out;
}

}  // namespace

Result<std::string> overlayMountOptions(const OverlayMount& overlay) {
  if (overlay.lower_dirs.empty()) return invalidArgument("overlay: no lower dirs");
  std::string options = "lowerdir=";
  for (std::size_t i = 0; i < overlay.lower_dirs.size(); ++i) {
    CAIRN_RETURN_IF_ERROR(checkOverlayPath(overlay.lower_dirs[i], "lower dir"));
    if (i > 0) options += ':';
    options += overlay.lower_dirs[i].native();
  }
  if (!overlay.upper_dir.empty()) {
    CAIRN_RETURN_IF_ERROR(checkOverlayPath(overlay.upper_dir, "upper dir"));
    CAIRN_RETURN_IF_ERROR(checkOverlayPath(overlay.work_dir, "work dir"));
    options += ",upperdir=" + overlay.upper_dir.native() + ",workdir=" + overlay.work_dir.native();
    if (overlay.discard_upper) options += ",volatile";
  }
  return options;
}

Status mountOverlay(const OverlayMount& overlay, const fs::path& target) {
  CAIRN_ASSIGN_OR_RETURN(std::string options, overlayMountOptions(overlay));
  if (overlay.upper_dir.empty() && overlay.lower_dirs.size() == 1) {
    const fs::path& lower = overlay.lower_dirs[0];
    if (mount(lower.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
      return errnoStatus(errno, "bind mount " + lower.string() + " on " + target.string());
    if (mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
      int err = errno;
      (void)unmountReliably(target);
      return errnoStatus(err, "remount read-only " + target.string());
    }
    return okStatus();
  }
  std::string where = "overlay on " + target.string() + " (" +
                      std::to_string(overlay.lower_dirs.size()) + " lower dirs)";
  if (options.size() < kMaxOverlayOptionBytes) {
    if (mount("overlay", target.c_str(), "overlay", 0, options.c_str()) != 0) {
      // `volatile` is Linux >= 5.10; an older kernel mounts without it (and syncs on unmount).
      if (errno == EINVAL && overlay.discard_upper) {
        OverlayMount durable = overlay;
        durable.discard_upper = false;
        return mountOverlay(durable, target);
      }
      return errnoStatus(errno, "mount " + where);
    }
    return okStatus();
  }
  // Too long for one page: the new mount API takes one lower dir per call (Linux >= 6.8).
  UniqueFd fsfd(fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fsfd.valid()) return errnoStatus(errno, "fsopen overlay for " + where);
  for (const fs::path& lower : overlay.lower_dirs) {
    if (fsconfig(fsfd.get(), FSCONFIG_SET_STRING, "lowerdir+", lower.c_str(), 0) != 0)
      return invalidArgument("mount " + where +
                             ": mount options exceed one page and this kernel "
                             "does not take lowerdir+ (" +
                             std::strerror(errno) + "); flatten the lower dirs first");
  }
  if (!overlay.upper_dir.empty()) {
    if (fsconfig(fsfd.get(), FSCONFIG_SET_STRING, "upperdir", overlay.upper_dir.c_str(), 0) != 0 ||
        fsconfig(fsfd.get(), FSCONFIG_SET_STRING, "workdir", overlay.work_dir.c_str(), 0) != 0)
      return errnoStatus(errno, "fsconfig upperdir/workdir for " + where);
    // lowerdir+ means Linux >= 6.8, which knows `volatile` (5.10).
    if (overlay.discard_upper &&
        fsconfig(fsfd.get(), FSCONFIG_SET_FLAG, "volatile", nullptr, 0) != 0)
      return errnoStatus(errno, "fsconfig volatile for " + where);
  }
  if (fsconfig(fsfd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
    return errnoStatus(errno, "create " + where);
  UniqueFd mnt(fsmount(fsfd.get(), FSMOUNT_CLOEXEC, 0));
  if (!mnt.valid()) return errnoStatus(errno, "fsmount " + where);
  if (move_mount(mnt.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
    return errnoStatus(errno, "move_mount " + where);
  return okStatus();
}

Status unmountReliably(const fs::path& target) {
  using namespace std::chrono_literals;
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (umount2(target.c_str(), UMOUNT_NOFOLLOW) == 0) return okStatus();
    if (errno == EINVAL || errno == ENOENT) return okStatus();  // not (or no longer) mounted
    if (errno != EBUSY) return errnoStatus(errno, "umount " + target.string());
    std::this_thread::sleep_for(25ms);
  }
  spdlog::warn("runtime: {} stays busy; detaching it lazily", target.string());
  if (umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0 || errno == EINVAL)
    return okStatus();
  return errnoStatus(errno, "lazy umount " + target.string());
}

Result<std::vector<fs::path>> mountsUnder(const fs::path& dir) {
  CAIRN_ASSIGN_OR_RETURN(std::string mountinfo, readFile("/proc/self/mountinfo"));
  std::error_code ec;
  fs::path base = fs::weakly_canonical(dir, ec);
  if (ec) base = dir.lexically_normal();
  std::string prefix = base.string();
  while (prefix.size() > 1 && prefix.back() == '/')
    prefix.pop_back();
  std::vector<fs::path> result;
  for (const std::string& line : splitString(mountinfo, '\n')) {
    std::vector<std::string> fields = splitString(line, ' ');
    if (fields.size() < 5) continue;
    std::string mp = unescapeMountinfo(fields[4]);
    if (mp == prefix || mp.rfind(prefix + "/", 0) == 0) result.emplace_back(mp);
  }
  // Deepest first; a path mounted twice is listed (and unmounted) twice.
  std::stable_sort(result.begin(), result.end(), [](const fs::path& a, const fs::path& b) {
    return a.native().size() > b.native().size();
  });
  return result;
}

Status unmountAllUnder(const fs::path& dir) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<fs::path> mounts, mountsUnder(dir));
  Status first;
  for (const fs::path& m : mounts) {
    Status s = unmountReliably(m);
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

Status mergeLayerInto(const fs::path& layer, const fs::path& target, bool drop_whiteouts) {
  struct stat st {};
  if (lstat(layer.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return notFound("layer dir " + layer.string() + " does not exist");
  if (lstat(target.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return notFound("merge target " + target.string() + " does not exist");
  Status s = mergeDir(layer, target, drop_whiteouts);
  if (!s.ok()) return s.withContext("merging layer " + layer.string());
  struct stat layer_st {};
  if (lstat(layer.c_str(), &layer_st) == 0)
    CAIRN_RETURN_IF_ERROR(copyMetadata(target, layer_st, layer));
  return okStatus();
}

Result<std::vector<fs::path>> flattenLowers(const std::vector<fs::path>& lowers,
                                            const fs::path& cache_dir, std::size_t max_lowers,
                                            std::size_t max_option_bytes) {
  if (max_lowers < 2) return invalidArgument("flattenLowers: max_lowers must be at least 2");
  std::size_t option_bytes = 0;
  for (const fs::path& l : lowers)
    option_bytes += l.native().size() + 1;
  if (lowers.size() <= max_lowers && option_bytes + 2 * 256 <= max_option_bytes) return lowers;

  // Keep as many of the newest as fit, leaving one slot for the merged dir.
  std::size_t keep = std::min(max_lowers - 1, lowers.size() - 1);
  auto budget = [&](std::size_t k) {
    std::size_t bytes = cache_dir.native().size() + 70;  // the merged dir's own path
    for (std::size_t i = 0; i < k; ++i)
      bytes += lowers[i].native().size() + 1;
    return bytes + 2 * 256;
  };
  while (keep > 0 && budget(keep) > max_option_bytes)
    --keep;
  std::vector<fs::path> oldest(lowers.begin() + static_cast<std::ptrdiff_t>(keep), lowers.end());
  std::string key_text;
  for (const fs::path& l : oldest)
    key_text += l.native() + '\n';
  fs::path merged = cache_dir / ("merged-" + sha256Hex(key_text).substr(0, 32));

  std::error_code ec;
  if (!fs::exists(merged, ec)) {
    fs::create_directories(cache_dir, ec);
    if (ec) return internalError("create " + cache_dir.string() + ": " + ec.message());
    fs::path tmp = cache_dir / (".tmp-" + uuidV4());
    if (mkdir(tmp.c_str(), 0755) != 0) return errnoStatus(errno, "mkdir " + tmp.string());
    spdlog::info("runtime: merging the {} oldest of {} lower dirs into {}", oldest.size(),
                 lowers.size(), merged.string());
    // Oldest first, so newer layers override older ones.
    for (auto it = oldest.rbegin(); it != oldest.rend(); ++it) {
      Status s = mergeLayerInto(*it, tmp, /*drop_whiteouts=*/true);
      if (!s.ok()) {
        fs::remove_all(tmp, ec);
        return s;
      }
    }
    if (rename(tmp.c_str(), merged.c_str()) != 0) {
      int err = errno;
      fs::remove_all(tmp, ec);
      // Another builder made the same merge concurrently: theirs is as good as ours.
      if (err != EEXIST && err != ENOTEMPTY) return errnoStatus(err, "rename " + merged.string());
    }
  }
  std::vector<fs::path> result(lowers.begin(), lowers.begin() + static_cast<std::ptrdiff_t>(keep));
  result.push_back(merged);
  return result;
}

}  // namespace cairn::runtime
