#include "js_compat.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace cairn::image::js {

bool isWhitespace(char32_t c) {
  // ECMAScript's WhiteSpace and LineTerminator: Unicode's set without NEL, plus the BOM.
  return c == 0xFEFF || (c != 0x85 && isUnicodeWhiteSpace(c));
}

bool containsWhitespace(std::string_view s) {
  for (char32_t c : decodeUtf8(s)) {
    if (isWhitespace(c)) return true;
  }
  return false;
}

namespace {
std::string trimImpl(std::string_view s, bool left, bool right) {
  std::u32string u = decodeUtf8(s);
  std::size_t b = 0;
  std::size_t e = u.size();
  if (left) {
    while (b < e && isWhitespace(u[b]))
      ++b;
  }
  if (right) {
    while (e > b && isWhitespace(u[e - 1]))
      --e;
  }
  // Re-encode only the kept range; valid input round-trips unchanged.
  return encodeUtf8(std::u32string_view(u).substr(b, e - b));
}

std::u16string toUtf16(std::string_view s) {
  std::u16string out;
  for (char32_t c : decodeUtf8(s)) {
    if (c >= 0x10000) {
      c -= 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (c >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (c & 0x3FF)));
    } else {
      out.push_back(static_cast<char16_t>(c));
    }
  }
  return out;
}
}  // namespace

std::string trim(std::string_view s) {
  return trimImpl(s, true, true);
}
std::string trimStart(std::string_view s) {
  return trimImpl(s, true, false);
}
std::string trimEnd(std::string_view s) {
  return trimImpl(s, false, true);
}

bool utf16Less(std::string_view a, std::string_view b) {
  return toUtf16(a) < toUtf16(b);
}

std::size_t utf16Length(std::string_view s) {
  return toUtf16(s).size();
}

std::string utf16Slice(std::string_view s, std::size_t begin, std::size_t end) {
  std::u16string u = toUtf16(s);
  end = std::min(end, u.size());
  if (begin >= end) return "";
  std::u32string cps;
  for (std::size_t i = begin; i < end; ++i) {
    char16_t c = u[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < end && u[i + 1] >= 0xDC00 && u[i + 1] <= 0xDFFF) {
      cps.push_back(0x10000 + ((static_cast<char32_t>(c) - 0xD800) << 10) + (u[i + 1] - 0xDC00));
      ++i;
    } else if (c >= 0xD800 && c <= 0xDFFF) {
      cps.push_back(0xFFFD);
    } else {
      cps.push_back(c);
    }
  }
  return encodeUtf8(cps);
}

// ---------------------------------------------------------------------------------------------
// pathe

