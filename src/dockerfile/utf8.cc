#include "utf8.h"

namespace cairn::dockerfile::internal {

std::u32string decodeUtf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      out.push_back(b);
      ++i;
      continue;
    }
    int len = (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    char32_t cp = 0;
    bool valid = len > 0 && i + static_cast<std::size_t>(len) <= s.size();
    if (valid) {
      cp = b & (0xFFu >> (len + 1));
      for (int k = 1; k < len; ++k) {
        auto c = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
        if ((c >> 6) != 0x2) {
          valid = false;
          break;
        }
        cp = (cp << 6) | (c & 0x3Fu);
      }
      // Reject overlong forms, surrogates and out-of-range values.
      if (valid) {
        char32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) valid = false;
      }
    }
    if (!valid) {
      out.push_back(0xDC00 + b);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += static_cast<std::size_t>(len);
  }
  return out;
}

void appendUtf8(std::string& out, char32_t c) {
  if (c >= 0xDC80 && c <= 0xDCFF) {
    out.push_back(static_cast<char>(c - 0xDC00));
  } else if (c < 0x80) {
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

std::string encodeUtf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s)
    appendUtf8(out, c);
  return out;
}

bool isUnicodeSpace(char32_t c) {
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
  auto b = static_cast<unsigned char>(s[pos]);
  if (b < 0x80) {
    len = 1;
    return b;
  }
  std::size_t want = (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (want == 0 || pos + want > s.size()) {
    len = 1;
    return 0xDC00 + b;
  }
  std::u32string one = decodeUtf8(s.substr(pos, want));
  if (one.size() != 1) {
    len = 1;
    return 0xDC00 + b;
  }
  len = want;
  return one[0];
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
