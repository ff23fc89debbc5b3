#include "cairn/dockerfile/dockerignore.h"

#include <cstdint>
#include <string>
#include <vector>

#include "cairn/common/strings.h"
#include "cairn/common/utf8.h"

namespace cairn::dockerfile {
namespace {

using Token = DockerIgnore::Token;
using Pattern = DockerIgnore::Pattern;

// Decodes UTF-8 so that `?` and classes match one character, as Go's regexp does. An invalid
// byte decodes to its own escape code point (never to a valid character), so no input is
// rejected and a stray 0xE9 does not match "é".
std::u32string decodeUtf8(std::string_view s) {
  return cairn::decodeUtf8(s, InvalidUtf8::kSurrogateEscape);
}

// Go's path.Clean: lexical, on '/'-separated paths.
std::string cleanPath(std::string_view p) {
  if (p.empty()) return ".";
  bool rooted = p.front() == '/';
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i <= p.size()) {
    std::size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view part = p.substr(i, j - i);
    if (part.empty() || part == ".") {
      // skip
    } else if (part == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!rooted) {
        parts.push_back(part);
      }
    } else {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out = rooted ? "/" : "";
  for (std::size_t k = 0; k < parts.size(); ++k) {
    if (k > 0) out += '/';
    out += parts[k];
  }
  if (out.empty()) out = ".";
  return out;
}

// Compiles a cleaned pattern the way patternmatcher turns it into a regexp.
Result<std::vector<Token>> compile(std::string_view text) {
  std::u32string p = decodeUtf8(text);
  std::vector<Token> tokens;
  std::size_t i = 0;
  auto literal = [&](char32_t c) {
    Token t;
    t.kind = Token::Kind::kLiteral;
    t.ch = c;
    tokens.push_back(std::move(t));
  };
  while (i < p.size()) {
    char32_t c = p[i];
    if (c == U'*') {
      if (i + 1 < p.size() && p[i + 1] == U'*') {
        i += 2;
        if (i < p.size() && p[i] == U'/') ++i;  // "**/" is "**"
        Token t;
        t.kind = i >= p.size() ? Token::Kind::kDoubleStarEnd : Token::Kind::kDoubleStar;
        tokens.push_back(std::move(t));
        continue;
      }
      Token t;
      t.kind = Token::Kind::kStar;
      tokens.push_back(std::move(t));
      ++i;
    } else if (c == U'?') {
      Token t;
      t.kind = Token::Kind::kAnyChar;
      tokens.push_back(std::move(t));
      ++i;
    } else if (c == U'\\') {
      if (i + 1 >= p.size()) return invalidArgument("trailing backslash escapes nothing");
      literal(p[i + 1]);
      i += 2;
    } else if (c == U'[') {
      Token t;
      t.kind = Token::Kind::kClass;
      std::size_t j = i + 1;
      if (j < p.size() && p[j] == U'^') {
        t.negated = true;
        ++j;
      }
      bool closed = false;
      bool first = true;
      while (j < p.size()) {
        char32_t lo = p[j];
        if (lo == U']' && !first) {
          closed = true;
          ++j;
          break;
        }
        first = false;
        if (lo == U'\\') {
          if (j + 1 >= p.size()) break;
          lo = p[++j];
        }
        ++j;
        char32_t hi = lo;
        if (j + 1 < p.size() && p[j] == U'-' && p[j + 1] != U']') {
          hi = p[j + 1];
          j += 2;
          if (hi == U'\\') {
            if (j >= p.size()) break;
            hi = p[j++];
          }
          if (hi < lo) return invalidArgument("character class range out of order");
        }
        t.ranges.emplace_back(lo, hi);
      }
      if (!closed) return invalidArgument("unterminated character class '['");
      tokens.push_back(std::move(t));
      i = j;
    } else {
      literal(c);
      ++i;
    }
  }
  return tokens;
}

bool classMatches(const Token& t, char32_t c) {
  bool in = false;
  for (const auto& [lo, hi] : t.ranges) {
    if (c >= lo && c <= hi) {
      in = true;
      break;
    }
  }
  return in != t.negated;
}

// A Thompson simulation over the tokens. State k < n means "before token k"; state n is
// accepting; state n + 1 + k means "inside the `(.*/)?` of double-star token k". Only the active
// states are visited, so a step costs what is alive, not the pattern's length.
class Nfa {
 public:
  explicit Nfa(const std::vector<Token>& tokens)
      : tokens_(tokens), n_(tokens.size()), mark_(2 * n_ + 1, 0) {
    ++gen_;
    add(cur_, 0);
  }

