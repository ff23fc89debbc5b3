#include "cairn/build/copy.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <map>

#include "cairn/common/crypto.h"
#include "cairn/common/strings.h"

namespace cairn::build {
namespace {

using dockerfile::DockerIgnore;

std::string joinRel(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

bool hasGlob(std::string_view s) {
  return s.find_first_of("*?[") != std::string_view::npos;
}

// Sorted directory entries (reproducible order), without "." and "..".
Result<std::vector<std::string>> listDir(int dir_fd, const std::string& what) {
  int fd = ::dup(dir_fd);
  if (fd < 0) return errnoStatus(errno, "dup");
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return errnoStatus(errno, "opendir " + what);
  }
  ::rewinddir(d);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return errnoStatus(err, "readdir " + what);
  std::sort(names.begin(), names.end());
  return names;
}

// Whether a path is visible: not excluded by .dockerignore / --exclude.
//
// .dockerignore patterns are relative to the context root. --exclude patterns are relative to
// the source being copied, as BuildKit matches them (fsutil's copy walks each selected source
// with paths relative to it): `COPY --exclude=*.log dir/ /d/` skips dir/b.log, and
// `COPY --exclude=*/*.png . /d/` skips x/a.png. `base` is that source (root-relative, "" for
// the root); `rel` is always root-relative.
struct Filter {
  const DockerIgnore* ignore = nullptr;
  std::optional<DockerIgnore> excludes;

  static std::optional<std::string> underBase(const std::string& base, const std::string& rel) {
    if (base.empty()) return rel;
    if (rel.size() > base.size() && rel.compare(0, base.size(), base) == 0 &&
        rel[base.size()] == '/') {
      return rel.substr(base.size() + 1);
    }
    return std::nullopt;  // the source itself (or not below it): see excludesTopLevel
  }

