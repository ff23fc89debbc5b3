// The step cache index: which layer a build step's cache key produced, and which blob each
// built layer was exported as. SQLite under <data>/cache/index.db, so it survives restarts and
// several builds may use it at once. Entries are evicted least-recently-used under a size
// budget; evicted layers are released to the LayerStore's garbage collection.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/digest.h"
#include "cairn/common/status.h"

struct sqlite3;

namespace cairn::build {

struct CacheEntry {
  Digest chain_id;  //!< the layer the step produced (on top of its parent's chain)
  Digest diff_id;
  std::uint64_t size = 0;  //!< bytes of file content in the layer
};

struct ExportedLayer {
  Digest digest;  //!< the blob (a build's own layers: the uncompressed tar)
  std::uint64_t size = 0;
  std::string media_type;
};

class CacheIndex {
 public:
  static Result<std::unique_ptr<CacheIndex>> open(const std::filesystem::path& db_path);
  ~CacheIndex();
  CacheIndex(const CacheIndex&) = delete;
  CacheIndex& operator=(const CacheIndex&) = delete;

  //! The entry for a step key, marking it used now; nullopt on a miss.
  Result<std::optional<CacheEntry>> lookup(const std::string& key);
  Status put(const std::string& key, const CacheEntry& entry);
  Status remove(const std::string& key);

  //! The blob a built layer is stored as (since builds store layers uncompressed: the layer
  //! tar, digest == diff id), by diff id. A GC root while the step's layer exists.
  Result<std::optional<ExportedLayer>> exported(const Digest& diff_id);
  Status putExported(const Digest& diff_id, const ExportedLayer& layer);

  //! Compressed copies of uncompressed layers made when an image left the machine (a push),
  //! by diff id and compression name ("gzip", "zstd"), so the next push reuses them. Not GC
  //! roots: a copy the store GC removed is simply made again.
  Result<std::optional<ExportedLayer>> compressedCopy(const Digest& diff_id,
                                                      std::string_view compression);
  Status putCompressedCopy(const Digest& diff_id, std::string_view compression,
                           const ExportedLayer& layer);

  //! Chain ids of every cached step: roots for the LayerStore's GC.
  Result<std::vector<Digest>> liveChainIds();
  //! Total size of cached layers (each chain id counted once).
  Result<std::uint64_t> totalSize();
  //! Drops least-recently-used entries until the total is within `budget_bytes`; returns the
  //! number of entries dropped.
  Result<std::size_t> evict(std::uint64_t budget_bytes);

 private:
  explicit CacheIndex(sqlite3* db) : db_(db) {}
  Status exec(const char* sql);
  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace cairn::build
