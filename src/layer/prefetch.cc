#include "cairn/layer/prefetch.h"

#include <cstring>
#include <system_error>

namespace cairn::layer {

PrefetchSource::PrefetchSource(ByteSource* inner, std::size_t chunk_size, std::size_t depth)
    : inner_(inner),
      chunk_size_(chunk_size == 0 ? kDefaultChunk : chunk_size),
      depth_(depth == 0 ? 1 : depth) {
  try {
    thread_ = std::thread([this] { loop(); });
    threaded_ = true;
  } catch (const std::system_error&) {
    threaded_ = false;  // out of threads: still correct, just not overlapped
  }
}

PrefetchSource::~PrefetchSource() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PrefetchSource::loop() {
  for (;;) {
    Chunk chunk;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || ready_.size() < depth_; });
      if (stop_) return;
      if (!spare_.empty()) {
        chunk = std::move(spare_.back());
        spare_.pop_back();
      }
    }
    if (!chunk.data) chunk.data = std::make_unique<char[]>(chunk_size_);
    // Fill the chunk (decompressors return small pieces): fewer hand-overs per byte.
    chunk.len = 0;
    Status status;
    bool end = false;
    while (chunk.len < chunk_size_) {
      auto n = inner_->read(chunk.data.get() + chunk.len, chunk_size_ - chunk.len);
      if (!n.ok()) {
        status = n.status();
        break;
      }
      if (*n == 0) {
        end = true;
        break;
      }
      chunk.len += *n;
    }
    {
      std::lock_guard lock(mu_);
      if (chunk.len > 0) ready_.push_back(std::move(chunk));
      if (!status.ok() || end) {
        error_ = status;
        done_ = true;
      }
    }
    cv_.notify_all();
    if (!status.ok() || end) return;
  }
}

Result<std::size_t> PrefetchSource::read(void* buf, std::size_t n) {
  if (!threaded_) return inner_->read(buf, n);
  if (n == 0) return std::size_t{0};
  if (pos_ >= current_.len) {
    std::unique_lock lock(mu_);
    if (current_.data) spare_.push_back(std::move(current_));
    current_ = Chunk{};
    pos_ = 0;
    cv_.notify_all();  // room for another chunk
    cv_.wait(lock, [&] { return !ready_.empty() || done_; });
    if (ready_.empty()) {
      if (!error_.ok()) return error_;
      return std::size_t{0};
    }
    current_ = std::move(ready_.front());
    ready_.pop_front();
  }
  std::size_t got = std::min(n, current_.len - pos_);
  std::memcpy(buf, current_.data.get() + pos_, got);
  pos_ += got;
  return got;
}

}  // namespace cairn::layer