namespace {

bool isSlash(char c) {
  return c == '/' || c == '\\';
}
bool isAsciiAlpha(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

// pathe's normalizeString: resolves "." and ".." segments, collapses slashes.
std::string normalizeString(std::string_view path, bool allow_above_root) {
  std::string res;
  std::size_t last_segment_length = 0;
  long last_slash = -1;
  int dots = 0;
  char ch = 0;
  for (std::size_t index = 0; index <= path.size(); ++index) {
    if (index < path.size()) {
      ch = path[index];
    } else if (ch == '/') {
      break;
    } else {
      ch = '/';
    }
    if (ch == '/') {
      if (last_slash == static_cast<long>(index) - 1 || dots == 1) {
        // nothing
      } else if (dots == 2) {
        if (res.size() < 2 || last_segment_length != 2 || res[res.size() - 1] != '.' ||
            res[res.size() - 2] != '.') {
          if (res.size() > 2) {
            std::size_t last_slash_index = res.rfind('/');
            if (last_slash_index == std::string::npos) {
              res.clear();
              last_segment_length = 0;
            } else {
              res.resize(last_slash_index);
              std::size_t ls = res.rfind('/');
              last_segment_length = ls == std::string::npos ? res.size() : res.size() - 1 - ls;
            }
            last_slash = static_cast<long>(index);
            dots = 0;
            continue;
          }
          if (!res.empty()) {
            res.clear();
            last_segment_length = 0;
            last_slash = static_cast<long>(index);
            dots = 0;
            continue;
          }
        }
        if (allow_above_root) {
          res += res.empty() ? ".." : "/..";
          last_segment_length = 2;
        }
      } else {
        std::string_view seg = path.substr(last_slash + 1, index - last_slash - 1);
        if (!res.empty()) {
          res += '/';
          res += seg;
        } else {
          res = std::string(seg);
        }
        last_segment_length = index - last_slash - 1;
      }
      last_slash = static_cast<long>(index);
      dots = 0;
    } else if (ch == '.' && dots != -1) {
      ++dots;
    } else {
      dots = -1;
    }
  }
  return res;
}

bool isDriveLetterOnly(std::string_view p) {
  return p.size() == 2 && isAsciiAlpha(p[0]) && p[1] == ':';
}

std::string currentDir() {
  std::error_code ec;
  auto p = std::filesystem::current_path(ec);
  return ec ? std::string("/") : p.string();
}

}  // namespace

namespace pathe {

std::string normalizeWindowsPath(std::string_view p) {
  std::string out(p);
  for (char& c : out) {
    if (c == '\\') c = '/';
  }
  if (out.size() >= 3 && isAsciiAlpha(out[0]) && out[1] == ':' && out[2] == '/' && out[0] >= 'a') {
    out[0] = static_cast<char>(out[0] - 'a' + 'A');
  }
  return out;
}

bool isAbsolute(std::string_view p) {
  // /^[/\\](?![/\\])|^[/\\]{2}(?!\.)|^[A-Za-z]:[/\\]/
  if (!p.empty() && isSlash(p[0])) {
    if (p.size() < 2 || !isSlash(p[1])) return true;
    return p.size() < 3 || p[2] != '.';
  }
  return p.size() >= 3 && isAsciiAlpha(p[0]) && p[1] == ':' && isSlash(p[2]);
}

std::string normalize(std::string_view input) {
  if (input.empty()) return ".";
  std::string path = normalizeWindowsPath(input);
  bool is_unc = path.size() >= 2 && isSlash(path[0]) && isSlash(path[1]);
  bool is_abs = isAbsolute(path);
  bool trailing = path.back() == '/';
  path = normalizeString(path, !is_abs);
  if (path.empty()) {
    if (is_abs) return "/";
    return trailing ? "./" : ".";
  }
  if (trailing) path += '/';
  if (isDriveLetterOnly(path)) path += '/';
  if (is_unc) {
    if (!is_abs) return "//./" + path;
    return "//" + path;
  }
  return is_abs && !isAbsolute(path) ? "/" + path : path;
}

std::string join(const std::vector<std::string_view>& segments) {
  std::string path;
  for (std::string_view seg : segments) {
    if (seg.empty()) continue;
    if (!path.empty()) {
      bool path_trailing = path.back() == '/';
      bool seg_leading = seg.front() == '/';
      if (path_trailing && seg_leading) {
        path += seg.substr(1);
      } else if (path_trailing || seg_leading) {
        path += seg;
      } else {
        path += '/';
        path += seg;
      }
    } else {
      path += seg;
    }
  }
  return normalize(path);
}

std::string resolve(std::string_view input) {
  std::string arg = normalizeWindowsPath(input);
  std::string resolved;
  bool resolved_absolute = false;
  if (!arg.empty()) {
    resolved = arg + "/";
    resolved_absolute = isAbsolute(arg);
  }
  if (!resolved_absolute) {
    std::string cwd = currentDir();
    for (char& c : cwd) {
      if (c == '\\') c = '/';
    }
    if (!cwd.empty()) {
      resolved = cwd + "/" + resolved;
      resolved_absolute = isAbsolute(cwd);
    }
  }
  resolved = normalizeString(resolved, !resolved_absolute);
  if (resolved_absolute && !isAbsolute(resolved)) return "/" + resolved;
  return resolved.empty() ? "." : resolved;
}

namespace {
std::vector<std::string> splitForRelative(std::string_view p) {
  std::string r = resolve(p);
  // .replace(/^\/([A-Za-z]:)?$/, "$1")
  if (r == "/") {
    r.clear();
  } else if (r.size() == 3 && r[0] == '/' && isDriveLetterOnly(r.substr(1))) {
    r = r.substr(1);
  }
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t pos = r.find('/', start);
    if (pos == std::string::npos) {
      parts.push_back(r.substr(start));
      break;
    }
    parts.push_back(r.substr(start, pos - start));
    start = pos + 1;
  }
  return parts;
}
}  // namespace

std::string relative(std::string_view from, std::string_view to) {
  std::vector<std::string> f = splitForRelative(from);
  std::vector<std::string> t = splitForRelative(to);
  if (t[0].size() > 1 && t[0][1] == ':' && f[0].size() > 1 && f[0][1] == ':' && f[0] != t[0]) {
    std::string out;
    for (std::size_t i = 0; i < t.size(); ++i)
      out += (i ? "/" : "") + t[i];
    return out;
  }
  std::size_t common = 0;
  const std::vector<std::string> f_copy = f;
  std::size_t ti = 0;
  for (const std::string& segment : f_copy) {
    if (ti >= t.size() || t[ti] != segment) {
      if (!(ti >= t.size() && segment.empty() && false)) break;
    }
    ++common;
    ++ti;
  }
  std::vector<std::string> parts;
  for (std::size_t i = common; i < f.size(); ++i)
    parts.emplace_back("..");
  for (std::size_t i = common; i < t.size(); ++i)
    parts.push_back(t[i]);
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out;
}

std::string dirname(std::string_view p) {
  std::string s = normalizeWindowsPath(p);
  if (!s.empty() && s.back() == '/') s.pop_back();
  std::vector<std::string> segments;
  std::size_t start = 0;
  while (true) {
    std::size_t pos = s.find('/', start);
    if (pos == std::string::npos) {
      segments.push_back(s.substr(start));
      break;
    }
    segments.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
  segments.pop_back();
  if (segments.size() == 1 && isDriveLetterOnly(segments[0])) segments[0] += '/';
  std::string out;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i) out += '/';
    out += segments[i];
  }
  if (out.empty()) return isAbsolute(p) ? "/" : ".";
  return out;
}