  bool visible(const std::string& base, const std::string& rel) const {
    if (rel.empty()) return true;
    if (ignore && ignore->excluded(rel)) return false;
    if (excludes) {
      auto sub = underBase(base, rel);
      if (sub && !sub->empty() && excludes->excluded(*sub)) return false;
    }
    return true;
  }
  // An excluded directory must still be walked if an exception may re-include below it.
  bool mustDescend(const std::string& base, const std::string& rel) const {
    if (ignore && ignore->mayReincludeUnder(rel)) return true;
    if (!excludes) return false;
    auto sub = underBase(base, rel);
    return sub && !sub->empty() && excludes->mayReincludeUnder(*sub);
  }
  // A selected source itself: a file whose path or name matches an --exclude pattern is not
  // copied, as BuildKit documents (`COPY --exclude=*.txt hom* /mydir/` leaves home.txt out). A
  // directory is always entered, its contents filtered (BuildKit's `ADD --exclude=* dir* /6`
  // makes an empty /6).
  bool excludesTopLevel(const std::string& rel, bool is_dir) const {
    if (!excludes || rel.empty() || is_dir) return false;
    auto slash = rel.rfind('/');
    return excludes->excluded(rel) ||
           (slash != std::string::npos && excludes->excluded(rel.substr(slash + 1)));
  }
};

Result<Filter> makeFilter(const CopySourceRoot& root, const std::vector<std::string>& excludes) {
  Filter f;
  f.ignore = root.ignore;
  if (!excludes.empty()) {
    auto parsed = DockerIgnore::parse(joinStrings(excludes, "\n"));
    if (!parsed.ok()) return parsed.status().withContext("--exclude");
    f.excludes = std::move(*parsed);
  }
  return f;
}

// Normalises a source pattern to a path relative to the root: "./a/../b/" → "b", "/" → "".
std::string relativePattern(std::string_view pattern) {
  std::string clean = cleanAbsolutePath(pattern);
  return clean == "/" ? std::string() : clean.substr(1);
}

// `excluded` counts matches left out by --exclude (a pattern whose every match was excluded
// copies nothing; it is not "not found").
Status globInto(int root_fd, const Filter& filter, const std::vector<std::string>& parts,
                std::size_t index, const std::string& rel, std::vector<SelectedSource>& out,
                int& excluded) {
  if (index == parts.size()) {
    struct stat st {};
    // The source path itself follows symlinks, as Docker does for COPY sources.
    auto fd = openInRoot(root_fd, rel, O_PATH);
    if (!fd.ok() || ::fstat(fd->get(), &st) != 0) return okStatus();
    if (!rel.empty() && filter.ignore && filter.ignore->excluded(rel)) return okStatus();
    if (filter.excludesTopLevel(rel, S_ISDIR(st.st_mode))) {
      ++excluded;
      return okStatus();
    }
    out.push_back({rel, S_ISDIR(st.st_mode)});
    return okStatus();
  }
  const std::string& part = parts[index];
  if (!hasGlob(part)) {
    return globInto(root_fd, filter, parts, index + 1, joinRel(rel, part), out, excluded);
  }
  auto dir = openInRoot(root_fd, rel, O_RDONLY | O_DIRECTORY);
  if (!dir.ok()) return okStatus();
  CAIRN_ASSIGN_OR_RETURN(auto names, listDir(dir->get(), "/" + rel));
  for (const std::string& name : names) {
    if (::fnmatch(part.c_str(), name.c_str(), FNM_PATHNAME | FNM_PERIOD) != 0 &&
        ::fnmatch(part.c_str(), name.c_str(), FNM_PATHNAME) != 0) {
      continue;
    }
    CAIRN_RETURN_IF_ERROR(
        globInto(root_fd, filter, parts, index + 1, joinRel(rel, name), out, excluded));
  }
  return okStatus();
}

// Walks one selected source depth-first in name order, calling visit(rel_path, stat, fd of
// the entry's parent dir, entry name) for the source itself and everything below it that the
// filter lets through.
template <typename Visit>
Status walkSource(int root_fd, const Filter& filter, const SelectedSource& source, Visit&& visit) {
  auto [parent, name] = splitParent(cleanAbsolutePath(source.path));
  CAIRN_ASSIGN_OR_RETURN(UniqueFd parent_fd, openInRoot(root_fd, parent, O_RDONLY | O_DIRECTORY));
  struct stat st {};
  // The top-level source follows symlinks (Docker copies what a link points to).
  if (name.empty()) {
    if (::fstat(parent_fd.get(), &st) != 0) return errnoStatus(errno, "stat /");
  } else {
    auto self = openInRoot(root_fd, source.path, O_PATH);
    if (!self.ok()) return self.status();
    if (::fstat(self->get(), &st) != 0) return errnoStatus(errno, "stat " + source.path);
  }
  std::function<Status(int, const std::string&, const std::string&, const struct stat&, bool)>
      recurse = [&](int dir_fd, const std::string& entry_name, const std::string& rel,
                    const struct stat& entry_st, bool visible) -> Status {
    if (visible) CAIRN_RETURN_IF_ERROR(visit(rel, entry_st, dir_fd, entry_name));
    if (!S_ISDIR(entry_st.st_mode)) return okStatus();
    UniqueFd sub;
    if (rel == source.path) {
      CAIRN_ASSIGN_OR_RETURN(sub, openInRoot(root_fd, rel, O_RDONLY | O_DIRECTORY));
    } else {
      sub = UniqueFd(
          ::openat(dir_fd, entry_name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) return errnoStatus(errno, "open " + rel);
    }
    CAIRN_ASSIGN_OR_RETURN(auto names, listDir(sub.get(), rel));
    for (const std::string& child : names) {
      std::string child_rel = joinRel(rel, child);
      struct stat cst {};
      if (::fstatat(sub.get(), child.c_str(), &cst, AT_SYMLINK_NOFOLLOW) != 0) {
        return errnoStatus(errno, "stat " + child_rel);
      }
      bool child_visible = filter.visible(source.path, child_rel);
      if (!child_visible && !(S_ISDIR(cst.st_mode) && filter.mustDescend(source.path, child_rel)))
        continue;
      CAIRN_RETURN_IF_ERROR(recurse(sub.get(), child, child_rel, cst, child_visible));
    }
    return okStatus();
  };
  return recurse(parent_fd.get(), name, source.path, st, true);
}

char typeChar(mode_t mode) {
  if (S_ISREG(mode)) return 'f';
  if (S_ISDIR(mode)) return 'd';
  if (S_ISLNK(mode)) return 'l';
  if (S_ISFIFO(mode)) return 'p';
  if (S_ISCHR(mode)) return 'c';
  if (S_ISBLK(mode)) return 'b';
  if (S_ISSOCK(mode)) return 's';
  return '?';
}

Result<std::string> readLink(int dir_fd, const std::string& name, const std::string& rel) {
  std::string buf(4096, '\0');
  ssize_t n = ::readlinkat(dir_fd, name.c_str(), buf.data(), buf.size());
  if (n < 0) return errnoStatus(errno, "readlink " + rel);
  buf.resize(static_cast<std::size_t>(n));
  return buf;
}

Status copyXattrs(int src_fd, int dst_fd, const std::string& rel) {
  std::string names(4096, '\0');
  ssize_t n = ::flistxattr(src_fd, names.data(), names.size());
  if (n < 0) {
    if (errno == ENOTSUP || errno == ERANGE) return okStatus();
    return errnoStatus(errno, "listxattr " + rel);
  }
  for (std::size_t i = 0; i < static_cast<std::size_t>(n);) {
    std::string name(names.c_str() + i);
    i += name.size() + 1;
    // overlay's own attributes describe the source layer stack, not the file.
    if (name.rfind("trusted.overlay.", 0) == 0) continue;
    std::string value(65536, '\0');
    ssize_t len = ::fgetxattr(src_fd, name.c_str(), value.data(), value.size());
    if (len < 0) continue;
    if (::fsetxattr(dst_fd, name.c_str(), value.data(), static_cast<std::size_t>(len), 0) != 0 &&
        errno != ENOTSUP && errno != EPERM) {
      return errnoStatus(errno, "setxattr " + name + " on " + rel);
    }
  }
  return okStatus();
}

Status copyFileData(int src, int dst, std::uint64_t size, const std::string& rel) {
  std::uint64_t left = size;
  while (left > 0) {
    ssize_t n = ::copy_file_range(src, nullptr, dst, nullptr, left, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP) break;
      return errnoStatus(errno, "copy " + rel);
    }
    if (n == 0) break;
    left -= static_cast<std::uint64_t>(n);
  }
  // Fallback (and files that grew): plain read/write from the current offsets.
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(src, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errnoStatus(errno, "read " + rel);
    }
    if (n == 0) break;
    CAIRN_RETURN_IF_ERROR(writeAll(dst, std::string_view(buf, static_cast<std::size_t>(n))));
  }
  return okStatus();
}

// Removes whatever is at dir_fd/name unless it is a directory (directories are merged).
Status clearForNonDir(int dir_fd, const std::string& name, const std::string& rel) {
  struct stat st {};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return okStatus();
  if (S_ISDIR(st.st_mode)) {
    return failedPrecondition("cannot copy a non-directory over the directory " + rel);
  }
  if (::unlinkat(dir_fd, name.c_str(), 0) != 0) return errnoStatus(errno, "replace " + rel);
  return okStatus();
}

struct Copier {
  const CopySourceRoot& root;
  const CopyOptions& options;
  int dest_root_fd;
  CopyReport report;
  std::map<std::pair<dev_t, ino_t>, std::string> hardlinks;  // source inode → dest path

