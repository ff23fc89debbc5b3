#include "cairn/store/memory_blob_store.h"

#include <cstring>

#include "cairn/common/crypto.h"

namespace cairn::store {

namespace {

class MemoryReadStream final : public BlobReadStream {
 public:
  MemoryReadStream(std::shared_ptr<const std::string> bytes, std::string digest)
      : bytes_(std::move(bytes)), digest_(std::move(digest)) {}
  std::uint64_t size() const override { return bytes_->size(); }
  Result<std::size_t> read(void* buf, std::size_t n) override {
    CAIRN_ASSIGN_OR_RETURN(std::size_t got, readAt(pos_, buf, n));
    pos_ += got;
    return got;
  }
  Result<std::size_t> readAt(std::uint64_t offset, void* buf, std::size_t n) override {
    if (offset >= bytes_->size()) return std::size_t{0};
    std::size_t got = std::min<std::size_t>(n, bytes_->size() - offset);
    std::memcpy(buf, bytes_->data() + offset, got);
    return got;
  }
  Status seek(std::uint64_t offset) override {
    if (offset > bytes_->size()) {
      return invalidArgument("seek to " + std::to_string(offset) + " past the end of blob " +
                             digest_ + " (" + std::to_string(bytes_->size()) + " bytes)");
    }
    pos_ = offset;
    return okStatus();
  }

 private:
  std::shared_ptr<const std::string> bytes_;
  std::string digest_;
  std::uint64_t pos_ = 0;
};

}  // namespace

class MemoryBlobWriter final : public BlobWriter {
 public:
  explicit MemoryBlobWriter(MemoryBlobStore* store) : store_(store) {}
  Status write(std::string_view data) override {
    if (done_) return failedPrecondition("blob writer already committed or aborted");
    data_.append(data);
    return okStatus();
  }
  std::uint64_t offset() const override { return data_.size(); }
  Result<BlobInfo> commit(std::optional<std::uint64_t> expected_size,
                          std::optional<Digest> expected_digest) override {
    if (done_) return failedPrecondition("blob writer already committed or aborted");
    done_ = true;
    Digest actual = Digest::ofBytes(data_);
    if (expected_size && *expected_size != data_.size()) {
      return invalidArgument("blob size mismatch: expected " + std::to_string(*expected_size) +
                             " bytes, got " + std::to_string(data_.size()) + " bytes (content " +
                             actual.str() + ")");
    }
    if (expected_digest && *expected_digest != actual) {
      return invalidArgument("blob digest mismatch: expected " + expected_digest->str() + ", got " +
                             actual.str());
    }
    std::lock_guard<std::mutex> lock(store_->mu_);
    auto [it, inserted] = store_->blobs_.try_emplace(actual);
    if (inserted) {
      it->second.bytes = std::make_shared<const std::string>(std::move(data_));
      it->second.committed_at = std::chrono::system_clock::now();
    }
    return BlobInfo{actual, it->second.bytes->size(), it->second.committed_at};
  }
  void abort() override {
    done_ = true;
    data_.clear();
  }

 private:
  MemoryBlobStore* store_;
  std::string data_;
  bool done_ = false;
};

Result<BlobInfo> MemoryBlobStore::info(const Digest& digest) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = blobs_.find(digest);
  if (it == blobs_.end()) return notFound("blob " + digest.str() + " not found");
  return BlobInfo{digest, it->second.bytes->size(), it->second.committed_at};
}

Result<std::unique_ptr<BlobReadStream>> MemoryBlobStore::openRead(const Digest& digest) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = blobs_.find(digest);
  if (it == blobs_.end()) return notFound("blob " + digest.str() + " not found");
  return std::unique_ptr<BlobReadStream>(new MemoryReadStream(it->second.bytes, digest.str()));
}

Result<std::unique_ptr<BlobWriter>> MemoryBlobStore::writer() {
  return std::unique_ptr<BlobWriter>(new MemoryBlobWriter(this));
}

Status MemoryBlobStore::walk(const std::function<Status(const BlobInfo&)>& fn) const {
  std::vector<BlobInfo> infos;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [digest, entry] : blobs_) {
      infos.push_back({digest, entry.bytes->size(), entry.committed_at});
    }
  }
  for (const BlobInfo& info : infos)
    CAIRN_RETURN_IF_ERROR(fn(info));
  return okStatus();
}

Status MemoryBlobStore::remove(const Digest& digest) {
  std::lock_guard<std::mutex> lock(mu_);
  if (blobs_.erase(digest) == 0) return notFound("blob " + digest.str() + " not found");
  return okStatus();
}

}  // namespace cairn::store
