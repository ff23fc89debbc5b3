// Context hashing (the SDK's computeHashForPathMd5) and the context archive (node-tar v7's
// Pack with portable: true). The ustar headers are written here rather than with libarchive:
// libarchive's ustar/pax writers fill uid/gid/mtime with zero digits, write checksums as
// "NNNNNN\0 ", name PAX headers differently and pad to 10 KiB records, while node-tar leaves
// those fields NUL, writes "NNNNNN \0", names PAX headers "PaxHeader/<basename>" and ends after
// two zero blocks; byte identity needs node-tar's exact encoder, which is reproduced below.
#include "cairn/image/context.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <vector>

#include "cairn/common/crypto.h"
#include "cairn/common/fs.h"
#include "cairn/dockerfile/dockerignore.h"
#include "js_compat.h"

namespace cairn {

namespace {

namespace js = image::js;

// Directory entries in libuv scandir order (strcmp), without "." and "..".
Result<std::vector<std::string>> readDirSorted(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errnoStatus(errno, "opendir " + dir);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Status hashFileInto(const std::string& path, Md5* md5) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errnoStatus(errno, "open " + path);
  std::string buf(64 * 1024, '\0');
  while (true) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errnoStatus(errno, "read " + path);
    }
    if (n == 0) break;
    md5->update(buf.data(), static_cast<std::size_t>(n));
  }
  return okStatus();
}

// The context-relative prefix of an entry's members, for .dockerignore matching: the
// normalised archive path without "./" and trailing "/"; nullopt when it is not relative.
std::optional<std::string> contextPrefix(const ContextEntry& entry) {
  std::string p = js::pathe::normalize(entry.archivePath);
  if (js::pathe::isAbsolute(p)) return std::nullopt;
  while (!p.empty() && p.back() == '/')
    p.pop_back();
  if (p == "." || p.empty()) return std::string();
  return p;
}

std::string joinRel(const std::string& a, const std::string& b) {
  return a.empty() ? b : a + "/" + b;
}

struct IgnoreCtx {
  const dockerfile::DockerIgnore* ignore = nullptr;
  std::string prefix;  // context-relative path of the entry root
  bool excluded(const std::string& rel) const {
    return ignore != nullptr && ignore->excluded(joinRel(prefix, rel));
  }
  bool mayReinclude(const std::string& rel) const {
    return ignore != nullptr && ignore->mayReincludeUnder(joinRel(prefix, rel));
  }
};

Status hashDirectory(const std::string& dir, const std::string& rel, const IgnoreCtx& ig, Md5* md5,
                     int depth) {
  if (depth > 4096) return failedPrecondition("directory nesting too deep at " + dir);
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, readDirSorted(dir));
  struct Item {
    std::string name;
    bool is_dir;
    bool is_file;
    bool excluded;
  };
  std::vector<Item> items;
  for (const std::string& name : names) {
    struct stat st {};
    std::string full = dir + "/" + name;
    if (::lstat(full.c_str(), &st) != 0) return errnoStatus(errno, "lstat " + full);
    Item item{name, S_ISDIR(st.st_mode), S_ISREG(st.st_mode), false};
    std::string child_rel = joinRel(rel, name);
    if (ig.excluded(child_rel)) {
      if (!(item.is_dir && ig.mayReinclude(child_rel))) continue;
      item.excluded = true;
    }
    items.push_back(std::move(item));
  }
  bool has_subdirs =
      std::any_of(items.begin(), items.end(), [](const Item& i) { return i.is_dir; });
  bool has_files = std::any_of(items.begin(), items.end(), [](const Item& i) { return i.is_file; });
  if (!has_subdirs && !has_files) md5->update(rel);
  for (const Item& item : items) {
    std::string full = dir + "/" + item.name;
    std::string child_rel = joinRel(rel, item.name);
    if (item.is_dir) {
      CAIRN_RETURN_IF_ERROR(hashDirectory(full, child_rel, ig, md5, depth + 1));
    } else if (item.is_file) {
      md5->update(child_rel);
      CAIRN_RETURN_IF_ERROR(hashFileInto(full, md5));
    }
  }
  return okStatus();
}

// ---------------------------------------------------------------------------------------------
// node-tar's header encoder

constexpr std::size_t kBlock = 512;