  Ownership ownerFor(const struct stat& st) const {
    if (options.chown) return *options.chown;
    if (root.is_context) return {};
    return {st.st_uid, st.st_gid};
  }

  mode_t modeFor(const struct stat& st) const {
    if (options.chmod) return *options.chmod;
    return st.st_mode & 07777;
  }

  // Writes one entry (already stat'ed at src_dir_fd/src_name) to dest_dir_fd/dest_name.
  // `top` entries were resolved (symlinks followed) inside the source root; they are opened
  // again through openInRoot so that a link never leads outside the root.
  Status put(int src_dir_fd, const std::string& src_name, const std::string& src_rel,
             const struct stat& st, int dest_dir_fd, const std::string& dest_name,
             const std::string& dest_path, bool top) {
    Ownership own = ownerFor(st);
    if (S_ISDIR(st.st_mode)) {
      if (::mkdirat(dest_dir_fd, dest_name.c_str(), 0700) != 0) {
        if (errno != EEXIST) return errnoStatus(errno, "mkdir " + dest_path);
        struct stat existing {};
        if (::fstatat(dest_dir_fd, dest_name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0 &&
            !S_ISDIR(existing.st_mode)) {
          if (::unlinkat(dest_dir_fd, dest_name.c_str(), 0) != 0 ||
              ::mkdirat(dest_dir_fd, dest_name.c_str(), 0700) != 0) {
            return errnoStatus(errno, "replace " + dest_path + " with a directory");
          }
        } else {
          return okStatus();  // an existing directory is merged into, its metadata kept
        }
      }
      UniqueFd d(::openat(dest_dir_fd, dest_name.c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!d.valid()) return errnoStatus(errno, "open " + dest_path);
      if (::fchown(d.get(), own.uid, own.gid) != 0) return errnoStatus(errno, "chown " + dest_path);
      if (::fchmod(d.get(), modeFor(st)) != 0) return errnoStatus(errno, "chmod " + dest_path);
      ++report.dirs;
      return okStatus();
    }

    CAIRN_RETURN_IF_ERROR(clearForNonDir(dest_dir_fd, dest_name, dest_path));
    if (st.st_nlink > 1 && !S_ISDIR(st.st_mode)) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      if (auto it = hardlinks.find(key); it != hardlinks.end()) {
        auto [link_parent, link_name] = splitParent(it->second);
        CAIRN_ASSIGN_OR_RETURN(UniqueFd lp,
                               openInRoot(dest_root_fd, link_parent, O_RDONLY | O_DIRECTORY));
        if (::linkat(lp.get(), link_name.c_str(), dest_dir_fd, dest_name.c_str(), 0) == 0) {
          return okStatus();
        }
        // Fall through and copy the data if the link cannot be made.
      } else {
        hardlinks.emplace(key, dest_path);
      }
    }

    timespec times[2] = {st.st_atim, st.st_mtim};
    if (S_ISLNK(st.st_mode)) {
      CAIRN_ASSIGN_OR_RETURN(std::string target, readLink(src_dir_fd, src_name, dest_path));
      if (::symlinkat(target.c_str(), dest_dir_fd, dest_name.c_str()) != 0) {
        return errnoStatus(errno, "symlink " + dest_path);
      }
      if (::fchownat(dest_dir_fd, dest_name.c_str(), own.uid, own.gid, AT_SYMLINK_NOFOLLOW) != 0) {
        return errnoStatus(errno, "chown " + dest_path);
      }
      ::utimensat(dest_dir_fd, dest_name.c_str(), times, AT_SYMLINK_NOFOLLOW);
      ++report.files;
      return okStatus();
    }
    if (S_ISREG(st.st_mode)) {
      UniqueFd in;
      if (top) {
        CAIRN_ASSIGN_OR_RETURN(in, openInRoot(root.dir_fd, src_rel, O_RDONLY));
      } else {
        in = UniqueFd(::openat(src_dir_fd, src_name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
      }
      if (!in.valid()) return errnoStatus(errno, "open source " + src_rel);
      UniqueFd out(::openat(dest_dir_fd, dest_name.c_str(),
                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out.valid()) return errnoStatus(errno, "create " + dest_path);
      CAIRN_RETURN_IF_ERROR(
          copyFileData(in.get(), out.get(), static_cast<std::uint64_t>(st.st_size), dest_path));
      // The build context carries no xattrs (BuildKit's context transfer drops them); stages
      // and images keep theirs (e.g. security.capability).
      if (!root.is_context) CAIRN_RETURN_IF_ERROR(copyXattrs(in.get(), out.get(), dest_path));
      // chown before chmod: chown clears setuid/setgid bits.
      if (::fchown(out.get(), own.uid, own.gid) != 0)
        return errnoStatus(errno, "chown " + dest_path);
      if (::fchmod(out.get(), modeFor(st)) != 0) return errnoStatus(errno, "chmod " + dest_path);
      ::futimens(out.get(), times);
      ++report.files;
      report.bytes += static_cast<std::uint64_t>(st.st_size);
      return okStatus();
    }
    if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      if (::mknodat(dest_dir_fd, dest_name.c_str(), st.st_mode & ~07777u, st.st_rdev) != 0) {
        return errnoStatus(errno, "mknod " + dest_path);
      }
      ::fchownat(dest_dir_fd, dest_name.c_str(), own.uid, own.gid, AT_SYMLINK_NOFOLLOW);
      ::fchmodat(dest_dir_fd, dest_name.c_str(), modeFor(st), 0);
      ++report.files;
      return okStatus();
    }
    return okStatus();  // sockets are not copied
  }
};

// Directories at the end of a walk get their mtimes last (writing into them changes them).
struct DirTime {
  std::string dest;
  timespec mtime;
};

}  // namespace

Result<mode_t> parseChmod(std::string_view text) {
  if (text.empty() || text.size() > 5) {
    return invalidArgument("invalid --chmod value \"" + std::string(text) +
                           "\": want an octal mode such as 755");
  }
  mode_t mode = 0;
  for (char c : text) {
    if (c < '0' || c > '7') {
      return invalidArgument("invalid --chmod value \"" + std::string(text) +
                             "\": only octal modes are supported");
    }
    mode = mode * 8 + static_cast<mode_t>(c - '0');
  }
  if (mode > 07777) return invalidArgument("invalid --chmod value \"" + std::string(text) + "\"");
  return mode;
}

Result<std::vector<SelectedSource>> selectSources(const CopySourceRoot& root,
                                                  const std::vector<std::string>& patterns,
                                                  const std::vector<std::string>& excludes) {
  CAIRN_ASSIGN_OR_RETURN(Filter filter, makeFilter(root, excludes));
  std::vector<SelectedSource> out;
  for (const std::string& pattern : patterns) {
    std::string rel = relativePattern(pattern);
    std::size_t before = out.size();
    std::vector<std::string> parts =
        rel.empty() ? std::vector<std::string>{} : splitString(rel, '/');
    int excluded = 0;
    CAIRN_RETURN_IF_ERROR(globInto(root.dir_fd, filter, parts, 0, "", out, excluded));
    if (out.size() == before && excluded == 0) {
      return notFound(
          "\"" + pattern + "\": not found" +
          (root.is_context ? " in the build context (or excluded by .dockerignore)" : ""));
    }
  }
  return out;
}

Result<std::string> digestSources(const CopySourceRoot& root,
                                  const std::vector<SelectedSource>& sources,
                                  const std::vector<std::string>& excludes) {
  CAIRN_ASSIGN_OR_RETURN(Filter filter, makeFilter(root, excludes));
  Sha256 h;
  auto field = [&](std::string_view s) {
    h.update(std::to_string(s.size()));
    h.update(":");
    h.update(s);
  };
  for (const SelectedSource& source : sources) {
    field("source");
    field(source.path);
    CAIRN_RETURN_IF_ERROR(walkSource(
        root.dir_fd, filter, source,
        [&](const std::string& rel, const struct stat& st, int dir_fd,
            const std::string& name) -> Status {
          bool top = rel == source.path;
          field(rel);
          field(std::string(1, typeChar(st.st_mode)));
          field(std::to_string(st.st_mode & 07777));
          if (!root.is_context) field(std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid));
          if (S_ISLNK(st.st_mode)) {
            CAIRN_ASSIGN_OR_RETURN(std::string target, readLink(dir_fd, name, rel));
            field(target);
          } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
            field(std::to_string(st.st_rdev));
          } else if (S_ISREG(st.st_mode)) {
            UniqueFd fd;
            if (top) {
              CAIRN_ASSIGN_OR_RETURN(fd, openInRoot(root.dir_fd, rel, O_RDONLY));
            } else {
              fd = UniqueFd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
            }
            if (!fd.valid()) return errnoStatus(errno, "open " + rel);
            Sha256 content;
            char buf[1 << 16];
            for (;;) {
              ssize_t n = ::read(fd.get(), buf, sizeof buf);
              if (n < 0) {
                if (errno == EINTR) continue;
                return errnoStatus(errno, "read " + rel);
              }
              if (n == 0) break;
              content.update(buf, static_cast<std::size_t>(n));
            }
            field(content.finishHex());
          }
          return okStatus();
        }));
  }
  return h.finishHex();
}

Result<CopyReport> copySources(const CopySourceRoot& root,
                               const std::vector<SelectedSource>& sources, int dest_root_fd,
                               const std::string& dest, const CopyOptions& options) {
  CAIRN_ASSIGN_OR_RETURN(Filter filter, makeFilter(root, options.excludes));
  const bool dest_is_dir_syntax =
      !dest.empty() && (dest.back() == '/' || dest == "." || dest.ends_with("/."));
  const std::string dest_clean = cleanAbsolutePath(dest);
  const bool many = sources.size() > 1;
  std::optional<Ownership> created_owner = options.chown;

  // Where does each source go?  `into_dir`: dest is a directory receiving the source (a file
  // as <dest>/<basename>, a directory's contents merged in).
  bool into_dir = dest_is_dir_syntax || many;
  if (!into_dir && sources.size() == 1 && !sources[0].is_dir) {
    auto existing = openInRoot(dest_root_fd, dest_clean, O_RDONLY | O_DIRECTORY);
    into_dir = existing.ok();
  }

  Copier copier{root, options, dest_root_fd, {}, {}};
  std::vector<DirTime> dir_times;
  for (const SelectedSource& source : sources) {
    std::string base_dest;  // where the source's own entry lands
    if (source.is_dir) {
      base_dest = dest_clean;
    } else if (into_dir) {
      auto slash = source.path.rfind('/');
      base_dest = cleanAbsolutePath(
          dest_clean + "/" +
          (slash == std::string::npos ? source.path : source.path.substr(slash + 1)));
    } else {
      base_dest = dest_clean;
    }
    // Parents of the destination are created 0755 (owned by --chown's user, as BuildKit does).
    auto [parent, leaf] = splitParent(base_dest);
    CAIRN_ASSIGN_OR_RETURN(
        UniqueFd parent_fd,
        mkdirAllInRoot(dest_root_fd, source.is_dir ? base_dest : parent, 0755, created_owner));
    (void)leaf;

    CAIRN_RETURN_IF_ERROR(walkSource(
        root.dir_fd, filter, source,
        [&](const std::string& rel, const struct stat& st, int dir_fd,
            const std::string& name) -> Status {
          bool top = rel == source.path;
          if (top && source.is_dir) return okStatus();  // contents only
          std::string sub =
              top ? std::string() : rel.substr(source.path.empty() ? 0 : source.path.size() + 1);
          std::string target = top ? base_dest : cleanAbsolutePath(base_dest + "/" + sub);
          auto [tparent, tname] = splitParent(target);
          CAIRN_ASSIGN_OR_RETURN(UniqueFd tdir,
                                 openInRoot(dest_root_fd, tparent, O_RDONLY | O_DIRECTORY));
          CAIRN_RETURN_IF_ERROR(copier.put(dir_fd, name, rel, st, tdir.get(), tname, target, top));
          if (S_ISDIR(st.st_mode)) dir_times.push_back({target, st.st_mtim});
          return okStatus();
        }));
  }
  // Directory mtimes last, deepest first, so that writing children does not bump them.
  for (auto it = dir_times.rbegin(); it != dir_times.rend(); ++it) {
    auto fd = openInRoot(dest_root_fd, it->dest, O_RDONLY | O_DIRECTORY);
    if (!fd.ok()) continue;
    timespec times[2] = {it->mtime, it->mtime};
    ::futimens(fd->get(), times);
  }
  return copier.report;
}

}  // namespace cairn::build
