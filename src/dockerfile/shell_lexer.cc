#include "cairn/dockerfile/shell_lexer.h"

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

#include "utf8.h"

namespace cairn::dockerfile {
namespace {

using internal::appendUtf8;
using internal::decodeUtf8;
using internal::encodeUtf8;
using internal::isDigit;
using internal::isLetter;
using internal::isUnicodeSpace;

constexpr char32_t kEof = 0xFFFFFFFF;
// ${a:-${b:-${c:-…}}} recurses; untrusted input must not exhaust the stack.
constexpr int kMaxNesting = 64;

// Avoids operator+ on u32string, which trips a false -Wrestrict in g++ 12.
std::u32string concat(std::initializer_list<std::u32string_view> parts) {
  std::u32string out;
  for (auto p : parts)
    out.append(p.data(), p.size());
  return out;
}

// A failure inside the expansion; wrapped with the input at the top.
struct LexError {
  std::string message;
};

// Splits into words on unquoted whitespace as it goes, like BuildKit's wordsStruct.
class Words {
 public:
  void addChar(char32_t c) {
    if (isUnicodeSpace(c)) {
      if (in_word_ && !word_.empty()) {
        words_.push_back(std::move(word_));
        word_.clear();
        in_word_ = false;
      }
      return;
    }
    addRawChar(c);
  }
  void addRawChar(char32_t c) {
    appendUtf8(word_, c);
    in_word_ = true;
  }
  void addString(std::u32string_view s) {
    for (char32_t c : s)
      addChar(c);
  }
  void addRawString(std::u32string_view s) {
    for (char32_t c : s)
      appendUtf8(word_, c);
    in_word_ = true;
  }
  std::vector<std::string> take() {
    if (!word_.empty()) {
      words_.push_back(std::move(word_));
      word_.clear();
      in_word_ = false;
    }
    return std::move(words_);
  }

 private:
  std::string word_;
  std::vector<std::string> words_;
  bool in_word_ = false;
};

// A shell pattern (`*`, `?`, escaped literals) as used by ${V#p} ${V%p} ${V/p/r}.
struct PatternToken {
  enum class Kind { kLiteral, kAny, kStar } kind;
  char32_t ch;
};

bool compilePattern(std::u32string_view pattern, std::vector<PatternToken>& out,
                    std::string& error) {
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char32_t c = pattern[i];
    if (c == U'*') {
      out.push_back({PatternToken::Kind::kStar, 0});
    } else if (c == U'?') {
      out.push_back({PatternToken::Kind::kAny, 0});
    } else if (c == U'\\') {
      // `\}` and `\/` only protect the ${} syntax; the backslash is not part of the pattern.
      if (i + 1 < pattern.size() && (pattern[i + 1] == U'}' || pattern[i + 1] == U'/')) continue;
      if (i + 1 >= pattern.size()) {
        error = "invalid escape '\\' at the end of the pattern";
        return false;
      }
      char32_t next = pattern[++i];
      if (next != U'*' && next != U'?' && next != U'\\') {
        std::string n;
        appendUtf8(n, next);
        error = "invalid escape '\\" + n + "'";
        return false;
      }
      out.push_back({PatternToken::Kind::kLiteral, next});
    } else {
      out.push_back({PatternToken::Kind::kLiteral, c});
    }
  }
  return true;
}

// Runs the pattern over value[start…] and records, for each end position, whether
// value[start, end) matches the whole pattern. accept[k] refers to end = start + k.
std::vector<bool> matchEnds(const std::vector<PatternToken>& tokens, std::u32string_view value,
                            std::size_t start) {
  std::size_t n = tokens.size();
  std::vector<bool> cur(n + 1, false);
  std::vector<bool> next(n + 1, false);
  auto closure = [&](std::vector<bool>& set) {
    for (std::size_t s = 0; s < n; ++s) {
      if (set[s] && tokens[s].kind == PatternToken::Kind::kStar) set[s + 1] = true;
    }
  };
  cur[0] = true;
  closure(cur);
  std::vector<bool> accept;
  accept.reserve(value.size() - start + 1);
  accept.push_back(cur[n]);
  for (std::size_t i = start; i < value.size(); ++i) {
    std::fill(next.begin(), next.end(), false);
    bool any = false;
    for (std::size_t s = 0; s < n; ++s) {
      if (!cur[s]) continue;
      const PatternToken& t = tokens[s];
      if (t.kind == PatternToken::Kind::kStar) {
        next[s] = true;
        any = true;
      } else if (t.kind == PatternToken::Kind::kAny || t.ch == value[i]) {
        next[s + 1] = true;
        any = true;
      }
    }
    std::swap(cur, next);
    closure(cur);
    accept.push_back(cur[n]);
    if (!any) break;
  }
  return accept;
}

// The end of the shortest (or longest) match of the pattern starting at `start`, if any.
std::optional<std::size_t> matchFrom(const std::vector<PatternToken>& tokens,
                                     std::u32string_view value, std::size_t start, bool longest) {
  std::vector<bool> accept = matchEnds(tokens, value, start);
  if (longest) {
    for (std::size_t k = accept.size(); k-- > 0;) {
      if (accept[k]) return start + k;
    }
  } else {
    for (std::size_t k = 0; k < accept.size(); ++k) {
      if (accept[k]) return start + k;
    }
  }
  return std::nullopt;
}

class ShellWord {
 public:
  ShellWord(std::u32string input, char32_t escape, const ShellLexerOptions& options,
            const EnvLookup& env)
      : in_(std::move(input)),
        escape_(escape),
        options_(options),
        env_(env),
        raw_escapes_(options.raw_escapes) {}

