// An in-memory BlobStore: the test double for code that takes a BlobStore (STYLE.md §3), and
// the second implementation the store's conformance suite runs against. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "cairn/store/blob_store.h"

namespace cairn::store {

class MemoryBlobStore final : public BlobStore {
 public:
  MemoryBlobStore() = default;

  Result<BlobInfo> info(const Digest& digest) const override;
  Result<std::unique_ptr<BlobReadStream>> openRead(const Digest& digest) const override;
  Result<std::unique_ptr<BlobWriter>> writer() override;
  Status walk(const std::function<Status(const BlobInfo&)>& fn) const override;
  Status remove(const Digest& digest) override;

 private:
  friend class MemoryBlobWriter;
  struct Entry {
    std::shared_ptr<const std::string> bytes;
    SystemTime committed_at;
  };
  mutable std::mutex mu_;
  std::map<Digest, Entry> blobs_;
};

}  // namespace cairn::store