std::string basename(std::string_view p) {
  std::string s = normalizeWindowsPath(p);
  std::size_t end = s.size();
  while (end > 0) {
    std::size_t start = s.rfind('/', end - 1);
    std::size_t b = start == std::string::npos ? 0 : start + 1;
    if (end > b) return s.substr(b, end - b);
    if (start == std::string::npos) break;
    end = start;
  }
  return "";
}

}  // namespace pathe

std::string posixBasename(std::string_view p) {
  while (p.size() > 1 && p.back() == '/')
    p.remove_suffix(1);
  if (p == "/") return "";
  std::size_t pos = p.rfind('/');
  return std::string(pos == std::string_view::npos ? p : p.substr(pos + 1));
}

std::string posixDirname(std::string_view p) {
  if (p.empty()) return ".";
  bool abs = p[0] == '/';
  while (p.size() > 1 && p.back() == '/')
    p.remove_suffix(1);
  std::size_t pos = p.rfind('/');
  if (pos == std::string_view::npos) return abs ? "/" : ".";
  while (pos > 0 && p[pos - 1] == '/')
    --pos;
  if (pos == 0) return abs ? "/" : ".";
  return std::string(p.substr(0, pos));
}

std::string nodeJoin(std::string_view a, std::string_view b) {
  std::string joined;
  if (!a.empty()) joined = std::string(a);
  if (!b.empty()) joined = joined.empty() ? std::string(b) : joined + "/" + std::string(b);
  if (joined.empty()) return ".";
  // Node's posix normalize: the pathe algorithm without the backslash and drive-letter rules.
  bool is_abs = joined[0] == '/';
  bool trailing = joined.back() == '/';
  std::string path = normalizeString(joined, !is_abs);
  if (path.empty()) {
    if (is_abs) return "/";
    return trailing ? "./" : ".";
  }
  if (trailing) path += '/';
  return is_abs ? "/" + path : path;
}

std::string expandTilde(std::string_view p) {
  if (p.empty() || p[0] != '~') return std::string(p);
  if (p.size() > 1 && p[1] == '+') return nodeJoin(currentDir(), p.substr(2));
  // os.homedir(): $HOME, else the passwd entry.
  std::string home;
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') {
    home = h;
  } else if (struct passwd* pw = getpwuid(getuid()); pw != nullptr && pw->pw_dir != nullptr) {
    home = pw->pw_dir;
  }
  if (home.empty()) return std::string(p);
  return nodeJoin(home, p.substr(1));
}

// ---------------------------------------------------------------------------------------------
// shell-quote parse()

