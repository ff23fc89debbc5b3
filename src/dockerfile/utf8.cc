#include "utf8.h"

namespace cairn::dockerfile::internal {

bool isUnicodeSpace(char32_t c) {
  return isUnicodeWhiteSpace(c);
}

bool isDigit(char32_t c) {
  return c >= U'0' && c <= U'9';
}

bool isLetter(char32_t c) {
  if (c < 0x80) return (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z');
  if (c >= 0xDC80 && c <= 0xDCFF) return false;  // an invalid byte
  return c >= 0xC0 && !isUnicodeSpace(c) && c != 0xD7 && c != 0xF7;
}

}  // namespace cairn::dockerfile::internal

namespace cairn::dockerfile::internal {

char32_t decodeRuneAt(std::string_view s, std::size_t pos, std::size_t& len) {
  Utf8Rune r = decodeUtf8Rune(s, pos, InvalidUtf8::kSurrogateEscape);
  len = r.length;
  return r.code_point;
}

std::size_t leadingSpaceBytes(std::string_view s) {
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t len = 1;
    char32_t c = decodeRuneAt(s, pos, len);
    if (!isUnicodeSpace(c)) break;
    pos += len;
  }
  return pos;
}

std::size_t trailingSpaceBytes(std::string_view s) {
  std::size_t end = s.size();
  while (end > 0) {
    // Find the start of the last code point (at most 4 bytes back).
    std::size_t start = end - 1;
    while (start > 0 && end - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) {
      --start;
    }
    std::size_t len = 1;
    char32_t c = decodeRuneAt(s, start, len);
    if (start + len != end) {
      // Not a whole code point: an invalid byte, which is not a space.
      break;
    }
    if (!isUnicodeSpace(c)) break;
    end = start;
  }
  return s.size() - end;
}

std::string_view trimUnicodeSpace(std::string_view s) {
  s.remove_prefix(leadingSpaceBytes(s));
  s.remove_suffix(trailingSpaceBytes(s));
  return s;
}

}  // namespace cairn::dockerfile::internal
