#include "cairn/layer/compression.h"

#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <vector>

namespace cairn::layer {

namespace {

constexpr std::size_t kChunk = 128 * 1024;

// ---------------------------------------------------------------- compressors

class PlainSink final : public ByteSink {
 public:
  explicit PlainSink(ByteSink* out) : out_(out) {}
  Status write(std::string_view data) override { return out_->write(data); }
  Status finish() override { return out_->finish(); }

 private:
  ByteSink* out_;
};

class ZstdCompressor final : public ByteSink {
 public:
  explicit ZstdCompressor(ByteSink* out) : out_(out), cctx_(ZSTD_createCCtx()), buf_(kChunk) {}
  ~ZstdCompressor() override { ZSTD_freeCCtx(cctx_); }

  Status init(const CompressionOptions& options) {
    if (cctx_ == nullptr) return internalError("zstd: cannot allocate a compression context");
    int level = options.level == 0 ? 3 : options.level;
    size_t rc = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level);
    if (ZSTD_isError(rc)) {
      return invalidArgument("zstd level " + std::to_string(level) + ": " + ZSTD_getErrorName(rc));
    }
    rc = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 1);
    if (ZSTD_isError(rc)) return internalError(std::string("zstd: ") + ZSTD_getErrorName(rc));
    if (options.threads > 0) {
      rc = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_nbWorkers, options.threads);
      if (ZSTD_isError(rc)) {
        return invalidArgument("zstd threads " + std::to_string(options.threads) + ": " +
                               ZSTD_getErrorName(rc));
      }
    }
    return okStatus();
  }

  Status write(std::string_view data) override {
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    while (in.pos < in.size)
      CAIRN_RETURN_IF_ERROR(step(&in, ZSTD_e_continue).status());
    return okStatus();
  }

  Status finish() override {
    ZSTD_inBuffer in{nullptr, 0, 0};
    for (;;) {
      CAIRN_ASSIGN_OR_RETURN(std::size_t remaining, step(&in, ZSTD_e_end));
      if (remaining == 0) break;
    }
    return out_->finish();
  }

 private:
  Result<std::size_t> step(ZSTD_inBuffer* in, ZSTD_EndDirective mode) {
    ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
    size_t rc = ZSTD_compressStream2(cctx_, &out, in, mode);
    if (ZSTD_isError(rc)) return internalError(std::string("zstd: ") + ZSTD_getErrorName(rc));
    if (out.pos > 0) CAIRN_RETURN_IF_ERROR(out_->write(std::string_view(buf_.data(), out.pos)));
    return rc;
  }

  ByteSink* out_;
  ZSTD_CCtx* cctx_;
  std::vector<char> buf_;
};

class GzipCompressor final : public ByteSink {
 public:
  explicit GzipCompressor(ByteSink* out) : out_(out), buf_(kChunk) {}
  ~GzipCompressor() override {
    if (initialized_) deflateEnd(&zs_);
  }

  Status init(const CompressionOptions& options) {
    int level = options.level == 0 ? 6 : options.level;
    if (level < 1 || level > 9) {
      return invalidArgument("gzip level " + std::to_string(level) + " is not in 1..9");
    }
    std::memset(&zs_, 0, sizeof zs_);
    // 15 + 16: a gzip wrapper (not zlib), 32 KiB window, as gzip(1) writes.
    if (deflateInit2(&zs_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      return internalError("gzip: cannot initialize deflate");
    }
    initialized_ = true;
    return okStatus();
  }

  Status write(std::string_view data) override {
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs_.avail_in = static_cast<uInt>(data.size());
    // Feed in pieces that fit uInt.
    if (data.size() > (1u << 30)) {
      CAIRN_RETURN_IF_ERROR(write(data.substr(0, 1u << 30)));
      return write(data.substr(1u << 30));
    }
    while (zs_.avail_in > 0)
      CAIRN_RETURN_IF_ERROR(step(Z_NO_FLUSH).status());
    return okStatus();
  }

  Status finish() override {
    zs_.next_in = nullptr;
    zs_.avail_in = 0;
    for (;;) {
      CAIRN_ASSIGN_OR_RETURN(int rc, step(Z_FINISH));
      if (rc == Z_STREAM_END) break;
    }
    return out_->finish();
  }

 private:
  Result<int> step(int flush) {
    zs_.next_out = reinterpret_cast<Bytef*>(buf_.data());
    zs_.avail_out = static_cast<uInt>(buf_.size());
    int rc = deflate(&zs_, flush);
    if (rc == Z_STREAM_ERROR) return internalError("gzip: deflate failed");
    std::size_t produced = buf_.size() - zs_.avail_out;
    if (produced > 0) CAIRN_RETURN_IF_ERROR(out_->write(std::string_view(buf_.data(), produced)));
    return rc;
  }

  ByteSink* out_;
  z_stream zs_{};
  bool initialized_ = false;
  std::vector<char> buf_;
};

// -------------------------------------------------------------- decompressors

// Reads `in` in chunks and remembers what is left of the current chunk.
class InputBuffer {
 public:
  explicit InputBuffer(ByteSource* in) : in_(in), buf_(kChunk) {}
  //! Refills if empty; returns false at end of input.
  Result<bool> fill() {
    if (pos_ < len_) return true;
    if (eof_) return false;
    CAIRN_ASSIGN_OR_RETURN(std::size_t n, in_->read(buf_.data(), buf_.size()));
    total_ += n;
    pos_ = 0;
    len_ = n;
    if (n == 0) eof_ = true;
    return n > 0;
  }
  const char* data() const { return buf_.data() + pos_; }
  std::size_t available() const { return len_ - pos_; }
  void consume(std::size_t n) { pos_ += n; }
  std::uint64_t consumedTotal() const { return total_ - (len_ - pos_); }