// encString: writes the UTF-8 of `s` into [off, off+size) without splitting a character, NUL
// fills the rest; true when `s` is non-ASCII or longer than the field (then a PAX header is due).
bool encString(std::string& buf, std::size_t off, std::size_t size,
               const std::optional<std::string>& s) {
  if (!s) return false;
  std::size_t n = 0;
  while (n < s->size()) {
    auto b = static_cast<unsigned char>((*s)[n]);
    // A stray byte counts as one: the field is cut at byte granularity there.
    std::size_t len = std::max<std::size_t>(1, utf8SequenceLength(b));
    if (n + len > size) break;
    n += len;
  }
  std::copy_n(s->data(), n, buf.begin() + static_cast<std::ptrdiff_t>(off));
  std::fill(buf.begin() + static_cast<std::ptrdiff_t>(off + n),
            buf.begin() + static_cast<std::ptrdiff_t>(off + size), '\0');
  std::size_t units = js::utf16Length(*s);
  return units != s->size() || units > size;
}

// encNumber: "%0*o " + NUL (or digits + NUL when they fill size-1), or the base-256 form.
bool encNumber(std::string& buf, std::size_t off, std::size_t size, std::optional<double> num) {
  if (!num) return false;
  const double max = size == 12 ? 8589934591.0 : 2097151.0;
  if (*num > max || *num < 0) {
    // large-numbers.js: 0x80 + big-endian magnitude, or 0xff + two's complement.
    auto v = static_cast<std::int64_t>(*num);
    bool negative = v < 0;
    std::uint64_t mag = negative ? static_cast<std::uint64_t>(-v) : static_cast<std::uint64_t>(v);
    buf[off] = static_cast<char>(negative ? 0xff : 0x80);
    bool flipped = false;
    for (std::size_t i = size; i > 1; --i) {
      auto byte = static_cast<unsigned>(mag & 0xff);
      mag >>= 8;
      unsigned out = byte;
      if (negative) {
        if (flipped) {
          out = 0xff ^ byte;
        } else if (byte == 0) {
          out = 0;
        } else {
          flipped = true;
          out = ((0xff ^ byte) + 1) & 0xff;
        }
      }
      buf[off + i - 1] = static_cast<char>(out);
    }
    return true;
  }
  auto v = static_cast<std::uint64_t>(std::floor(*num));
  char digits[32];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v, 8);
  std::string str(digits, end);
  std::string field;
  if (str.size() == size - 1) {
    field = str;
  } else {
    field = std::string(size > str.size() + 2 ? size - str.size() - 2 : 0, '0') + str + " ";
  }
  field += '\0';
  // buf.write(str, off, size, 'ascii') writes at most `size` bytes.
  std::copy_n(field.data(), std::min(field.size(), size),
              buf.begin() + static_cast<std::ptrdiff_t>(off));
  return false;
}

struct HeaderFields {
  std::string path;
  std::optional<std::string> linkpath;
  double mode = 0;
  std::optional<double> size;
  std::optional<double> mtime;  // seconds (may be fractional)
  char type = '0';
  std::optional<std::string> uname;
  std::optional<std::string> gname;
};

// splitPrefix(p, 155) from node-tar's header.js.
struct Split {
  std::string path;
  std::string prefix;
  bool need_pax;
};
Split splitPrefix(const std::string& p, std::size_t prefix_size) {
  constexpr std::size_t kPathSize = 100;
  if (p.size() < kPathSize) return {p, "", false};
  std::string pp = js::posixBasename(p);
  std::string prefix = js::posixDirname(p);
  const std::string root = !p.empty() && p[0] == '/' ? "/" : ".";
  std::optional<Split> ret;
  do {
    if (pp.size() <= kPathSize && prefix.size() <= prefix_size) {
      ret = Split{pp, prefix, false};
    } else if (pp.size() > kPathSize && prefix.size() <= prefix_size) {
      ret = Split{js::utf16Slice(pp, 0, kPathSize - 1), prefix, true};
    } else {
      std::string b = js::posixBasename(prefix);
      pp = js::nodeJoin(b, pp);
      prefix = js::posixDirname(prefix);
    }
  } while (prefix != root && !ret);
  if (!ret) ret = Split{js::utf16Slice(p, 0, kPathSize - 1), "", true};
  return *ret;
}

