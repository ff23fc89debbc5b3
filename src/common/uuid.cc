#include "cairn/common/uuid.h"

#include "cairn/common/crypto.h"
#include "cairn/common/encoding.h"

namespace cairn {
namespace {

bool isHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

std::string uuidV4() {
  std::string b = randomBytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
  std::string h = hexEncode(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

bool isUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isHex(s[i])) return false;
  }
  return true;
}

bool isSdkUuid(std::string_view s) {
  if (!isUuid(s)) return false;
  if (s == "00000000-0000-0000-0000-000000000000") return true;
  char version = s[14];
  char variant = static_cast<char>(s[19] | 0x20);
  return version >= '1' && version <= '5' &&
         (variant == '8' || variant == '9' || variant == 'a' || variant == 'b');
}

}  // namespace cairn
