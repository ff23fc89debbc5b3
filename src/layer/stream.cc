#include "cairn/layer/stream.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cairn/common/fs.h"

namespace cairn::layer {

Result<std::size_t> FdSource::read(void* buf, std::size_t n) {
  for (;;) {
    ssize_t got = ::read(fd_, buf, n);
    if (got < 0) {
      if (errno == EINTR) continue;
      return errnoStatus(errno, "read");
    }
    return static_cast<std::size_t>(got);
  }
}

Result<std::size_t> StringSource::read(void* buf, std::size_t n) {
  std::size_t got = std::min(n, data_.size());
  if (got > 0) std::memcpy(buf, data_.data(), got);
  data_.remove_prefix(got);
  return got;
}

Status FdSink::write(std::string_view data) {
  return writeAll(fd_, data);
}

Status HashingSink::write(std::string_view data) {
  sha_.update(data);
  size_ += data.size();
  return inner_ ? inner_->write(data) : okStatus();
}

Digest HashingSink::digest() {
  return *Digest::fromSha256Hex(sha_.finishHex());
}

Result<std::size_t> HashingSource::read(void* buf, std::size_t n) {
  CAIRN_ASSIGN_OR_RETURN(std::size_t got, inner_->read(buf, n));
  sha_.update(buf, got);
  size_ += got;
  return got;
}

Digest HashingSource::digest() {
  return *Digest::fromSha256Hex(sha_.finishHex());
}

Status drain(ByteSource& source) {
  char buf[65536];
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(std::size_t n, source.read(buf, sizeof buf));
    if (n == 0) return okStatus();
  }
}

}  // namespace cairn::layer
