#include "cairn/common/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <system_error>

#include "cairn/common/crypto.h"
#include "cairn/common/encoding.h"

namespace cairn {

namespace fs = std::filesystem;

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Result<std::string> readFile(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errnoStatus(errno, "open " + path.string());
  return readAll(fd.get(), path);
}

Result<std::string> readAll(int fd, const fs::path& path) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errnoStatus(errno, "read " + path.string());
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

Status writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errnoStatus(errno, "write");
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return okStatus();
}

Status fsyncDir(const fs::path& dir) {
  UniqueFd fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return errnoStatus(errno, "open directory " + dir.string());
  if (::fsync(fd.get()) != 0) return errnoStatus(errno, "fsync directory " + dir.string());
  return okStatus();
}

Status writeFileDurable(const fs::path& path, std::string_view data, mode_t mode) {
  fs::path dir = path.parent_path();
  fs::path tmp = dir / ("." + path.filename().string() + ".tmp-" + hexEncode(randomBytes(6)));
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd.valid()) return errnoStatus(errno, "create " + tmp.string());
  auto fail = [&](Status s) {
    ::unlink(tmp.c_str());
    return s;
  };
  if (Status s = writeAll(fd.get(), data); !s.ok()) return fail(s.withContext(tmp.string()));
  if (::fchmod(fd.get(), mode) != 0) return fail(errnoStatus(errno, "chmod " + tmp.string()));
  if (::fsync(fd.get()) != 0) return fail(errnoStatus(errno, "fsync " + tmp.string()));
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(errnoStatus(errno, "rename to " + path.string()));
  }
  return fsyncDir(dir);
}

Result<TempDir> TempDir::create(std::string_view prefix, const fs::path& parent) {
  fs::path base = parent;
  if (base.empty()) {
    const char* tmpdir = std::getenv("TMPDIR");
    base = tmpdir && *tmpdir ? tmpdir : "/tmp";
  }
  std::string tmpl = (base / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) return errnoStatus(errno, "mkdtemp " + tmpl);
  return TempDir(fs::path(tmpl));
}

TempDir& TempDir::operator=(TempDir&& o) noexcept {
  if (this != &o) {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
    path_ = std::move(o.path_);
    o.path_.clear();
  }
  return *this;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace cairn