 private:
  ByteSource* in_;
  std::vector<char> buf_;
  std::size_t pos_ = 0;
  std::size_t len_ = 0;
  std::uint64_t total_ = 0;
  bool eof_ = false;
};

class ZstdDecompressor final : public ByteSource {
 public:
  explicit ZstdDecompressor(ByteSource* in) : in_(in), dctx_(ZSTD_createDCtx()) {}
  ~ZstdDecompressor() override { ZSTD_freeDCtx(dctx_); }
  bool ok() const { return dctx_ != nullptr; }

  Result<std::size_t> read(void* buf, std::size_t n) override {
    if (n == 0 || done_) return std::size_t{0};
    ZSTD_outBuffer out{buf, n, 0};
    while (out.pos == 0) {
      CAIRN_ASSIGN_OR_RETURN(bool more, in_.fill());
      if (!more) {
        if (!frame_complete_) {
          return invalidArgument("zstd stream truncated after " +
                                 std::to_string(in_.consumedTotal()) + " compressed bytes");
        }
        done_ = true;
        return std::size_t{0};
      }
      ZSTD_inBuffer in{in_.data(), in_.available(), 0};
      size_t rc = ZSTD_decompressStream(dctx_, &out, &in);
      in_.consume(in.pos);
      if (ZSTD_isError(rc)) {
        return invalidArgument(std::string("zstd stream corrupt near compressed byte ") +
                               std::to_string(in_.consumedTotal()) + ": " + ZSTD_getErrorName(rc));
      }
      frame_complete_ = rc == 0;
      // Guard against inputs that neither produce output nor consume (cannot happen with a
      // well-behaved zstd, but hostile input must not spin us).
      if (in.pos == 0 && out.pos == 0 && rc != 0 && in.size > 0) {
        if (++stalls_ > 1024) return invalidArgument("zstd stream makes no progress");
      } else {
        stalls_ = 0;
      }
    }
    return out.pos;
  }

 private:
  InputBuffer in_;
  ZSTD_DCtx* dctx_;
  bool frame_complete_ = true;  // an empty input is an empty stream
  bool done_ = false;
  int stalls_ = 0;
};

class GzipDecompressor final : public ByteSource {
 public:
  explicit GzipDecompressor(ByteSource* in) : in_(in) {}
  ~GzipDecompressor() override {
    if (initialized_) inflateEnd(&zs_);
  }
  Status init() {
    std::memset(&zs_, 0, sizeof zs_);
    if (inflateInit2(&zs_, 15 + 16) != Z_OK) return internalError("gzip: cannot init inflate");
    initialized_ = true;
    return okStatus();
  }

