// Arbitrary bytes as a Dockerfile → parser → typed instructions → shell-word expansion of every
// argument, plus the same bytes as a .dockerignore. Beyond "no crash, no hang, no sanitizer
// report", it checks the invariants callers rely on: line numbers are ordered and within the
// file, and every failure is an InvalidArgument that names a line.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cairn/dockerfile/dockerignore.h"
#include "cairn/dockerfile/instructions.h"
#include "cairn/dockerfile/parser.h"
#include "cairn/dockerfile/shell_lexer.h"

using namespace cairn::dockerfile;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void expandAll(const Ast& ast) {
  EnvMap env{{"HOME", "/root"}, {"EMPTY", ""}, {"PATH", "/usr/bin:/bin"}};
  ShellLexer lexer(ast.escape);
  ShellLexerOptions raw_options;
  raw_options.raw_quotes = true;
  raw_options.raw_escapes = true;
  raw_options.skip_unset_env = true;
  ShellLexer raw(ast.escape, raw_options);
  for (const Node& node : ast.children) {
    for (const std::string& arg : node.args) {
      auto word = lexer.processWord(arg, env);
      auto words = lexer.processWords(arg, env);
      auto kept = raw.processWords(arg, env);
      check(word.ok() == words.ok());
      (void)kept;
    }
    for (const std::string& flag : node.flags)
      (void)lexer.processWord(flag, env);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::size_t lines = 1;
  for (char c : text)
    lines += c == '\n' ? 1 : 0;

  auto ast = parseDockerfile(text);
  if (ast.ok()) {
    int previous_end = 0;
    for (const Node& node : ast->children) {
      check(node.start_line > previous_end);
      check(node.start_line <= node.end_line);
      check(static_cast<std::size_t>(node.end_line) <= lines);
      previous_end = node.end_line;
      (void)node.dump();
    }
    expandAll(*ast);
    auto df = parseInstructions(*ast);
    if (df.ok()) {
      (void)dumpInstructions(*df);
    } else {
      check(df.status().code() == cairn::StatusCode::kInvalidArgument);
      check(df.status().message().starts_with("line "));
    }
  } else {
    check(ast.status().code() == cairn::StatusCode::kInvalidArgument);
  }

  auto ignore = DockerIgnore::parse(text);
  if (ignore.ok()) {
    (void)ignore->excluded("a/b/c.txt");
    (void)ignore->excluded("node_modules");
    (void)ignore->mayReincludeUnder("vendor");
    // Match the first lines of the input as paths, too (bounded: matching costs path length
    // times total pattern size, which is fine for real contexts but not for 4 KiB of '*').
    std::size_t pos = 0;
    int n = 0;
    while (pos < text.size() && n++ < 4) {
      std::size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      (void)ignore->excluded(text.substr(pos, std::min<std::size_t>(end - pos, 256)));
      pos = end + 1;
    }
  }
  return 0;
}