// Header.encode(): one 512-byte block; *need_pax says whether a PAX header must precede it.
std::string encodeHeader(const HeaderFields& h, bool* need_pax) {
  std::string buf(kBlock, '\0');
  Split split = splitPrefix(h.path, 155);
  bool pax = split.need_pax;
  pax = encString(buf, 0, 100, split.path) || pax;
  pax = encNumber(buf, 100, 8, h.mode) || pax;
  pax = encNumber(buf, 124, 12, h.size) || pax;
  pax = encNumber(buf, 136, 12, h.mtime) || pax;
  buf[156] = h.type;
  pax = encString(buf, 157, 100, h.linkpath) || pax;
  std::copy_n(
      "ustar\0"
      "00",
      8, buf.begin() + 257);
  pax = encString(buf, 265, 32, h.uname) || pax;
  pax = encString(buf, 297, 32, h.gname) || pax;
  pax = encNumber(buf, 329, 8, 0.0) || pax;
  pax = encNumber(buf, 337, 8, 0.0) || pax;
  pax = encString(buf, 345, 155, split.prefix) || pax;
  if (buf[475] != '\0') {
    pax = encString(buf, 345, 155, split.prefix) || pax;
  } else {
    pax = encString(buf, 345, 130, split.prefix) || pax;
  }
  unsigned sum = 8 * 0x20;
  for (std::size_t i = 0; i < 148; ++i)
    sum += static_cast<unsigned char>(buf[i]);
  for (std::size_t i = 156; i < kBlock; ++i)
    sum += static_cast<unsigned char>(buf[i]);
  encNumber(buf, 148, 8, static_cast<double>(sum));
  *need_pax = pax;
  return buf;
}

// A JavaScript Number printed the way String(n) does for the values PAX headers carry.
std::string jsNumber(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e21) {
    return std::to_string(static_cast<long long>(v));
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, end);
}

std::string paxField(std::string_view field, const std::string& value) {
  std::string s = " " + std::string(field) + "=" + value + "\n";
  std::size_t byte_len = s.size();
  std::size_t digits = std::to_string(byte_len).size();
  std::size_t pow = 1;
  for (std::size_t i = 0; i < digits; ++i)
    pow *= 10;
  if (byte_len + digits >= pow) ++digits;
  return std::to_string(digits + byte_len) + s;
}

std::string encodePax(const std::string& path, const std::optional<std::string>& linkpath,
                      std::optional<double> mtime, double size) {
  std::string body = paxField("path", path);
  if (linkpath) body += paxField("linkpath", *linkpath);
  if (mtime) body += paxField("mtime", jsNumber(*mtime));
  body += paxField("size", jsNumber(size));
  HeaderFields h;
  h.path = js::utf16Slice("PaxHeader/" + js::posixBasename(path), 0, 99);
  h.mode = 0644;
  h.size = static_cast<double>(body.size());
  h.mtime = mtime;
  h.type = 'x';
  h.linkpath = std::string();
  h.uname = std::string();
  h.gname = std::string();
  bool unused = false;
  std::string out = encodeHeader(h, &unused);
  out += body;
  out.append((kBlock - body.size() % kBlock) % kBlock, '\0');
  return out;
}

// modeFix(mode, isDir, portable=true)
unsigned modeFix(unsigned mode, bool is_dir) {
  mode &= 07777;
  mode = (mode | 0600) & ~022u;
  if (is_dir) {
    if (mode & 0400) mode |= 0100;
    if (mode & 040) mode |= 010;
    if (mode & 04) mode |= 01;
  }
  return mode;
}

// Node's stat().mtime: a Date of Math.round(sec * 1e3 + nsec / 1e6) milliseconds; node-tar
// writes it as ms / 1000.
double nodeMtimeSeconds(const struct stat& st) {
  double ms = static_cast<double>(st.st_mtim.tv_sec) * 1000.0 +
              static_cast<double>(st.st_mtim.tv_nsec) / 1e6;
  double date_ms = std::floor(ms + 0.5);
  return date_ms / 1000.0;
}

// stripAbsolutePath for POSIX paths: drops leading '/' characters.
std::string stripAbsolute(std::string p) {
  std::size_t k = 0;
  while (k < p.size() && p[k] == '/')
    ++k;
  return p.substr(k);
}

struct Member {
  std::string header;     // PAX header (if any) + ustar header
  std::string file_path;  // "" when no data follows
  std::uint64_t size = 0;
};

