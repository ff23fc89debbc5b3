// Blob age for the GC tests: the GC keeps blobs committed after its walk started (and a grace
// window before), so a test makes the blobs it wants collectable an hour old first.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>

namespace cairn::service {

//! Makes every blob committed so far under <data_dir>/blobs/sha256 an hour old, as blobs of
//! earlier builds are: the GC's "committed after the walk started" window then holds only what
//! the test commits later.
inline void ageAllBlobsIn(const std::filesystem::path& data_dir) {
  timespec old[2];
  ::clock_gettime(CLOCK_REALTIME, &old[0]);
  old[0].tv_sec -= 3600;
  old[1] = old[0];
  for (const auto& e : std::filesystem::directory_iterator(data_dir / "blobs" / "sha256")) {
    ASSERT_EQ(::utimensat(AT_FDCWD, e.path().c_str(), old, 0), 0) << e.path();
  }
}

}  // namespace cairn::service
