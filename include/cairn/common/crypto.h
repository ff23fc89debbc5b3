// Hashes and MACs through OpenSSL: sha256 (content addressing, build refs),
// md5 (Daytona's context hashes), hmac-sha256 (SigV4). Streaming classes for large inputs.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace cairn {

using Sha256Bytes = std::array<std::uint8_t, 32>;
using Md5Bytes = std::array<std::uint8_t, 16>;

//! Incremental SHA-256. Cheap to create; update() any number of times, then finish() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(const void* data, std::size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  Sha256Bytes finish();
  //! finish() as lowercase hex.
  std::string finishHex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

//! Incremental MD5 (not for security: it names Daytona context archives).
class Md5 {
 public:
  Md5();
  ~Md5();
  Md5(Md5&&) noexcept;
  Md5& operator=(Md5&&) noexcept;

  void update(const void* data, std::size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  Md5Bytes finish();
  std::string finishHex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

Sha256Bytes sha256(std::string_view data);
std::string sha256Hex(std::string_view data);
Md5Bytes md5(std::string_view data);
std::string md5Hex(std::string_view data);
Sha256Bytes hmacSha256(std::string_view key, std::string_view data);

//! Constant-time comparison for secrets (MACs, API key hashes).
bool constantTimeEquals(std::string_view a, std::string_view b);

//! Cryptographically secure random bytes (OpenSSL RAND_bytes); aborts if the RNG fails.
std::string randomBytes(std::size_t n);

//! CRC-32/IEEE (zlib's crc32), as S3's x-amz-checksum-crc32 uses it.
std::uint32_t crc32(std::string_view data, std::uint32_t previous = 0);

}  // namespace cairn
