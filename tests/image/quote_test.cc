#include "cairn/image/quote.h"

#include <gtest/gtest.h>

namespace cairn {
namespace {

struct QuoteCase {
  const char* input;
  const char* output;
};

// Spec §3.6, shell-quote >= 1.11.
TEST(ShellQuoteTest, SpecTable) {
  const QuoteCase cases[] = {
      {"numpy", "numpy"},
      {"a b", "'a b'"},
      {"requests>=2.0", "requests\\>\\=2.0"},
      {"https://x:1/y", "https\\://x\\:1/y"},
      {"it's", "\"it's\""},
      {"it's!", "'it'\"'\"'s!'"},
      {"a\"b", "'a\"b'"},
      {"a\\b", "'a\\b'"},
      {"a'b\\c", "\"a'b\\\\c\""},
      {"$HOME", "\\$HOME"},
      {"~/x", "\\~/x"},
      {"*.py", "\\*.py"},
      {"a,b", "a\\,b"},
      {"a@b", "a\\@b"},
      {"a{b}", "a\\{b\\}"},
      {"a%b", "a%b"},
      {"a+b", "a+b"},
      {"1.0", "1.0"},
      {"\xc3\xa9", "\xc3\xa9"},
      {"", "''"},
      {"x:=", "x:\\="},
      {"C:*", "C:\\*"},
      {"a\tb", "'a\tb'"},
      {"a\nb", "'a\nb'"},
      {"it's $x", "\"it's \\$x\""},
      {"a\xc2\xa0"
       "b",
       "'a\xc2\xa0"
       "b'"},  // NBSP is JavaScript whitespace
  };
  for (const QuoteCase& c : cases) {
    EXPECT_EQ(shellQuote(c.input), c.output) << "input: " << c.input;
  }
}

TEST(ShellQuoteTest, ListJoinsItemsWithSingleSpaces) {
  EXPECT_EQ(shellQuote(std::vector<std::string>{"a b", "numpy", "x>1"}), "'a b' numpy x\\>1");
  EXPECT_EQ(shellQuote(std::vector<std::string>{}), "");
}

}  // namespace
}  // namespace cairn
