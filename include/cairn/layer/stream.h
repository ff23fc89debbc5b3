// Byte streams for layer data: a pull source (what apply reads a tar from) and a push sink (what
// diff writes a tar to), with adapters for file descriptors, strings and hashing. Kept tiny so
// that blob readers/writers, HTTP bodies and pipes can all be wrapped in a few lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "cairn/common/crypto.h"
#include "cairn/common/digest.h"
#include "cairn/common/status.h"

namespace cairn::layer {

//! Pull side: read() fills up to `n` bytes and returns how many; 0 means end of stream.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual Result<std::size_t> read(void* buf, std::size_t n) = 0;
};

//! Push side: write() takes all of `data` or fails; finish() flushes (called once at the end).
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status write(std::string_view data) = 0;
  virtual Status finish() { return okStatus(); }
};

//! Reads from a file descriptor it does not own.
class FdSource final : public ByteSource {
 public:
  explicit FdSource(int fd) : fd_(fd) {}
  Result<std::size_t> read(void* buf, std::size_t n) override;

 private:
  int fd_;
};

//! Reads from bytes it does not own.
class StringSource final : public ByteSource {
 public:
  explicit StringSource(std::string_view data) : data_(data) {}
  Result<std::size_t> read(void* buf, std::size_t n) override;

 private:
  std::string_view data_;
};

//! Reads through a callback (a blob stream, an HTTP body, ...).
class FunctionSource final : public ByteSource {
 public:
  explicit FunctionSource(std::function<Result<std::size_t>(void*, std::size_t)> fn)
      : fn_(std::move(fn)) {}
  Result<std::size_t> read(void* buf, std::size_t n) override { return fn_(buf, n); }

 private:
  std::function<Result<std::size_t>(void*, std::size_t)> fn_;
};

//! Writes to a file descriptor it does not own.
class FdSink final : public ByteSink {
 public:
  explicit FdSink(int fd) : fd_(fd) {}
  Status write(std::string_view data) override;

 private:
  int fd_;
};

//! Appends to a string it does not own.
class StringSink final : public ByteSink {
 public:
  explicit StringSink(std::string* out) : out_(out) {}
  Status write(std::string_view data) override {
    out_->append(data);
    return okStatus();
  }

 private:
  std::string* out_;
};

//! Writes through a callback (a BlobWriter, an HTTP upload, ...).
class FunctionSink final : public ByteSink {
 public:
  explicit FunctionSink(std::function<Status(std::string_view)> fn) : fn_(std::move(fn)) {}
  Status write(std::string_view data) override { return fn_(data); }

 private:
  std::function<Status(std::string_view)> fn_;
};

//! Discards everything (hash-only passes).
class NullSink final : public ByteSink {
 public:
  Status write(std::string_view) override { return okStatus(); }
};

//! Passes bytes through to `inner` (may be null) and hashes and counts them on the way.
class HashingSink final : public ByteSink {
 public:
  explicit HashingSink(ByteSink* inner) : inner_(inner) {}
  Status write(std::string_view data) override;
  Status finish() override { return inner_ ? inner_->finish() : okStatus(); }
  std::uint64_t size() const { return size_; }
  //! The digest of everything written; call once, after the last write.
  Digest digest();

 private:
  ByteSink* inner_;
  Sha256 sha_;
  std::uint64_t size_ = 0;
};

//! Reads through `inner` and hashes and counts what it returns.
class HashingSource final : public ByteSource {
 public:
  explicit HashingSource(ByteSource* inner) : inner_(inner) {}
  Result<std::size_t> read(void* buf, std::size_t n) override;
  std::uint64_t size() const { return size_; }
  //! The digest of everything read; call once, after the end of stream was reached.
  Digest digest();

 private:
  ByteSource* inner_;
  Sha256 sha_;
  std::uint64_t size_ = 0;
};

//! Reads `source` to its end and discards the bytes (e.g. to finish hashing a tar whose
//! archive reader stopped at the end-of-archive blocks).
Status drain(ByteSource& source);

}  // namespace cairn::layer