  Result<std::size_t> read(void* buf, std::size_t n) override {
    if (n == 0 || done_) return std::size_t{0};
    if (n > (1u << 30)) n = 1u << 30;
    zs_.next_out = static_cast<Bytef*>(buf);
    zs_.avail_out = static_cast<uInt>(n);
    while (zs_.avail_out == n) {
      CAIRN_ASSIGN_OR_RETURN(bool more, in_.fill());
      if (!more) {
        if (in_member_) {
          return invalidArgument("gzip stream truncated after " +
                                 std::to_string(in_.consumedTotal()) + " compressed bytes");
        }
        done_ = true;
        break;
      }
      if (!in_member_) {
        // Between members: another member must start with the gzip magic; anything else
        // (tar padding some tools append) ends the stream, as gzip(1) does with a warning.
        if (static_cast<unsigned char>(in_.data()[0]) != 0x1f) {
          done_ = true;
          break;
        }
        if (inflateReset(&zs_) != Z_OK) return internalError("gzip: inflateReset failed");
        in_member_ = true;
      }
      zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in_.data()));
      zs_.avail_in = static_cast<uInt>(in_.available());
      std::size_t before = in_.available();
      int rc = inflate(&zs_, Z_NO_FLUSH);
      in_.consume(before - zs_.avail_in);
      if (rc == Z_STREAM_END) {
        in_member_ = false;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return invalidArgument("gzip stream corrupt near compressed byte " +
                               std::to_string(in_.consumedTotal()) + ": " +
                               (zs_.msg ? zs_.msg : "inflate error " + std::to_string(rc)));
      }
    }
    return n - zs_.avail_out;
  }

 private:
  InputBuffer in_;
  z_stream zs_{};
  bool initialized_ = false;
  bool in_member_ = false;
  bool done_ = false;
};

class PlainSource final : public ByteSource {
 public:
  explicit PlainSource(ByteSource* in) : in_(in) {}
  Result<std::size_t> read(void* buf, std::size_t n) override { return in_->read(buf, n); }

 private:
  ByteSource* in_;
};

// Replays already-read head bytes before the rest of `in`.
class PrefixedSource final : public ByteSource {
 public:
  PrefixedSource(std::string head, ByteSource* in) : head_(std::move(head)), in_(in) {}
  Result<std::size_t> read(void* buf, std::size_t n) override {
    if (pos_ < head_.size()) {
      std::size_t got = std::min(n, head_.size() - pos_);
      std::memcpy(buf, head_.data() + pos_, got);
      pos_ += got;
      return got;
    }
    return in_->read(buf, n);
  }

 private:
  std::string head_;
  std::size_t pos_ = 0;
  ByteSource* in_;
};

// Owns a PrefixedSource and the decompressor reading from it.
class AutoSource final : public ByteSource {
 public:
  AutoSource(std::unique_ptr<PrefixedSource> prefixed, std::unique_ptr<ByteSource> inner)
      : prefixed_(std::move(prefixed)), inner_(std::move(inner)) {}
  Result<std::size_t> read(void* buf, std::size_t n) override { return inner_->read(buf, n); }

 private:
  std::unique_ptr<PrefixedSource> prefixed_;
  std::unique_ptr<ByteSource> inner_;
};

}  // namespace

std::string_view compressionName(Compression c) {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kGzip:
      return "gzip";
    case Compression::kZstd:
      return "zstd";
  }
  return "unknown";
}

Result<Compression> parseCompression(std::string_view name) {
  if (name == "none" || name == "uncompressed") return Compression::kNone;
  if (name == "gzip" || name == "gz") return Compression::kGzip;
  if (name == "zstd" || name == "zst") return Compression::kZstd;
  return invalidArgument("unknown compression \"" + std::string(name.substr(0, 40)) +
                         "\": want none, gzip or zstd");
}

Compression detectCompression(std::string_view head) {
  auto at = [&](std::size_t i) { return static_cast<unsigned char>(head[i]); };
  if (head.size() >= 2 && at(0) == 0x1f && at(1) == 0x8b) return Compression::kGzip;
  if (head.size() >= 4 && at(0) == 0x28 && at(1) == 0xb5 && at(2) == 0x2f && at(3) == 0xfd) {
    return Compression::kZstd;
  }
  return Compression::kNone;
}

Result<Compression> compressionFromMediaType(std::string_view media_type) {
  static constexpr std::string_view kOci = "application/vnd.oci.image.layer.";
  if (media_type.substr(0, kOci.size()) == kOci) {
    std::string_view rest = media_type.substr(kOci.size());
    if (rest == "v1.tar" || rest == "nondistributable.v1.tar") return Compression::kNone;
    if (rest == "v1.tar+gzip" || rest == "nondistributable.v1.tar+gzip") {
      return Compression::kGzip;
    }
    if (rest == "v1.tar+zstd" || rest == "nondistributable.v1.tar+zstd") {
      return Compression::kZstd;
    }
  }
  if (media_type == "application/vnd.docker.image.rootfs.diff.tar") return Compression::kNone;
  if (media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip" ||
      media_type == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip") {
    return Compression::kGzip;
  }
  if (media_type == "application/vnd.docker.image.rootfs.diff.tar.zstd") {
    return Compression::kZstd;
  }
  return invalidArgument("not a layer media type: \"" + std::string(media_type.substr(0, 100)) +
                         "\"");
}

