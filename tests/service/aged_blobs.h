// Blob age for the GC tests: the GC keeps blobs committed after its walk started (and a grace
// window before), so a test makes the blobs it wants collectable an hour old first.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>

namespace cairn::service {

//! Makes every blob committed so far an hour old, as blobs of earlier builds are: the GC's
//! "committed after the walk started" window then holds only what the test commits later. Blobs
//! are the files under <data_dir>/blobs/sha256 and the layer-tar notes under
//! <data_dir>/blobs/layer-tars (named by their digest's hex; the lock files there are not blobs).
inline void ageAllBlobsIn(const std::filesystem::path& data_dir) {
  timespec old[2];
  ::clock_gettime(CLOCK_REALTIME, &old[0]);
  old[0].tv_sec -= 3600;
  old[1] = old[0];
  for (const char* kind : {"sha256", "layer-tars"}) {
    std::error_code ec;
    const std::filesystem::path dir = data_dir / "blobs" / kind;
    if (!std::filesystem::exists(dir, ec)) continue;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (e.path().filename().string().size() != 64) continue;
      ASSERT_EQ(::utimensat(AT_FDCWD, e.path().c_str(), old, 0), 0) << e.path();
    }
  }
}

}  // namespace cairn::service
