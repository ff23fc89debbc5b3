// The .dockerignore matcher: decides which paths of a build context are left out.
//
// Semantics are Docker's (moby/patternmatcher and the CLI's ignorefile.ReadAll): lines starting
// with `#` are comments, blank lines are skipped, each line is trimmed and cleaned like Go's
// filepath.Clean (a leading `/` is dropped), `!pattern` re-includes, and the LAST matching
// pattern wins. `*` and `?` never cross a `/`, `**` spans any number of directories, `[...]`
// is a character class, `\` escapes the next character. A pattern that matches a directory
// also excludes everything below it.
//
//   ASSIGN_OR_RETURN(auto ignore, DockerIgnore::parse("node_modules\n*.log\n!keep.log\n"));
//   ignore.excluded("node_modules/a/b.js");  // true
//   ignore.excluded("keep.log");             // false
//
// A directory walker that finds a directory excluded must still descend into it when
// mayReincludeUnder(dir) is true, because an exception may re-include a file below it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"

namespace cairn::dockerfile {

class DockerIgnore {
 public:
  DockerIgnore() = default;  // matches nothing

  //! Parses the content of a .dockerignore file. Fails (InvalidArgument, naming the line) on a
  //! lone `!` or a malformed pattern (unterminated `[`, trailing `\`).
  static Result<DockerIgnore> parse(std::string_view file_content);

  //! path: relative to the context root, '/'-separated, no leading "./" or "/".
  //! true = excluded from the context.
  bool excluded(std::string_view path) const;

  //! true if an exception ("!…") pattern could re-include something below dir, so a
  //! directory walker must still descend into an excluded dir.
  bool mayReincludeUnder(std::string_view dir) const;

  bool empty() const { return patterns_.empty(); }

  //! The cleaned patterns, in order, exceptions with their leading `!`.
  std::vector<std::string> patterns() const;

  //! One compiled pattern element. Public only so the matcher's helpers can name it.
  struct Token {
    enum class Kind { kLiteral, kAnyChar, kStar, kDoubleStar, kDoubleStarEnd, kClass };
    Kind kind = Kind::kLiteral;
    char32_t ch = 0;                                    // kLiteral
    bool negated = false;                               // kClass
    std::vector<std::pair<char32_t, char32_t>> ranges;  // kClass, inclusive
  };
  struct Pattern {
    std::string text;  // cleaned, without the leading '!'
    bool exclusion = false;
    std::vector<Token> tokens;
  };

 private:
  std::vector<Pattern> patterns_;
  bool has_exclusions_ = false;
};

}  // namespace cairn::dockerfile