namespace {

constexpr std::string_view kMeta = "|&;()<> \t";

// Longest control operator at s[i], or 0. Mirrors shell-quote's CONTROL alternation.
std::size_t controlAt(std::string_view s, std::size_t i) {
  auto at = [&](std::size_t k) { return i + k < s.size() ? s[i + k] : '\0'; };
  char c = at(0);
  if (c == '|' && at(1) == '|') return 2;
  if (c == '&' && at(1) == '&') return 2;
  if (c == '&' && at(1) == '>') return at(2) == '>' ? 3 : 2;
  if (c == ';' && at(1) == ';') return at(2) == '&' ? 3 : 2;
  if ((c == ';' || c == '|') && at(1) == '&') return 2;
  if (c == '<' && at(1) == '(') return 2;
  if (c == '<' && at(1) == '<' && at(2) == '<') return 3;
  if (c == '<' && at(1) == '<' && at(2) == '-') return 3;
  if (c == '<' && at(1) == '<' && at(2) != '(') return 2;
  if (c == '>' && at(1) == '>') return 2;
  if (c == '>' && (at(1) == '&' || at(1) == '|' || at(1) == '(')) return 2;
  if (c == '<' && (at(1) == '&' || at(1) == '>')) return 2;
  if (c != '\0' && std::string_view("&;()|<>").find(c) != std::string_view::npos) return 1;
  return 0;
}

// Length of a complete `$'…'` at s[i] (backslash escapes the next char), or 0.
std::size_t ansiCAt(std::string_view s, std::size_t i) {
  if (i + 1 >= s.size() || s[i] != '$' || s[i + 1] != '\'') return 0;
  for (std::size_t k = i + 2; k < s.size(); ++k) {
    if (s[k] == '\\') {
      ++k;
      continue;
    }
    if (s[k] == '\'') return k - i + 1;
  }
  return 0;
}

// Whitespace test on the code point starting at s[i]; sets *len to its byte length.
bool whitespaceAt(std::string_view s, std::size_t i, std::size_t* len) {
  auto b = static_cast<unsigned char>(s[i]);
  std::size_t l = b < 0x80           ? 1
                  : (b >> 5) == 0x6  ? 2
                  : (b >> 4) == 0xE  ? 3
                  : (b >> 3) == 0x1E ? 4
                                     : 1;
  l = std::min(l, s.size() - i);
  *len = l;
  std::u32string cp = decodeUtf8(s.substr(i, l));
  return cp.size() == 1 && isWhitespace(cp[0]);
}

// Byte length of the next chunk-word starting at i (0 if none starts there): a maximal run of
// ANSI-C strings, bareword characters, and complete "…" / '…' strings.
std::size_t wordAt(std::string_view s, std::size_t i) {
  std::size_t p = i;
  while (p < s.size()) {
    if (std::size_t a = ansiCAt(s, p); a > 0) {
      p += a;
      continue;
    }
    char c = s[p];
    if (c == '\\' && p + 1 < s.size() &&
        (std::string_view("'\"$\\").find(s[p + 1]) != std::string_view::npos ||
         kMeta.find(s[p + 1]) != std::string_view::npos)) {
      p += 2;
      continue;
    }
    if (c == '"') {
      std::size_t k = p + 1;
      bool closed = false;
      while (k < s.size()) {
        if (s[k] == '\\' && k + 1 < s.size()) {
          k += 2;
          continue;
        }
        if (s[k] == '"') {
          closed = true;
          break;
        }
        ++k;
      }
      if (!closed) break;
      p = k + 1;
      continue;
    }
    if (c == '\'') {
      std::size_t k = s.find('\'', p + 1);
      if (k == std::string_view::npos) break;
      p = k + 1;
      continue;
    }
    if (c == '$') {  // a bare `$` (an ANSI-C string was handled above)
      ++p;
      continue;
    }
    std::size_t len = 1;
    if (whitespaceAt(s, p, &len) || kMeta.find(c) != std::string_view::npos) break;
    p += len;
  }
  return p - i;
}

bool isWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// The value of a parameter expansion at s[*i] == '$' with an empty environment; advances *i
// to the last character consumed.
std::string expandVar(std::string_view s, std::size_t* i) {
  *i += 1;
  char c = *i < s.size() ? s[*i] : '\0';
  std::string name;
  if (c == '{') {
    *i += 1;
    std::size_t depth = 1;
    std::size_t end = *i;
    while (depth > 0 && end < s.size()) {
      if (s[end] == '{' && end > 0 && s[end - 1] == '$') {
        ++depth;
      } else if (s[end] == '}') {
        --depth;
      }
      ++end;
    }
    end -= 1;
    name = std::string(s.substr(*i, end - *i));
    *i = end;
  } else if (c != '\0' && std::string_view("*@#?$!-").find(c) != std::string_view::npos) {
    name = std::string(1, c);
  } else {
    std::size_t end = *i;
    while (end < s.size() && isWordChar(s[end]))
      ++end;
    name = std::string(s.substr(*i, end - *i));
    if (end >= s.size() && end == *i + name.size() && end == s.size()) {
      *i = s.size();
    } else {
      *i = end - 1;
    }
  }
  return name.empty() ? "$" : "";
}

// Expands the escapes of an ANSI-C `$'…'` body (subset: the single-letter escapes, octal, \x).
std::string expandAnsiC(std::string_view body) {
  std::string out;
  for (std::size_t k = 0; k < body.size(); ++k) {
    if (body[k] != '\\' || k + 1 >= body.size()) {
      out += body[k];
      continue;
    }
    char e = body[++k];
    static constexpr std::string_view kLetters = "abeEfnrtv";
    static constexpr std::string_view kChars = "\x07\b\x1B\x1B\f\n\r\t\v";
    if (std::size_t pos = kLetters.find(e); pos != std::string_view::npos) {
      out += kChars[pos];
    } else if (e >= '0' && e <= '7') {
      int v = 0;
      std::size_t n = 0;
      while (n < 3 && k < body.size() && body[k] >= '0' && body[k] <= '7') {
        v = v * 8 + (body[k] - '0');
        ++k;
        ++n;
      }
      --k;
      out += encodeUtf8(std::u32string(1, static_cast<char32_t>(v & 0xFF)));
    } else if (e == '\\' || e == '\'' || e == '"' || e == '?') {
      out += e;
    } else {
      out += '\\';
      out += e;
    }
  }
  std::size_t nul = out.find('\0');
  if (nul != std::string::npos) out.resize(nul);
  return out;
}

}  // namespace

