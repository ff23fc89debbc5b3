// The Dockerfile parser: text → AST, with BuildKit's rules (frontend/dockerfile/parser).
//
// It handles parser directives (`# syntax=`, `# escape=`, `# check=`), comments, line
// continuations with the active escape character (also across comment and empty lines),
// JSON (exec) and shell forms, instruction flags, heredocs (`RUN <<EOF`, `<<-EOF`, quoted
// delimiters, several per line) and ONBUILD. Unknown instructions are kept (the typed layer in
// instructions.h rejects them with a suggestion), exactly as BuildKit's parser does.
//
//   ASSIGN_OR_RETURN(Ast ast, parseDockerfile(text));
//   for (const Node& n : ast.children) std::cout << n.dump() << "\n";  // (from "alpine")
//
// Errors are InvalidArgument with "line N: what is wrong" (and a column where one is known).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"

namespace cairn::dockerfile {

struct Heredoc {
  std::string name;     //!< the delimiter word, quotes removed
  unsigned fd = 0;      //!< `3<<EOF` → 3
  bool expand = true;   //!< false when the delimiter was quoted: no variable expansion
  bool chomp = false;   //!< `<<-`: leading tabs are stripped from the content
  std::string content;  //!< the lines up to the delimiter, each with its newline
};

//! One instruction (or, for ONBUILD, the nested one in `nested`).
struct Node {
  std::string keyword;             //!< as written: "RUN", "copy", …
  std::vector<std::string> flags;  //!< "--from=build", … (quotes and escapes resolved)
  std::vector<std::string> args;   //!< the instruction's arguments, shaped per instruction
  std::vector<Node> nested;        //!< ONBUILD: the one instruction it carries
  std::vector<Heredoc> heredocs;
  bool json = false;                  //!< arguments were given in JSON (exec) form
  std::string original;               //!< the logical line, continuations joined
  std::vector<std::string> comments;  //!< comment lines right before the instruction
  int start_line = 0;                 //!< 1-based, first physical line
  int end_line = 0;                   //!< last physical line (heredoc bodies included)
  int column = 1;                     //!< 1-based column of the keyword on start_line
  std::string first_line;             //!< the physical text of start_line, for error columns

  //! BuildKit's AST dump: `copy ["--from=a"] "x" "/y"`.
  std::string dump() const;
  //! The keyword in lower case.
  std::string command() const;
};

struct Directive {
  std::string name;  //!< lower case: syntax, escape, check
  std::string value;
  int line = 0;
};

struct Ast {
  std::vector<Node> children;
  std::vector<Directive> directives;
  std::vector<std::string> warnings;
  char escape = '\\';
  int start_line = 0;
  int end_line = 0;
};

struct ParseLimits {
  std::size_t max_bytes = 8 * 1024 * 1024;
  std::size_t max_lines = 200000;
};

Result<Ast> parseDockerfile(std::string_view text, const ParseLimits& limits = {});

//! Go's strconv.Quote, used by the AST dump.
std::string goQuote(std::string_view s);

//! Parses one heredoc word (`<<EOF`, `<<-"EOF"`, `3<<EOF`); false when it is not one.
Result<bool> parseHeredocWord(std::string_view word, Heredoc& out);

//! True for a bare heredoc operator (`<<`, `<<-`, `3<<`): `<< EOF` puts the delimiter in the
//! next word.
bool isHeredocOperator(std::string_view word);

//! Strips leading tabs from every line (for `<<-`).
std::string chompHeredocContent(std::string_view content);

}  // namespace cairn::dockerfile