  // Returns false and sets error_ on failure.
  bool run(std::u32string& result, std::vector<std::string>& words) {
    return processStopOn(kEof, raw_escapes_, result, &words);
  }

  std::string error_;
  std::vector<std::string> matched_;
  std::vector<std::string> unmatched_;

 private:
  char32_t peek() const { return pos_ < in_.size() ? in_[pos_] : kEof; }
  char32_t next() { return pos_ < in_.size() ? in_[pos_++] : kEof; }

  bool fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  bool processStopOn(char32_t stop, bool raw_escapes, std::u32string& result,
                     std::vector<std::string>* words_out) {
    if (++depth_ > kMaxNesting) return fail("variable expansion nested too deeply");
    bool saved_raw = raw_escapes_;
    raw_escapes_ = raw_escapes;
    bool ok = processStopOnInner(stop, result, words_out);
    raw_escapes_ = saved_raw;
    --depth_;
    return ok;
  }

  bool processStopOnInner(char32_t stop, std::u32string& result,
                          std::vector<std::string>* words_out) {
    Words words;
    while (peek() != kEof) {
      char32_t c = peek();
      if (stop != kEof && c == stop) {
        next();
        if (words_out) *words_out = words.take();
        return true;
      }
      bool quote = !options_.skip_process_quotes && (c == U'\'' || c == U'"');
      if (c == U'$' || quote) {
        std::u32string tmp;
        bool ok = c == U'$'    ? processDollar(tmp)
                  : c == U'\'' ? processSingleQuote(tmp)
                               : processDoubleQuote(tmp);
        if (!ok) return false;
        result += tmp;
        if (c == U'$') {
          words.addString(tmp);
        } else {
          words.addRawString(tmp);
        }
        continue;
      }
      c = next();
      if (c == escape_) {
        if (raw_escapes_) {
          words.addRawChar(c);
          result.push_back(c);
        }
        // The escape character escapes the next one, except at the end of the input.
        c = next();
        if (c == kEof) break;
        words.addRawChar(c);
      } else {
        words.addChar(c);
      }
      result.push_back(c);
    }
    if (stop != kEof) {
      std::string s;
      appendUtf8(s, stop);
      return fail("unexpected end of statement while looking for matching " + s);
    }
    if (words_out) *words_out = words.take();
    return true;
  }

  bool processSingleQuote(std::u32string& result) {
    char32_t c = next();
    if (options_.raw_quotes) result.push_back(c);
    for (;;) {
      c = next();
      if (c == kEof)
        return fail("unexpected end of statement while looking for matching single-quote");
      if (c == U'\'') {
        if (options_.raw_quotes) result.push_back(c);
        return true;
      }
      result.push_back(c);
    }
  }

  bool processDoubleQuote(std::u32string& result) {
    char32_t c = next();
    if (options_.raw_quotes) result.push_back(c);
    for (;;) {
      char32_t p = peek();
      if (p == kEof)
        return fail("unexpected end of statement while looking for matching double-quote");
      if (p == U'"') {
        c = next();
        if (options_.raw_quotes) result.push_back(c);
        return true;
      }
      if (p == U'$') {
        std::u32string value;
        if (!processDollar(value)) return false;
        result += value;
        continue;
      }
      c = next();
      if (c == escape_) {
        if (raw_escapes_) result.push_back(c);
        char32_t after = peek();
        if (after == kEof) continue;  // an escape at the end of the word is dropped
        // Only `"`, `$` and the escape character itself can be escaped inside "…".
        if (after == U'"' || after == U'$' || after == escape_) c = next();
      }
      result.push_back(c);
    }
  }

