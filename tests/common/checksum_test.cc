#include "cairn/common/checksum.h"

#include <gtest/gtest.h>

#include "cairn/common/crypto.h"

namespace cairn {
namespace {

TEST(ChecksumTest, Crc32Base64OfTheCheckVector) {
  // CRC-32/IEEE's check value 0xCBF43926, big-endian, in base64.
  EXPECT_EQ(crc32Base64(std::string_view("123456789")), "y/Q5Jg==");
  EXPECT_EQ(crc32Base64(std::uint32_t{0xCBF43926}), "y/Q5Jg==");
  EXPECT_EQ(crc32Base64(std::string_view()), "AAAAAA==");
  EXPECT_EQ(crc32Base64(std::uint32_t{0xFFFFFFFF}), "/////w==");
}

TEST(ChecksumTest, StreamedCrcMatchesTheWholeBody) {
  std::string body(100000, 'x');
  for (std::size_t i = 0; i < body.size(); ++i)
    body[i] = static_cast<char>(i * 31);
  std::uint32_t running = 0;
  for (std::size_t off = 0; off < body.size(); off += 4096)
    running = crc32(std::string_view(body).substr(off, 4096), running);
  EXPECT_EQ(crc32Base64(running), crc32Base64(std::string_view(body)));
}

}  // namespace
}  // namespace cairn
