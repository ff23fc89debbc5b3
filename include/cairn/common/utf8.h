// UTF-8 decoding and encoding shared by the front ends that must count, compare or slice
// characters the way another language does (the Dockerfile parser mirrors Go, the Image DSL
// mirrors JavaScript).
//
// Decoding is strict, as Go's utf8.DecodeRune and the WHATWG decoder are: an overlong form, an
// encoded surrogate (U+D800–DFFF) or a value above U+10FFFF is invalid, and so is a truncated
// sequence. Each invalid byte is consumed alone and becomes one code point, chosen by the caller
// (Go's rule; a WHATWG decoder such as Node's gives one U+FFFD per truncated sequence instead,
// so "\xE2\x82A" decodes to two U+FFFD here and to one in Node):
//
//   std::u32string go = decodeUtf8(s, InvalidUtf8::kSurrogateEscape);  // round-trips any bytes
//   std::string back = encodeUtf8(go, InvalidUtf8::kSurrogateEscape);   // back == s
//   std::u32string js = decodeUtf8(s, InvalidUtf8::kReplace);           // U+FFFD, lossy
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cairn {

//! What an invalid byte decodes to, and what encoding does with code points UTF-8 cannot hold.
enum class InvalidUtf8 {
  //! U+FFFD (Go's RuneError, JavaScript's replacement). Encoding writes U+FFFD for a surrogate
  //! or a value above U+10FFFF, as Node's UTF-8 encoder does for a lone surrogate.
  kReplace,
  //! U+DC80 + byte ("surrogate escape", PEP 383): the code point is distinct from every valid
  //! character, and encoding writes the byte back, so any byte string survives a round trip.
  kSurrogateEscape,
};

inline constexpr char32_t kReplacementCharacter = 0xFFFD;
inline constexpr char32_t kMaxCodePoint = 0x10FFFF;

//! One decoded code point: `length` bytes were consumed (1 for an invalid byte, `valid` false).
struct Utf8Rune {
  char32_t code_point = 0;
  std::size_t length = 0;
  bool valid = false;
};

//! The length a lead byte announces (1 for ASCII, 2–4 for a multi-byte lead), or 0 for a byte
//! that cannot start a character (a continuation byte, 0xF8–0xFF). Says nothing of what follows.
std::size_t utf8SequenceLength(unsigned char lead);

//! Decodes the character starting at s[pos] (pos < s.size()). An invalid byte gives
//! {byte's escape or U+FFFD, 1, false}, as chosen by `invalid`.
Utf8Rune decodeUtf8Rune(std::string_view s, std::size_t pos, InvalidUtf8 invalid);

std::u32string decodeUtf8(std::string_view s, InvalidUtf8 invalid);

//! Appends the UTF-8 of `c`; see InvalidUtf8 for surrogates and values above U+10FFFF.
void appendUtf8(std::string& out, char32_t c, InvalidUtf8 invalid);
std::string encodeUtf8(std::u32string_view s, InvalidUtf8 invalid);

//! True when every byte of `s` belongs to a valid, shortest-form UTF-8 character.
bool isValidUtf8(std::string_view s);

//! Unicode's White_Space property: tab, LF, VT, FF, CR, space, U+0085, U+00A0, U+1680,
//! U+2000–200A, U+2028, U+2029, U+202F, U+205F, U+3000. Go's unicode.IsSpace is exactly this;
//! JavaScript's `\s` drops U+0085 and adds U+FEFF.
bool isUnicodeWhiteSpace(char32_t c);

//! True for U+D800–DFFF.
constexpr bool isSurrogate(char32_t c) {
  return c >= 0xD800 && c <= 0xDFFF;
}

//! True for the code points kSurrogateEscape decodes invalid bytes to (U+DC80–DCFF).
constexpr bool isEscapedByte(char32_t c) {
  return c >= 0xDC80 && c <= 0xDCFF;
}

}  // namespace cairn
