#include "cairn/build/rooted_fs.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "cairn/common/strings.h"

namespace cairn::build {

Result<UniqueFd> openInRoot(int root_fd, std::string_view path, int flags, mode_t mode) {
  std::string p(path);
  while (!p.empty() && p.front() == '/')
    p.erase(0, 1);
  if (p.empty()) p = ".";
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0; attempt < 16; ++attempt) {
    long fd = ::syscall(SYS_openat2, root_fd, p.c_str(), &how, sizeof how);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    // EAGAIN: a concurrent rename raced the lookup; the kernel asks us to retry.
    if (errno != EAGAIN && errno != EINTR) break;
  }
  return errnoStatus(errno, "open /" + (p == "." ? std::string() : p));
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

std::pair<std::string, std::string> splitParent(std::string_view clean) {
  if (clean == "/" || clean.empty()) return {"/", ""};
  auto slash = clean.rfind('/');
  std::string parent(clean.substr(0, slash));
  if (parent.empty()) parent = "/";
  return {parent, std::string(clean.substr(slash + 1))};
}

namespace {

Result<UniqueFd> mkdirAllDepth(int root_fd, std::string_view path, mode_t mode,
                               std::optional<Ownership> owner, int depth) {
  if (depth > 40)
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
    auto next = openInRoot(root_fd, walked, O_RDONLY | O_DIRECTORY);
    if (next.ok()) {
      dir = std::move(*next);
      continue;
    }
    struct stat st {};
    bool exists = ::fstatat(dir.get(), part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && S_ISLNK(st.st_mode)) {
      // A dangling link (or one to a missing directory): create what it points to, inside
      // the root, then carry on below it — what MkdirAll does through a chroot.
      char target[4096];
      ssize_t n = ::readlinkat(dir.get(), part.c_str(), target, sizeof target - 1);
      if (n < 0) return errnoStatus(errno, "readlink " + walked);
      std::string link(target, static_cast<std::size_t>(n));
      std::string resolved = link.starts_with("/") ? link : parent + "/" + link;
      for (std::size_t j = i + 1; j < parts.size(); ++j)
        resolved += "/" + parts[j];
      return mkdirAllDepth(root_fd, resolved, mode, owner, depth + 1);
    }
    if (exists && !S_ISDIR(st.st_mode)) {
      return failedPrecondition("cannot create directory " + walked + ": a file is in the way");
    }
    if (::mkdirat(dir.get(), part.c_str(), mode) != 0 && errno != EEXIST) {
      return errnoStatus(errno, "mkdir " + walked);
    }
    CAIRN_ASSIGN_OR_RETURN(UniqueFd created, openInRoot(root_fd, walked, O_RDONLY | O_DIRECTORY));
    // mkdir applies the umask; set the mode (and owner) explicitly.
    if (owner && ::fchown(created.get(), owner->uid, owner->gid) != 0) {
      return errnoStatus(errno, "chown " + walked);
    }
    if (::fchmod(created.get(), mode) != 0) return errnoStatus(errno, "chmod " + walked);
    dir = std::move(created);
  }
  return dir;
}

}  // namespace

Result<UniqueFd> mkdirAllInRoot(int root_fd, std::string_view path, mode_t mode,
                                std::optional<Ownership> owner) {
  return mkdirAllDepth(root_fd, path, mode, owner, 0);
}

}  // namespace cairn::build