std::string nodeResolve(const std::string& cwd, const std::string& p) {
  if (!p.empty() && p[0] == '/') return js::nodeJoin(p, "");
  return js::nodeJoin(cwd, p);
}

Result<std::vector<Member>> planArchive(const ContextEntry& entry) {
  const std::string source = js::pathe::resolve(entry.sourcePath);
  const std::string norm_source = js::pathe::normalize(source);
  const std::string norm_archive = js::pathe::normalize(entry.archivePath);
  std::string base_prefix;
  if (norm_archive == ".") {
    base_prefix = norm_source;
  } else {
    // slice(0, len(source) - len(archive)) in UTF-16 units; a negative end counts from the end.
    long long end = static_cast<long long>(js::utf16Length(norm_source)) -
                    static_cast<long long>(js::utf16Length(norm_archive));
    if (end < 0) end = std::max(0LL, static_cast<long long>(js::utf16Length(norm_source)) + end);
    base_prefix = js::utf16Slice(norm_source, 0, static_cast<std::size_t>(end));
  }
  std::string cwd = base_prefix;
  if (cwd.empty()) {
    std::error_code ec;
    cwd = std::filesystem::current_path(ec).string();
  }
  while (cwd.size() > 1 && cwd.back() == '/' && false)
    cwd.pop_back();

  std::optional<std::string> ctx_prefix = contextPrefix(entry);
  IgnoreCtx ig;
  if (entry.dockerignore && ctx_prefix) {
    ig.ignore = entry.dockerignore.get();
    ig.prefix = *ctx_prefix;
  }

  struct Job {
    std::string path;  // as node-tar's PackJob.path
    std::string rel;   // below the entry root, for .dockerignore
    bool root = false;
  };
  std::deque<Job> queue;
  queue.push_back({norm_archive.empty() ? "./" : norm_archive, "", true});
  std::map<std::pair<dev_t, ino_t>, std::string> link_cache;  // → first absolute path
  std::vector<Member> members;
  std::size_t guard = 0;
  while (!queue.empty()) {
    if (++guard > 10'000'000) return resourceExhausted("context too large: " + entry.sourcePath);
    Job job = std::move(queue.front());
    queue.pop_front();
    const std::string absolute = nodeResolve(cwd, job.path);
    struct stat st {};
    if (::lstat(absolute.c_str(), &st) != 0) {
      if (job.root && errno == ENOENT) {
        return notFound("Path does not exist: " + entry.sourcePath);
      }
      return errnoStatus(errno, "lstat " + absolute);
    }
    bool skip_header = false;
    if (!job.root && ig.excluded(job.rel)) {
      if (!(S_ISDIR(st.st_mode) && ig.mayReinclude(job.rel))) continue;
      skip_header = true;  // walked only for re-included descendants
    }
    if (S_ISDIR(st.st_mode)) {
      CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, readDirSorted(absolute));
      std::string base = job.path == "./" ? "" : job.path;
      while (!base.empty() && base.back() == '/')
        base.pop_back();
      if (job.path != "./") base += '/';
      for (const std::string& name : names) {
        queue.push_back({base + name, joinRel(job.rel, name), false});
      }
    }
    if (skip_header) continue;

    std::string path = stripAbsolute(job.path);
    if (path.empty()) path = "./";
    HeaderFields h;
    std::optional<double> mtime = nodeMtimeSeconds(st);
    double size = 0;
    Member m;
    if (S_ISDIR(st.st_mode)) {
      if (path.back() != '/') path += '/';
      h.type = '5';
      mtime.reset();  // portable: directories carry no mtime
    } else if (S_ISLNK(st.st_mode)) {
      h.type = '2';
      std::string target(static_cast<std::size_t>(st.st_size) + 256, '\0');
      ssize_t n = ::readlink(absolute.c_str(), target.data(), target.size());
      if (n < 0) return errnoStatus(errno, "readlink " + absolute);
      target.resize(static_cast<std::size_t>(n));
      h.linkpath = target;
    } else if (S_ISREG(st.st_mode)) {
      h.type = '0';
      size = static_cast<double>(st.st_size);
      if (st.st_nlink > 1) {
        auto key = std::make_pair(st.st_dev, st.st_ino);
        auto it = link_cache.find(key);
        if (it != link_cache.end() && it->second.starts_with(cwd)) {
          h.type = '1';
          h.linkpath = js::pathe::relative(cwd, it->second);
          size = 0;
        } else {
          link_cache[key] = absolute;
        }
      }
      if (h.type == '0' && st.st_size > 0) {
        m.file_path = absolute;
        m.size = static_cast<std::uint64_t>(st.st_size);
      }
    } else {
      continue;  // sockets, fifos, devices: node-tar writes nothing for them
    }
    h.path = path;
    h.mode = modeFix(st.st_mode, S_ISDIR(st.st_mode));
    h.size = size;
    h.mtime = mtime;
    bool need_pax = false;
    std::string header = encodeHeader(h, &need_pax);
    if (need_pax) m.header = encodePax(path, h.linkpath, mtime, size);
    m.header += header;
    members.push_back(std::move(m));
  }
  return members;
}

