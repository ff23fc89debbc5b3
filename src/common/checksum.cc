#include "cairn/common/checksum.h"

#include "cairn/common/crypto.h"
#include "cairn/common/encoding.h"

namespace cairn {

std::string crc32Base64(std::uint32_t crc) {
  const char be[4] = {static_cast<char>((crc >> 24) & 0xff), static_cast<char>((crc >> 16) & 0xff),
                      static_cast<char>((crc >> 8) & 0xff), static_cast<char>(crc & 0xff)};
  return base64Encode(std::string_view(be, sizeof be));
}

std::string crc32Base64(std::string_view data) {
  return crc32Base64(crc32(data));
}

}  // namespace cairn
