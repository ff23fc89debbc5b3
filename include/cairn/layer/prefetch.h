// A read-ahead stage for layer streams: PrefetchSource reads its inner source on a thread of
// its own, a few chunks ahead of the caller, so that producing the bytes (download, inflate,
// diff-id hashing) overlaps consuming them (tar parsing and file creation in applyLayerTar).
// Unpacking a pulled layer is otherwise one thread doing both, one after the other.
//
//   HashingSource hashed(decompressed.get());
//   PrefetchSource ahead(&hashed);
//   CAIRN_RETURN_IF_ERROR(applyLayerTar(ahead, dir).status());
//   CAIRN_RETURN_IF_ERROR(drain(ahead));   // after this, hashed.digest() is safe to call
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cairn/layer/stream.h"

namespace cairn::layer {

//! read() returns the inner source's bytes in order, then its error (after the bytes read
//! before it) or its end of stream. Once read() has returned 0 or an error, the thread is done
//! with `inner`, so the caller may use it (e.g. a HashingSource's digest). The destructor
//! stops the thread after the inner read in progress returns; `inner` must outlive this
//! object. Not thread-safe itself: one reader.
class PrefetchSource final : public ByteSource {
 public:
  static constexpr std::size_t kDefaultChunk = 256 * 1024;
  static constexpr std::size_t kDefaultDepth = 8;  //!< chunks read ahead: 2 MiB by default

  explicit PrefetchSource(ByteSource* inner, std::size_t chunk_size = kDefaultChunk,
                          std::size_t depth = kDefaultDepth);
  ~PrefetchSource() override;
  PrefetchSource(const PrefetchSource&) = delete;
  PrefetchSource& operator=(const PrefetchSource&) = delete;

  Result<std::size_t> read(void* buf, std::size_t n) override;

 private:
  struct Chunk {
    std::unique_ptr<char[]> data;
    std::size_t len = 0;
  };
  void loop();

  ByteSource* inner_;
  const std::size_t chunk_size_;
  const std::size_t depth_;
  bool threaded_ = false;  // false if the thread could not be started: read inline

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> ready_;   // filled by the thread, in order
  std::vector<Chunk> spare_;  // drained chunks handed back for reuse
  bool done_ = false;         // the thread reached inner's end or error
  Status error_;              // inner's error, delivered after ready_ runs dry
  bool stop_ = false;

  Chunk current_;  // the chunk read() is copying out of (reader side only)
  std::size_t pos_ = 0;
  std::thread thread_;
};

}  // namespace cairn::layer