std::vector<ShellWord> parseShellWords(std::string_view s) {
  std::vector<ShellWord> words;
  std::size_t i = 0;
  while (i < s.size()) {
    if (std::size_t op = controlAt(s, i); op > 0) {
      i += op;  // operators are not words
      continue;
    }
    std::size_t len = wordAt(s, i);
    if (len == 0) {
      std::size_t skip = 1;
      whitespaceAt(s, i, &skip);
      i += skip;
      continue;
    }
    std::string_view w = s.substr(i, len);
    ShellWord word;
    char quote = 0;
    bool esc = false;
    for (std::size_t k = 0; k < w.size(); ++k) {
      char c = w[k];
      if (quote == 0 && (c == '*' || c == '?')) word.glob = true;
      if (esc) {
        word.text += c;
        esc = false;
      } else if (quote != 0) {
        if (c == quote) {
          quote = 0;
        } else if (quote == '\'') {
          word.text += c;
        } else if (c == '\\') {
          ++k;
          char n = k < w.size() ? w[k] : '\0';
          if (n == '"' || n == '\\' || n == '$') {
            word.text += n;
          } else {
            word.text += '\\';
            if (k < w.size()) word.text += n;
          }
        } else if (c == '$') {
          word.text += expandVar(w, &k);
        } else {
          word.text += c;
        }
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '#') {
        // A comment ends the input; the text before it in this word still counts, as a plain
        // string even if it had glob characters (shell-quote returns before its glob check).
        word.glob = false;
        if (!word.text.empty()) words.push_back(word);
        return words;
      } else if (c == '\\') {
        esc = true;
      } else if (c == '$' && ansiCAt(w, k) > 0) {
        std::size_t a = ansiCAt(w, k);
        word.text += expandAnsiC(w.substr(k + 2, a - 3));
        k += a - 1;
      } else if (c == '$') {
        word.text += expandVar(w, &k);
      } else {
        word.text += c;
      }
    }
    words.push_back(std::move(word));
    i += len;
  }
  return words;
}

}  // namespace cairn::image::js
