#include "cairn/common/utf8.h"

namespace cairn {
namespace {

char32_t invalidByte(unsigned char b, InvalidUtf8 invalid) {
  return invalid == InvalidUtf8::kSurrogateEscape ? 0xDC00 + b : kReplacementCharacter;
}

}  // namespace

std::size_t utf8SequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 0;
}

Utf8Rune decodeUtf8Rune(std::string_view s, std::size_t pos, InvalidUtf8 invalid) {
  auto b = static_cast<unsigned char>(s[pos]);
  std::size_t len = utf8SequenceLength(b);
  if (len == 1) return {b, 1, true};
  Utf8Rune bad{invalidByte(b, invalid), 1, false};
  if (len == 0 || len > s.size() - pos) return bad;
  char32_t cp = b & (0xFFu >> (len + 1));
  for (std::size_t k = 1; k < len; ++k) {
    auto c = static_cast<unsigned char>(s[pos + k]);
    if ((c >> 6) != 0x2) return bad;
    cp = (cp << 6) | (c & 0x3Fu);
  }
  // The shortest form only: a longer one could smuggle '/' or NUL past a byte-level check.
  char32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
  if (cp < min || cp > kMaxCodePoint || isSurrogate(cp)) return bad;
  return {cp, len, true};
}

std::u32string decodeUtf8(std::string_view s, InvalidUtf8 invalid) {
  std::u32string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    Utf8Rune r = decodeUtf8Rune(s, i, invalid);
    out.push_back(r.code_point);
    i += r.length;
  }
  return out;
}

void appendUtf8(std::string& out, char32_t c, InvalidUtf8 invalid) {
  if (invalid == InvalidUtf8::kSurrogateEscape && isEscapedByte(c)) {
    out.push_back(static_cast<char>(c - 0xDC00));
    return;
  }
  if (isSurrogate(c) || c > kMaxCodePoint) c = kReplacementCharacter;
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string encodeUtf8(std::u32string_view s, InvalidUtf8 invalid) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s)
    appendUtf8(out, c, invalid);
  return out;
}

bool isUnicodeWhiteSpace(char32_t c) {
  switch (c) {
    case U'\t':
    case U'\n':
    case U'\v':
    case U'\f':
    case U'\r':
    case U' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool isValidUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    Utf8Rune r = decodeUtf8Rune(s, i, InvalidUtf8::kReplace);
    if (!r.valid) return false;
    i += r.length;
  }
  return true;
}

}  // namespace cairn
