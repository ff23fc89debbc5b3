// Filesystem helpers: whole-file reads, durable writes (fsync → rename, STYLE.md §12), and a
// file descriptor owner.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "cairn/common/status.h"

namespace cairn {

//! Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

Result<std::string> readFile(const std::filesystem::path& path);
//! Reads `fd` to its end (retrying on EINTR); `path` names it in errors.
Result<std::string> readAll(int fd, const std::filesystem::path& path);

//! Writes all of `data` to `fd`, retrying on EINTR and short writes.
Status writeAll(int fd, std::string_view data);

//! Writes `data` to a temporary file beside `path`, fsyncs it, renames it over `path` and
//! fsyncs the directory: readers see the old content or the new, never a mix.
Status writeFileDurable(const std::filesystem::path& path, std::string_view data,
                        mode_t mode = 0644);

//! fsync of a directory (after a rename or a create inside it).
Status fsyncDir(const std::filesystem::path& dir);

//! A directory removed (recursively) on destruction. For work dirs and tests.
class TempDir {
 public:
  //! Creates a fresh directory under `parent` (default: $TMPDIR or /tmp) named prefix-XXXXXX.
  static Result<TempDir> create(std::string_view prefix = "cairn",
                                const std::filesystem::path& parent = {});
  TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  TempDir& operator=(TempDir&& o) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::filesystem::path& path() const { return path_; }

 private:
  explicit TempDir(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

}  // namespace cairn