std::uint64_t paddedSize(std::uint64_t n) {
  return (n + kBlock - 1) / kBlock * kBlock;
}

}  // namespace

Result<std::string> contextHash(const ContextEntry& entry,
                                const dockerfile::DockerIgnore* dockerignore) {
  const std::string abs = js::pathe::resolve(entry.sourcePath);
  struct stat st {};
  if (::stat(abs.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return notFound("Path does not exist: " + entry.sourcePath);
    }
    return errnoStatus(errno, "stat " + abs);
  }
  Md5 md5;
  md5.update(entry.archivePath);
  if (S_ISREG(st.st_mode)) {
    CAIRN_RETURN_IF_ERROR(hashFileInto(abs, &md5));
  } else {
    IgnoreCtx ig;
    std::optional<std::string> prefix = contextPrefix(entry);
    if (dockerignore != nullptr && prefix) {
      ig.ignore = dockerignore;
      ig.prefix = *prefix;
    }
    CAIRN_RETURN_IF_ERROR(hashDirectory(abs, "", ig, &md5, 0));
  }
  return md5.finishHex();
}

Result<std::string> contextHash(const ContextEntry& entry) {
  return contextHash(entry, entry.dockerignore.get());
}

Result<std::uint64_t> contextArchiveSize(const ContextEntry& entry) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<Member> members, planArchive(entry));
  std::uint64_t total = 2 * kBlock;
  for (const Member& m : members)
    total += m.header.size() + paddedSize(m.size);
  return total;
}

Status writeContextArchive(const ContextEntry& entry, const ContextSink& sink) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<Member> members, planArchive(entry));
  std::string buf;
  for (const Member& m : members) {
    CAIRN_RETURN_IF_ERROR(sink(m.header));
    if (m.size == 0) continue;
    UniqueFd fd(::open(m.file_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return errnoStatus(errno, "open " + m.file_path);
    std::uint64_t remain = m.size;
    buf.resize(1 << 20);
    while (remain > 0) {
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(remain, buf.size()));
      ssize_t n = ::read(fd.get(), buf.data(), want);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errnoStatus(errno, "read " + m.file_path);
      }
      if (n == 0) {
        return failedPrecondition("file shrank while archiving the context: " + m.file_path);
      }
      CAIRN_RETURN_IF_ERROR(sink(std::string_view(buf.data(), static_cast<std::size_t>(n))));
      remain -= static_cast<std::uint64_t>(n);
    }
    char extra = 0;
    if (::read(fd.get(), &extra, 1) > 0) {
      return failedPrecondition("file grew while archiving the context: " + m.file_path);
    }
    std::uint64_t pad = paddedSize(m.size) - m.size;
    if (pad > 0) CAIRN_RETURN_IF_ERROR(sink(std::string(pad, '\0')));
  }
  return sink(std::string(2 * kBlock, '\0'));
}

std::string daytonaSnapshotRef(std::string_view dockerfile_content,
                               std::vector<std::string> context_hashes) {
  std::sort(context_hashes.begin(), context_hashes.end(),
            [](const std::string& a, const std::string& b) { return js::utf16Less(a, b); });
  Sha256 sha;
  sha.update(dockerfile_content);
  for (const std::string& h : context_hashes)
    sha.update(h);
  return "daytona-" + sha.finishHex() + ":daytona";
}

Result<std::string> contextArchive(const ContextEntry& entry) {
  std::string out;
  Status s = writeContextArchive(entry, [&out](std::string_view chunk) {
    out.append(chunk);
    return okStatus();
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace cairn
