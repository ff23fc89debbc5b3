#include "cairn/image/quote.h"

#include "js_compat.h"

namespace cairn {

namespace {
constexpr std::string_view kSpecial = "#!\"$&'()*,:;<=>?@[\\]^`{|}~";

bool isSpecial(char c) {
  return kSpecial.find(c) != std::string_view::npos;
}
bool isAsciiLetter(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
}  // namespace

std::string shellQuote(std::string_view s) {
  if (s.empty()) return "''";
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_bang = s.find('!') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const bool has_backslash = s.find('\\') != std::string_view::npos;
  const bool has_space = image::js::containsWhitespace(s);

  if (has_single && has_bang) {
    std::string out = "'";
    for (char c : s) {
      if (c == '\'') {
        out += "'\"'\"'";
      } else {
        out += c;
      }
    }
    return out + "'";
  }
  if ((has_double || has_space || has_backslash) && !has_single) {
    return "'" + std::string(s) + "'";
  }
  if (has_double || has_single || has_space) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\' || c == '$' || c == '`') out += '\\';
      out += c;
    }
    return out + "\"";
  }
  // /([A-Za-z]:)?([#!"$&'()*,:;<=>?@[\\\]^`{|}~])/g → '$1\\$2'
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    if (isAsciiLetter(s[i]) && i + 2 < s.size() && s[i + 1] == ':' && isSpecial(s[i + 2])) {
      out += s[i];
      out += ':';
      out += '\\';
      out += s[i + 2];
      i += 3;
    } else if (isSpecial(s[i])) {
      out += '\\';
      out += s[i];
      ++i;
    } else {
      out += s[i];
      ++i;
    }
  }
  return out;
}

std::string shellQuote(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ' ';
    out += shellQuote(items[i]);
  }
  return out;
}

}  // namespace cairn
