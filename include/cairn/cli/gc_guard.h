// The store protection a CLI command holds while it writes blobs or layers that no catalog tag
// reaches yet (build, pull, import, push's compressed copies, base bootstrap): a `cairn serve`
// on the same data directory defers its garbage collection until the command ends.
#pragma once

#include <filesystem>
#include <iostream>

#include "cairn/common/status.h"
#include "cairn/service/store_gc.h"

namespace cairn::cli {

inline Result<service::StoreGcLock> deferStoreGc(const std::filesystem::path& data_dir) {
  return service::StoreGcLock::shared(data_dir, [] {
    std::cerr << "waiting for garbage collection on this data directory to finish\n";
  });
}

}  // namespace cairn::cli
