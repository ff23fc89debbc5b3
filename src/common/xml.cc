#include "cairn/common/xml.h"

#include <charconv>
#include <cstdint>

#include "cairn/common/strings.h"
#include "cairn/common/utf8.h"

namespace cairn {

std::string xmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

namespace {

// The character an entity body ("amp", "#233", "#xE9") stands for, appended to `out`.
bool appendEntity(std::string& out, std::string_view ent) {
  if (ent == "amp") {
    out.push_back('&');
  } else if (ent == "lt") {
    out.push_back('<');
  } else if (ent == "gt") {
    out.push_back('>');
  } else if (ent == "quot") {
    out.push_back('"');
  } else if (ent == "apos") {
    out.push_back('\'');
  } else if (ent.size() > 1 && ent[0] == '#') {
    bool hex = ent[1] == 'x' || ent[1] == 'X';
    std::string_view digits = ent.substr(hex ? 2 : 1);
    std::uint32_t code = 0;
    auto [p, ec] =
        std::from_chars(digits.data(), digits.data() + digits.size(), code, hex ? 16 : 10);
    if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() || code == 0 ||
        code > kMaxCodePoint || isSurrogate(code)) {
      return false;
    }
    appendUtf8(out, code, InvalidUtf8::kReplace);
  } else {
    return false;
  }
  return true;
}

}  // namespace

std::string xmlUnescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    std::size_t semi = s.find(';', i);
    if (semi == std::string_view::npos || !appendEntity(out, s.substr(i + 1, semi - i - 1))) {
      out.push_back('&');
      continue;
    }
    i = semi;
  }
  return out;
}

std::optional<std::string> xmlElementText(std::string_view xml, std::string_view tag) {
  std::string open = "<" + std::string(tag) + ">";
  std::string close = "</" + std::string(tag) + ">";
  std::size_t b = xml.find(open);
  if (b == std::string_view::npos) return std::nullopt;
  b += open.size();
  std::size_t e = xml.find(close, b);
  if (e == std::string_view::npos) return std::nullopt;
  return xmlUnescape(trimSpace(xml.substr(b, e - b)));
}

std::vector<std::string_view> xmlElements(std::string_view xml, std::string_view tag) {
  std::string open = "<" + std::string(tag) + ">";
  std::string close = "</" + std::string(tag) + ">";
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (true) {
    std::size_t b = xml.find(open, pos);
    if (b == std::string_view::npos) break;
    b += open.size();
    std::size_t e = xml.find(close, b);
    if (e == std::string_view::npos) break;
    out.push_back(xml.substr(b, e - b));
    pos = e + close.size();
  }
  return out;
}

}  // namespace cairn