  static bool isSpecialParam(char32_t c) {
    switch (c) {
      case U'@':
      case U'*':
      case U'#':
      case U'?':
      case U'-':
      case U'$':
      case U'!':
      case U'0':
        return true;
      default:
        return false;
    }
  }

  std::u32string processName() {
    std::u32string name;
    while (peek() != kEof) {
      char32_t c = peek();
      if (name.empty() && isDigit(c)) {
        // $1, $999: positional parameters are read as a whole number and are never set.
        while (peek() != kEof && isDigit(peek()))
          name.push_back(next());
        return name;
      }
      if (name.empty() && isSpecialParam(c)) {
        name.push_back(next());
        return name;
      }
      if (!isLetter(c) && !isDigit(c) && c != U'_') break;
      name.push_back(next());
    }
    return name;
  }

  std::optional<std::u32string> getEnv(const std::u32string& name) {
    std::string key = encodeUtf8(name);
    std::optional<std::string> v = env_ ? env_(key) : std::nullopt;
    if (v) {
      if (std::find(matched_.begin(), matched_.end(), key) == matched_.end()) {
        matched_.push_back(key);
      }
      return decodeUtf8(*v);
    }
    if (std::find(unmatched_.begin(), unmatched_.end(), key) == unmatched_.end()) {
      unmatched_.push_back(key);
    }
    return std::nullopt;
  }

  bool processDollar(std::u32string& out) {
    next();  // '$'
    if (peek() != U'{') {
      std::u32string name = processName();
      if (name.empty()) {
        out.assign(1, U'$');
        return true;
      }
      auto value = getEnv(name);
      if (!value && options_.skip_unset_env) {
        out = concat({U"$", name});
        return true;
      }
      out = value.value_or(U"");
      return true;
    }
    next();  // '{'
    switch (peek()) {
      case kEof:
        return fail("syntax error: missing '}'");
      case U'{':
      case U'}':
      case U':':
        return fail("syntax error: bad substitution");
      default:
        break;
    }
    std::u32string name = processName();
    char32_t c = next();
    std::u32string modifier;
    if (c != kEof) modifier.push_back(c);
    bool null_is_unset = false;

    if (c == U'}') {
      auto value = getEnv(name);
      if (!value && options_.skip_unset_env) {
        out = concat({U"${", name, U"}"});
        return true;
      }
      out = value.value_or(U"");
      return true;
    }
    if (c == U'/') return processReplace(name, out);
    if (c == U':') {
      null_is_unset = true;
      c = next();
      if (c != kEof) modifier.push_back(c);
    } else if (c != U'+' && c != U'-' && c != U'?' && c != U'#' && c != U'%') {
      return fail("unsupported modifier (" + encodeUtf8(modifier) + ") in substitution");
    }

    std::u32string word;
    if (!processStopOn(U'}', c == U'#' || c == U'%', word, nullptr)) {
      if (peek() == kEof) error_ = "syntax error: missing '}'";
      return false;
    }
    auto value = getEnv(name);
    if (!value && options_.skip_unset_env) {
      out = concat({U"${", name, modifier, word, U"}"});
      return true;
    }
    bool set = value.has_value();
    std::u32string v = value.value_or(U"");
    switch (c) {
      case U'-':
        out = (!set || (null_is_unset && v.empty())) ? word : v;
        return true;
      case U'+':
        out = (!set || (null_is_unset && v.empty())) ? U"" : word;
        return true;
      case U'?':
        if (!set) {
          return fail(
              encodeUtf8(name) + ": " +
              (word.empty() ? std::string("is not allowed to be unset") : encodeUtf8(word)));
        }
        if (null_is_unset && v.empty()) {
          return fail(
              encodeUtf8(name) + ": " +
              (word.empty() ? std::string("is not allowed to be empty") : encodeUtf8(word)));
        }
        out = v;
        return true;
      case U'#':
      case U'%': {
        bool greedy = !word.empty() && word.front() == c;
        if (greedy) word.erase(0, 1);
        return trim(c == U'%', word, v, greedy, out);
      }
      default:
        return fail("unsupported modifier (" + encodeUtf8(modifier) + ") in substitution");
    }
  }

