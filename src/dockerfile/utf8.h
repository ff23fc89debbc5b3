// Private UTF-8 helpers for the Dockerfile front end. Invalid bytes decode to U+DC80+byte
// ("surrogate escape") and encode back to the same byte, so any input survives a round trip;
// the decoding itself is common's (strict, like Go's utf8.DecodeRune).
#pragma once

#include <string>
#include <string_view>

#include "cairn/common/utf8.h"

namespace cairn::dockerfile::internal {

inline std::u32string decodeUtf8(std::string_view s) {
  return cairn::decodeUtf8(s, InvalidUtf8::kSurrogateEscape);
}
inline void appendUtf8(std::string& out, char32_t c) {
  cairn::appendUtf8(out, c, InvalidUtf8::kSurrogateEscape);
}
inline std::string encodeUtf8(std::u32string_view s) {
  return cairn::encodeUtf8(s, InvalidUtf8::kSurrogateEscape);
}
//! Go's unicode.IsSpace.
bool isUnicodeSpace(char32_t c);
//! Go's unicode.IsLetter / IsDigit, approximated: ASCII exactly, any other non-space,
//! non-punctuation code point above U+00BF counts as a letter.
bool isLetter(char32_t c);
bool isDigit(char32_t c);

}  // namespace cairn::dockerfile::internal

namespace cairn::dockerfile::internal {
//! Decodes the code point at s[pos]; sets len to its byte length (1 for an invalid byte).
char32_t decodeRuneAt(std::string_view s, std::size_t pos, std::size_t& len);
//! Number of leading bytes of s that are Unicode whitespace.
std::size_t leadingSpaceBytes(std::string_view s);
//! Number of trailing bytes of s that are Unicode whitespace.
std::size_t trailingSpaceBytes(std::string_view s);
//! Go's strings.TrimSpace.
std::string_view trimUnicodeSpace(std::string_view s);
}  // namespace cairn::dockerfile::internal
