// Internal: the few JavaScript and Node library behaviours the Image DSL must reproduce byte
// for byte (spec §3.5–§3.8): JS string trimming and `\s`, UTF-16 ordering, the `pathe` path
// functions (v2.0.3), `expand-tilde`, and `shell-quote`'s parse() as the SDK uses it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/utf8.h"

namespace cairn::image::js {

//! Code points of a UTF-8 string; an invalid byte (overlong forms and encoded surrogates
//! included) becomes U+FFFD, one per byte.
inline std::u32string decodeUtf8(std::string_view s) {
  return cairn::decodeUtf8(s, InvalidUtf8::kReplace);
}
//! UTF-8 of code points; a lone surrogate becomes U+FFFD, as in Node.
inline std::string encodeUtf8(std::u32string_view s) {
  return cairn::encodeUtf8(s, InvalidUtf8::kReplace);
}

//! JS `\s`: WhiteSpace + LineTerminator (tab, LF, VT, FF, CR, space, NBSP, U+1680, U+2000–200A,
//! U+2028, U+2029, U+202F, U+205F, U+3000, U+FEFF).
bool isWhitespace(char32_t c);
bool containsWhitespace(std::string_view s);
std::string trim(std::string_view s);
std::string trimStart(std::string_view s);
std::string trimEnd(std::string_view s);

//! Array.prototype.sort's default order: by UTF-16 code units.
bool utf16Less(std::string_view a, std::string_view b);

//! String length in UTF-16 code units.
std::size_t utf16Length(std::string_view s);
//! s.slice(begin, end) in UTF-16 units (end clamped; a split surrogate pair becomes U+FFFD, as
//! Node's UTF-8 encoder writes a lone surrogate).
std::string utf16Slice(std::string_view s, std::size_t begin, std::size_t end);

// pathe 2.0.3 (POSIX behaviour plus its backslash → '/' normalisation).
namespace pathe {
std::string normalizeWindowsPath(std::string_view p);
bool isAbsolute(std::string_view p);
std::string normalize(std::string_view p);
std::string join(const std::vector<std::string_view>& segments);
std::string resolve(std::string_view p);
std::string relative(std::string_view from, std::string_view to);
std::string dirname(std::string_view p);
std::string basename(std::string_view p);
}  // namespace pathe

//! Node's path.posix.basename / dirname (as node-tar uses them; trailing slashes ignored).
std::string posixBasename(std::string_view p);
std::string posixDirname(std::string_view p);

//! expand-tilde 2.0.2: "~" or "~/x" → path.join(home, rest); "~+…" → path.join(cwd, rest).
std::string expandTilde(std::string_view p);

//! Node's path.join/normalize (POSIX), used by expand-tilde.
std::string nodeJoin(std::string_view a, std::string_view b);

//! One word of shell-quote's parse(): `glob` is true when the word had an unquoted `*` or `?`
//! (the SDK drops those words; Cairn globs them, spec §0.6).
struct ShellWord {
  std::string text;
  bool glob = false;
};
//! shell-quote 1.12 parse(s) with no environment: quotes, backslash escapes, `$VAR`/`${VAR}`
//! expanding to "", `$'…'` ANSI-C strings; operators are dropped and a `#` ends the input.
std::vector<ShellWord> parseShellWords(std::string_view s);

}  // namespace cairn::image::js