  // ${V#p} ${V##p} ${V%p} ${V%%p}: removes the shortest (greedy: longest) prefix or suffix
  // matching the pattern.
  bool trim(bool suffix, const std::u32string& pattern, const std::u32string& value, bool greedy,
            std::u32string& out) {
    std::vector<PatternToken> tokens;
    std::string error;
    if (!compilePattern(pattern, tokens, error)) {
      return fail("invalid pattern (" + encodeUtf8(pattern) + ") in substitution: " + error);
    }
    if (!suffix) {
      auto end = matchFrom(tokens, value, 0, greedy);
      out = end ? value.substr(*end) : value;
      return true;
    }
    std::reverse(tokens.begin(), tokens.end());
    std::u32string reversed(value.rbegin(), value.rend());
    auto end = matchFrom(tokens, reversed, 0, greedy);
    out = end ? value.substr(0, value.size() - *end) : value;
    return true;
  }

  // ${V/p/r} replaces the first (${V//p/r}: every) longest match of p with r.
  bool processReplace(const std::u32string& name, std::u32string& out) {
    bool replace_all = peek() == U'/';
    if (replace_all) next();
    std::u32string pattern;
    if (!processStopOn(U'/', true, pattern, nullptr)) {
      if (peek() == kEof) error_ = "syntax error: missing '/' in ${}";
      return false;
    }
    std::u32string replacement;
    if (!processStopOn(U'}', true, replacement, nullptr)) {
      if (peek() == kEof) error_ = "syntax error: missing '}'";
      return false;
    }
    auto value = getEnv(name);
    if (!value && options_.skip_unset_env) {
      out = concat({U"${", name, U"/", pattern, U"/", replacement, U"}"});
      return true;
    }
    std::vector<PatternToken> tokens;
    std::string error;
    if (!compilePattern(pattern, tokens, error)) {
      return fail("invalid pattern (" + encodeUtf8(pattern) + ") in substitution: " + error);
    }
    std::u32string v = value.value_or(U"");
    // Leftmost match first; empty matches right after a match are skipped (Go's ReplaceAll).
    std::u32string result;
    std::size_t search = 0;
    std::size_t last_end = 0;
    bool first = true;
    while (search <= v.size()) {
      std::optional<std::pair<std::size_t, std::size_t>> found;
      for (std::size_t s = search; s <= v.size(); ++s) {
        if (auto e = matchFrom(tokens, v, s, true)) {
          found.emplace(s, *e);
          break;
        }
      }
      if (!found) break;
      auto [ms, me] = *found;
      result.append(v, last_end, ms - last_end);
      if (me > last_end || ms == 0 || first) result += replacement;
      first = false;
      last_end = me;
      if (!replace_all) break;
      search = me > search ? me : search + 1;
    }
    if (last_end <= v.size()) result.append(v, last_end, std::u32string::npos);
    out = std::move(result);
    return true;
  }

  std::u32string in_;
  std::size_t pos_ = 0;
  char32_t escape_;
  const ShellLexerOptions& options_;
  const EnvLookup& env_;
  bool raw_escapes_;
  int depth_ = 0;
};

}  // namespace

EnvLookup lookupIn(const EnvMap& env) {
  return [&env](std::string_view name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

Result<ProcessedWord> ShellLexer::process(std::string_view word, const EnvLookup& env) const {
  ShellWord sw(decodeUtf8(word), escape_, options_, env);
  std::u32string result;
  ProcessedWord out;
  if (!sw.run(result, out.words)) {
    std::string quoted;
    quoted.reserve(word.size() + 2);
    quoted += '"';
    quoted += word;
    quoted += '"';
    return invalidArgument("failed to process " + quoted + ": " + sw.error_);
  }
  out.result = encodeUtf8(result);
  out.matched = std::move(sw.matched_);
  out.unmatched = std::move(sw.unmatched_);
  return out;
}

Result<std::string> ShellLexer::processWord(std::string_view word, const EnvMap& env) const {
  CAIRN_ASSIGN_OR_RETURN(ProcessedWord r, process(word, lookupIn(env)));
  return std::move(r.result);
}

Result<std::vector<std::string>> ShellLexer::processWords(std::string_view word,
                                                          const EnvMap& env) const {
  CAIRN_ASSIGN_OR_RETURN(ProcessedWord r, process(word, lookupIn(env)));
  return std::move(r.words);
}

}  // namespace cairn::dockerfile
