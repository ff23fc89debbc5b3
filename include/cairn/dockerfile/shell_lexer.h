// Shell-word processing for Dockerfiles, with BuildKit's rules (frontend/dockerfile/shell).
//
// Dockerfile instructions are not run through a shell, but their arguments are expanded like
// shell words: single and double quotes, the escape character (`\` or the `# escape=` one),
// and variable references `$V ${V} ${V:-w} ${V-w} ${V:+w} ${V+w} ${V:?e} ${V?e} ${V#p}
// ${V##p} ${V%p} ${V%%p} ${V/p/r} ${V//p/r}` (patterns use `*` and `?`).
//
//   ShellLexer lex('\\');
//   EnvMap env{{"HOME", "/root"}};
//   lex.processWord("${HOME}/'a b'", env);        // "/root/a b"
//   lex.processWords("a \"b c\" $HOME", env);     // {"a", "b c", "/root"}
//
// Errors (unterminated quotes, bad substitutions, `${V:?msg}`) are InvalidArgument with a
// message that quotes the input.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"

namespace cairn::dockerfile {

using EnvMap = std::map<std::string, std::string, std::less<>>;
//! Looks a variable up: nullopt when it is not set (set-but-empty is "").
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

struct ShellLexerOptions {
  bool raw_quotes = false;           //!< keep quote characters in the output
  bool raw_escapes = false;          //!< keep escape characters in the output
  bool skip_process_quotes = false;  //!< treat quotes as ordinary characters
  bool skip_unset_env = false;       //!< leave references to unset variables as written
};

//! The result of a word expansion plus which variables it looked up.
struct ProcessedWord {
  std::string result;                  //!< the word as one string (spaces kept)
  std::vector<std::string> words;      //!< the word split on unquoted whitespace
  std::vector<std::string> matched;    //!< variables referenced and set
  std::vector<std::string> unmatched;  //!< variables referenced but unset
};

class ShellLexer {
 public:
  explicit ShellLexer(char escape = '\\', ShellLexerOptions options = {})
      : escape_(static_cast<unsigned char>(escape)), options_(options) {}

  Result<std::string> processWord(std::string_view word, const EnvMap& env) const;
  Result<std::vector<std::string>> processWords(std::string_view word, const EnvMap& env) const;
  Result<ProcessedWord> process(std::string_view word, const EnvLookup& env) const;

  char32_t escape() const { return escape_; }
  const ShellLexerOptions& options() const { return options_; }

 private:
  char32_t escape_;
  ShellLexerOptions options_;
};

//! An EnvLookup over a map.
EnvLookup lookupIn(const EnvMap& env);

}  // namespace cairn::dockerfile