  void step(char32_t c) {
    ++gen_;
    next_.clear();
    for (std::size_t s : cur_) {
      if (s > n_) {  // inside a double star
        add(next_, s);
        if (c == U'/') add(next_, s - n_);  // leaves double star k = s - n_ - 1
        continue;
      }
      if (s == n_) continue;
      const Token& t = tokens_[s];
      switch (t.kind) {
        case Token::Kind::kLiteral:
          if (t.ch == c) add(next_, s + 1);
          break;
        case Token::Kind::kAnyChar:
          if (c != U'/') add(next_, s + 1);
          break;
        case Token::Kind::kClass:
          if (classMatches(t, c)) add(next_, s + 1);
          break;
        case Token::Kind::kStar:
          if (c != U'/') add(next_, s);
          break;
        case Token::Kind::kDoubleStarEnd:
          add(next_, s);
          break;
        case Token::Kind::kDoubleStar:
          add(next_, n_ + 1 + s);
          if (c == U'/') add(next_, s + 1);
          break;
      }
    }
    std::swap(cur_, next_);
  }

  bool accepting() const { return mark_[n_] == gen_; }
  bool alive() const { return !cur_.empty(); }

 private:
  static bool starLike(Token::Kind k) {
    return k == Token::Kind::kStar || k == Token::Kind::kDoubleStar ||
           k == Token::Kind::kDoubleStarEnd;
  }

  // Adds a state and, since star-like tokens may match nothing, the states after it.
  void add(std::vector<std::size_t>& set, std::size_t s) {
    for (;;) {
      if (mark_[s] == gen_) return;
      mark_[s] = gen_;
      set.push_back(s);
      if (s < n_ && starLike(tokens_[s].kind)) {
        ++s;
        continue;
      }
      return;
    }
  }

  const std::vector<Token>& tokens_;
  std::size_t n_;
  std::vector<uint64_t> mark_;
  uint64_t gen_ = 0;
  std::vector<std::size_t> cur_;
  std::vector<std::size_t> next_;
};

// True if the pattern matches the path or one of its parent directories.
bool matchesOrParent(const Pattern& pattern, const std::u32string& path) {
  Nfa nfa(pattern.tokens);
  for (char32_t c : path) {
    if (c == U'/' && nfa.accepting()) return true;
    nfa.step(c);
    if (!nfa.alive()) return false;
  }
  return nfa.accepting();
}

std::u32string normalizePath(std::string_view path) {
  while (!path.empty() && path.back() == '/')
    path.remove_suffix(1);
  while (path.starts_with("./"))
    path.remove_prefix(2);
  while (!path.empty() && path.front() == '/')
    path.remove_prefix(1);
  return decodeUtf8(path);
}

}  // namespace

Result<DockerIgnore> DockerIgnore::parse(std::string_view file_content) {
  DockerIgnore out;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < file_content.size()) {
    std::size_t end = file_content.find('\n', pos);
    if (end == std::string_view::npos) end = file_content.size();
    std::string_view line = file_content.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line_no == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
    // Comments are recognised before trimming, as Docker's ReadAll does.
    if (line.starts_with('#')) continue;
    line = trimSpace(line);
    if (line.empty()) continue;
    Pattern pattern;
    if (line.front() == '!') {
      pattern.exclusion = true;
      line = trimSpace(line.substr(1));
      if (line.empty()) {
        return invalidArgument(".dockerignore line " + std::to_string(line_no) +
                               ": illegal exclusion pattern: \"!\"");
      }
    }
    std::string cleaned = cleanPath(line);
    if (cleaned.size() > 1 && cleaned.front() == '/') cleaned.erase(0, 1);
    auto tokens = compile(cleaned);
    if (!tokens.ok()) {
      return invalidArgument(".dockerignore line " + std::to_string(line_no) + ": pattern \"" +
                             std::string(line) + "\": " + tokens.status().message());
    }
    pattern.text = std::move(cleaned);
    pattern.tokens = std::move(tokens).value();
    out.has_exclusions_ = out.has_exclusions_ || pattern.exclusion;
    out.patterns_.push_back(std::move(pattern));
  }
  return out;
}

bool DockerIgnore::excluded(std::string_view path) const {
  if (patterns_.empty()) return false;
  std::u32string p = normalizePath(path);
  bool matched = false;
  for (const Pattern& pattern : patterns_) {
    // An exclusion only matters once something matched, an inclusion only until then.
    if (pattern.exclusion != matched) continue;
    if (matchesOrParent(pattern, p)) matched = !pattern.exclusion;
  }
  return matched;
}

bool DockerIgnore::mayReincludeUnder(std::string_view dir) const {
  if (!has_exclusions_) return false;
  std::u32string d = normalizePath(dir);
  for (const Pattern& pattern : patterns_) {
    if (!pattern.exclusion) continue;
    if (matchesOrParent(pattern, d)) return true;
    Nfa nfa(pattern.tokens);
    for (char32_t c : d)
      nfa.step(c);
    if (!d.empty()) nfa.step(U'/');
    if (nfa.alive()) return true;
  }
  return false;
}

std::vector<std::string> DockerIgnore::patterns() const {
  std::vector<std::string> out;
  out.reserve(patterns_.size());
  for (const auto& p : patterns_)
    out.push_back((p.exclusion ? "!" : "") + p.text);
  return out;
}

}  // namespace cairn::dockerfile
