#include "cairn/common/digest.h"

#include "cairn/common/crypto.h"

namespace cairn {

Result<Digest> Digest::fromSha256Hex(std::string_view hex) {
  if (hex.size() != 64) {
    return invalidArgument("invalid sha256 digest \"" + std::string(hex.substr(0, 80)) +
                           "\": want 64 hex characters, got " + std::to_string(hex.size()));
  }
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return invalidArgument("invalid sha256 digest \"" + std::string(hex) +
                             "\": only lowercase hex allowed");
    }
  }
  return Digest("sha256", std::string(hex));
}

Result<Digest> Digest::parse(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    return invalidArgument("invalid digest \"" + std::string(text.substr(0, 80)) +
                           "\": want sha256:<64 hex>");
  }
  if (text.substr(0, colon) != "sha256") {
    return invalidArgument("unsupported digest algorithm \"" +
                           std::string(text.substr(0, colon).substr(0, 32)) +
                           "\": only sha256 is supported");
  }
  return fromSha256Hex(text.substr(colon + 1));
}

Digest Digest::ofBytes(std::string_view bytes) {
  return Digest("sha256", sha256Hex(bytes));
}

}  // namespace cairn
