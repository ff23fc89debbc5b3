#include "cairn/common/utf8.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace cairn {
namespace {

using enum InvalidUtf8;

TEST(Utf8Test, DecodesEveryLength) {
  // "a", "é" (2), "€" (3), "😀" (4)
  std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
  EXPECT_EQ(decodeUtf8(s, kReplace), (std::u32string{U'a', 0xE9, 0x20AC, 0x1F600}));
  EXPECT_EQ(decodeUtf8(s, kSurrogateEscape), (std::u32string{U'a', 0xE9, 0x20AC, 0x1F600}));
  EXPECT_TRUE(isValidUtf8(s));
  EXPECT_EQ(encodeUtf8(decodeUtf8(s, kReplace), kReplace), s);
}

TEST(Utf8Test, BoundaryCodePointsRoundTrip) {
  for (char32_t c :
       {char32_t{0}, char32_t{0x7F}, char32_t{0x80}, char32_t{0x7FF}, char32_t{0x800},
        char32_t{0xD7FF}, char32_t{0xE000}, char32_t{0xFFFF}, char32_t{0x10000}, kMaxCodePoint}) {
    std::string s;
    appendUtf8(s, c, kReplace);
    Utf8Rune r = decodeUtf8Rune(s, 0, kReplace);
    EXPECT_TRUE(r.valid) << static_cast<unsigned>(c);
    EXPECT_EQ(r.code_point, c);
    EXPECT_EQ(r.length, s.size());
  }
}

TEST(Utf8Test, InvalidBytesBecomeReplacementOrEscape) {
  std::string s =
      "a\xFF"
      "b\x80";
  EXPECT_EQ(decodeUtf8(s, kReplace), (std::u32string{U'a', 0xFFFD, U'b', 0xFFFD}));
  EXPECT_EQ(decodeUtf8(s, kSurrogateEscape), (std::u32string{U'a', 0xDCFF, U'b', 0xDC80}));
  EXPECT_FALSE(isValidUtf8(s));
}

TEST(Utf8Test, SurrogateEscapeRoundTripsAnyBytes) {
  std::string all;
  for (int b = 0; b < 256; ++b)
    all.push_back(static_cast<char>(b));
  all += "\xE2\x82";  // truncated
  all += "\xC0\xAF";  // overlong '/'
  EXPECT_EQ(encodeUtf8(decodeUtf8(all, kSurrogateEscape), kSurrogateEscape), all);
}

TEST(Utf8Test, OverlongFormsAreInvalid) {
  // '/' as 2, 3 and 4 bytes, NUL as 2 bytes, U+07FF as 3 bytes, U+FFFF as 4 bytes.
  for (std::string s :
       {std::string("\xC0\xAF"), std::string("\xE0\x80\xAF"), std::string("\xF0\x80\x80\xAF"),
        std::string("\xC0\x80", 2), std::string("\xE0\x9F\xBF"), std::string("\xF0\x8F\xBF\xBF")}) {
    EXPECT_FALSE(isValidUtf8(s)) << s.size();
    std::u32string d = decodeUtf8(s, kReplace);
    EXPECT_EQ(d, std::u32string(s.size(), 0xFFFD));
    EXPECT_EQ(d.find(U'/'), std::u32string::npos);
  }
}

TEST(Utf8Test, EncodedSurrogatesAndOutOfRangeAreInvalid) {
  std::string high = "\xED\xA0\x80";     // U+D800
  std::string low = "\xED\xBF\xBF";      // U+DFFF
  std::string big = "\xF4\x90\x80\x80";  // U+110000
  for (const std::string& s : {high, low, big}) {
    EXPECT_FALSE(isValidUtf8(s));
    EXPECT_EQ(decodeUtf8(s, kReplace), std::u32string(s.size(), 0xFFFD));
    EXPECT_FALSE(decodeUtf8Rune(s, 0, kSurrogateEscape).valid);
  }
  // An escaped byte is never confused with a valid character: U+DCED (from a lone 0xED) and
  // the encoded U+DCED differ.
  EXPECT_EQ(decodeUtf8("\xED", kSurrogateEscape), std::u32string(1, 0xDCED));
}

TEST(Utf8Test, TruncatedSequenceConsumesOneByteAtATime) {
  std::string s =
      "\xE2\x82"
      "A";
  Utf8Rune r = decodeUtf8Rune(s, 0, kReplace);
  EXPECT_FALSE(r.valid);
  EXPECT_EQ(r.length, 1u);
  EXPECT_EQ(decodeUtf8(s, kReplace), (std::u32string{0xFFFD, 0xFFFD, U'A'}));
  EXPECT_EQ(decodeUtf8("\xF0\x9F\x98", kSurrogateEscape), (std::u32string{0xDCF0, 0xDC9F, 0xDC98}));
}

TEST(Utf8Test, EncodingUnrepresentableCodePoints) {
  // A lone surrogate or a value past U+10FFFF is written as U+FFFD, as Node does.
  EXPECT_EQ(encodeUtf8(std::u32string{0xD800}, kReplace), "\xEF\xBF\xBD");
  EXPECT_EQ(encodeUtf8(std::u32string{0x110000}, kReplace), "\xEF\xBF\xBD");
  // kReplace has no escaped bytes: U+DC80 is just a lone surrogate.
  EXPECT_EQ(encodeUtf8(std::u32string{0xDC80}, kReplace), "\xEF\xBF\xBD");
  EXPECT_EQ(encodeUtf8(std::u32string{0xDC80}, kSurrogateEscape), "\x80");
  EXPECT_EQ(encodeUtf8(std::u32string{0xD800}, kSurrogateEscape), "\xEF\xBF\xBD");
}

TEST(Utf8Test, SequenceLengthFromLeadByte) {
  EXPECT_EQ(utf8SequenceLength('a'), 1u);
  EXPECT_EQ(utf8SequenceLength(0xC3), 2u);
  EXPECT_EQ(utf8SequenceLength(0xE2), 3u);
  EXPECT_EQ(utf8SequenceLength(0xF0), 4u);
  EXPECT_EQ(utf8SequenceLength(0x80), 0u);
  EXPECT_EQ(utf8SequenceLength(0xF8), 0u);
  EXPECT_EQ(utf8SequenceLength(0xFF), 0u);
}

TEST(Utf8Test, EmptyInput) {
  EXPECT_TRUE(isValidUtf8(""));
  EXPECT_TRUE(decodeUtf8("", kReplace).empty());
  EXPECT_TRUE(encodeUtf8(U"", kSurrogateEscape).empty());
}

TEST(Utf8Test, UnicodeWhiteSpaceIsThePropertysSet) {
  std::u32string expected = U"\t\n\v\f\r \u0085\u00A0\u1680\u2028\u2029\u202F\u205F\u3000";
  for (char32_t c = 0x2000; c <= 0x200A; ++c)
    expected.push_back(c);
  std::u32string found;
  for (char32_t c = 0; c <= 0x10000; ++c) {
    if (isUnicodeWhiteSpace(c)) found.push_back(c);
  }
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(found, expected);
  // Not white space: ZWSP, BOM (JavaScript adds it, Unicode does not), an escaped byte.
  EXPECT_FALSE(isUnicodeWhiteSpace(0x200B));
  EXPECT_FALSE(isUnicodeWhiteSpace(0xFEFF));
  EXPECT_FALSE(isUnicodeWhiteSpace(0xDCA0));
}

}  // namespace
}  // namespace cairn