std::string ociLayerMediaType(Compression c) {
  switch (c) {
    case Compression::kNone:
      return "application/vnd.oci.image.layer.v1.tar";
    case Compression::kGzip:
      return "application/vnd.oci.image.layer.v1.tar+gzip";
    case Compression::kZstd:
      return "application/vnd.oci.image.layer.v1.tar+zstd";
  }
  return "application/vnd.oci.image.layer.v1.tar";
}

Result<std::unique_ptr<ByteSink>> makeCompressor(Compression c, ByteSink* out,
                                                 const CompressionOptions& options) {
  switch (c) {
    case Compression::kNone:
      return std::unique_ptr<ByteSink>(new PlainSink(out));
    case Compression::kZstd: {
      auto z = std::make_unique<ZstdCompressor>(out);
      CAIRN_RETURN_IF_ERROR(z->init(options));
      return std::unique_ptr<ByteSink>(std::move(z));
    }
    case Compression::kGzip: {
      auto g = std::make_unique<GzipCompressor>(out);
      CAIRN_RETURN_IF_ERROR(g->init(options));
      return std::unique_ptr<ByteSink>(std::move(g));
    }
  }
  return invalidArgument("unknown compression");
}

Result<std::unique_ptr<ByteSource>> makeDecompressor(Compression c, ByteSource* in) {
  switch (c) {
    case Compression::kNone:
      return std::unique_ptr<ByteSource>(new PlainSource(in));
    case Compression::kZstd: {
      auto z = std::make_unique<ZstdDecompressor>(in);
      if (!z->ok()) return internalError("zstd: cannot allocate a decompression context");
      return std::unique_ptr<ByteSource>(std::move(z));
    }
    case Compression::kGzip: {
      auto g = std::make_unique<GzipDecompressor>(in);
      CAIRN_RETURN_IF_ERROR(g->init());
      return std::unique_ptr<ByteSource>(std::move(g));
    }
  }
  return invalidArgument("unknown compression");
}

Result<std::unique_ptr<ByteSource>> makeAutoDecompressor(ByteSource* in) {
  std::string head(4, '\0');
  std::size_t have = 0;
  while (have < head.size()) {
    CAIRN_ASSIGN_OR_RETURN(std::size_t n, in->read(head.data() + have, head.size() - have));
    if (n == 0) break;
    have += n;
  }
  head.resize(have);
  Compression c = detectCompression(head);
  auto prefixed = std::make_unique<PrefixedSource>(std::move(head), in);
  CAIRN_ASSIGN_OR_RETURN(auto inner, makeDecompressor(c, prefixed.get()));
  return std::unique_ptr<ByteSource>(new AutoSource(std::move(prefixed), std::move(inner)));
}

LayerEncoder::LayerEncoder(Compression c, ByteSink* out, const CompressionOptions& options)
    : compression_(c), compressed_(out) {
  auto comp = makeCompressor(c, &compressed_, options);
  if (comp.ok()) {
    compressor_ = std::move(comp).value();
  } else {
    init_status_ = comp.status();
  }
}

LayerEncoder::~LayerEncoder() = default;

Status LayerEncoder::write(std::string_view data) {
  if (!init_status_.ok()) return init_status_;
  if (finished_) return failedPrecondition("layer encoder already finished");
  tar_sha_.update(data);
  tar_size_ += data.size();
  return compressor_->write(data);
}

Result<EncodedLayer> LayerEncoder::finishLayer() {
  if (!init_status_.ok()) return init_status_;
  if (finished_) return failedPrecondition("layer encoder already finished");
  finished_ = true;
  CAIRN_RETURN_IF_ERROR(compressor_->finish());
  EncodedLayer out;
  out.diff_id = *Digest::fromSha256Hex(tar_sha_.finishHex());
  out.tar_size = tar_size_;
  out.digest = compressed_.digest();
  out.size = compressed_.size();
  out.compression = compression_;
  out.media_type = ociLayerMediaType(compression_);
  return out;
}

}  // namespace cairn::layer
