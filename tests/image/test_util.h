// Helpers for the image tests: a temporary working directory with files in it.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cairn/common/fs.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::testing {

//! Creates a TempDir, makes it the current directory (and $HOME = <dir>/home) for the test's
//! lifetime, and restores both afterwards.
class ScopedWorkDir {
 public:
  ScopedWorkDir() : dir_(TempDir::create("cairn-image-test").value()) {
    old_cwd_ = std::filesystem::current_path();
    if (const char* h = std::getenv("HOME")) old_home_ = h;
    std::filesystem::create_directories(dir_.path() / "home");
    ::setenv("HOME", (dir_.path() / "home").c_str(), 1);
    std::filesystem::current_path(dir_.path());
  }
  ~ScopedWorkDir() {
    std::filesystem::current_path(old_cwd_);
    if (old_home_.empty()) {
      ::unsetenv("HOME");
    } else {
      ::setenv("HOME", old_home_.c_str(), 1);
    }
  }
  ScopedWorkDir(const ScopedWorkDir&) = delete;
  ScopedWorkDir& operator=(const ScopedWorkDir&) = delete;

  const std::filesystem::path& path() const { return dir_.path(); }

  //! Writes `content` to the relative path `rel`, creating parent directories.
  void write(const std::string& rel, const std::string& content, mode_t mode = 0644) const {
    std::filesystem::path p = dir_.path() / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    ::chmod(p.c_str(), mode);
  }
  void mkdir(const std::string& rel) const {
    std::filesystem::create_directories(dir_.path() / rel);
  }

 private:
  TempDir dir_;
  std::filesystem::path old_cwd_;
  std::string old_home_;
};

}  // namespace cairn::testing
