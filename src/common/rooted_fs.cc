#include "cairn/common/rooted_fs.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "cairn/common/strings.h"

namespace cairn {
namespace {

std::string relativeOf(std::string_view path) {
  while (!path.empty() && path.front() == '/')
    path.remove_prefix(1);
  return path.empty() ? std::string(".") : std::string(path);
}

}  // namespace

int openInRootRaw(int root_fd, std::string_view path, int flags, mode_t mode, bool same_mount) {
  std::string p = relativeOf(path);
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  if (same_mount) how.resolve |= RESOLVE_NO_XDEV;
  int err = 0;
  for (int attempt = 0; attempt < 16; ++attempt) {
    long fd = ::syscall(SYS_openat2, root_fd, p.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    err = errno;
    // EAGAIN: a concurrent rename raced the lookup; the kernel asks us to retry.
    if (err != EAGAIN && err != EINTR) break;
  }
  errno = err;
  return -1;
}

Result<UniqueFd> openInRoot(int root_fd, std::string_view path, int flags, mode_t mode,
                            bool same_mount) {
  int fd = openInRootRaw(root_fd, path, flags, mode, same_mount);
  if (fd >= 0) return UniqueFd(fd);
  int err = errno;
  std::string p = relativeOf(path);
  return errnoStatus(err, "open /" + (p == "." ? std::string() : p));
}

std::string cleanAbsolutePath(std::string_view path) {
  std::vector<std::string> parts;
  for (const std::string& part : splitString(path, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  return "/" + joinStrings(parts, "/");
}

namespace {

constexpr int kMaxLinks = 40;  // Linux's MAXSYMLINKS

Result<UniqueFd> mkdirAllDepth(int root_fd, std::string_view path, const MkdirAllOptions& options,
                               int depth) {
  if (depth > kMaxLinks)
    return invalidArgument("too many levels of symbolic links in " + std::string(path));
  std::string clean = cleanAbsolutePath(path);
  UniqueFd dir(::dup(root_fd));
  if (!dir.valid()) return errnoStatus(errno, "dup");
  if (clean == "/") return dir;
  std::vector<std::string> parts = splitString(clean.substr(1), '/');
  std::string walked;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    std::string parent = walked.empty() ? "/" : walked;
    walked += "/" + part;
    // Resolve each step from the root so that a symlinked component (e.g. /var/run → /run)
    // is followed inside the root, never outside.
    int next = openInRootRaw(root_fd, walked, O_RDONLY | O_DIRECTORY, 0, options.same_mount);
    if (next >= 0) {
      dir.reset(next);
      continue;
    }
    struct stat st {};
    bool exists = ::fstatat(dir.get(), part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && S_ISLNK(st.st_mode)) {
      if (!options.create_link_targets) {
        return failedPrecondition("cannot create directory " + walked +
                                  ": a symbolic link that does not lead to a directory is there");
      }
      // A dangling link (or one to a missing directory): create what it points to, inside
      // the root, then carry on below it — what MkdirAll does through a chroot.
      char target[4096];
      ssize_t n = ::readlinkat(dir.get(), part.c_str(), target, sizeof target - 1);
      if (n < 0) return errnoStatus(errno, "readlink " + walked);
      std::string link(target, static_cast<std::size_t>(n));
      std::string resolved = link.starts_with("/") ? link : parent + "/" + link;
      for (std::size_t j = i + 1; j < parts.size(); ++j)
        resolved += "/" + parts[j];
      return mkdirAllDepth(root_fd, resolved, options, depth + 1);
    }
    if (exists && !S_ISDIR(st.st_mode)) {
      return failedPrecondition("cannot create directory " + walked + ": a file is in the way");
    }
    if (::mkdirat(dir.get(), part.c_str(), options.mode) != 0) {
      if (errno != EEXIST) return errnoStatus(errno, "mkdir " + walked);
    } else if (options.on_created) {
      options.on_created(walked.substr(1));
    }
    CAIRN_ASSIGN_OR_RETURN(UniqueFd created, openInRoot(root_fd, walked, O_RDONLY | O_DIRECTORY, 0,
                                                        options.same_mount));
    if (options.owner && ::fchown(created.get(), options.owner->uid, options.owner->gid) != 0) {
      return errnoStatus(errno, "chown " + walked);
    }
    // mkdir applies the umask; set the mode explicitly where the caller wants it exact.
    if (options.exact_mode && ::fchmod(created.get(), options.mode) != 0) {
      return errnoStatus(errno, "chmod " + walked);
    }
    dir = std::move(created);
  }
  return dir;
}

}  // namespace

Result<UniqueFd> mkdirAllInRoot(int root_fd, std::string_view path,
                                const MkdirAllOptions& options) {
  return mkdirAllDepth(root_fd, path, options, 0);
}

}  // namespace cairn
