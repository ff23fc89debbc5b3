// Hex and base64 encoding.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "cairn/common/status.h"

namespace cairn {

std::string hexEncode(std::string_view bytes);
template <typename Bytes>
std::string hexEncode(const Bytes& bytes) {
  return hexEncode(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}
//! Accepts upper and lower case; odd length or a non-hex character is InvalidArgument.
Result<std::string> hexDecode(std::string_view hex);

//! Standard alphabet with '=' padding (RFC 4648 §4).
std::string base64Encode(std::string_view bytes);
//! Standard alphabet; padding optional; whitespace is not allowed.
Result<std::string> base64Decode(std::string_view text);
//! URL-safe alphabet, no padding (RFC 4648 §5), as used in tokens.
std::string base64UrlEncode(std::string_view bytes);

}  // namespace cairn
