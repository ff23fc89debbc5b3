#include "cairn/dockerfile/parser.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cairn/common/strings.h"
#include "cairn/dockerfile/shell_lexer.h"
#include "utf8.h"

namespace cairn::dockerfile {
namespace {

using internal::decodeRuneAt;
using internal::isUnicodeSpace;
using internal::leadingSpaceBytes;
using internal::trimUnicodeSpace;

bool isSplitSpace(char c) {
  return c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == ' ';
}

// Go's regexp `[\t\v\f\r ]+` Split(s, n): n = 2 splits once, n = -1 everywhere.
std::vector<std::string> splitWhitespace(std::string_view s, bool once) {
  std::vector<std::string> out;
  std::size_t start = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    if (isSplitSpace(s[i])) {
      std::size_t j = i;
      while (j < s.size() && isSplitSpace(s[j]))
        ++j;
      out.emplace_back(s.substr(start, i - start));
      start = j;
      i = j;
      if (once) break;
      continue;
    }
    ++i;
  }
  out.emplace_back(s.substr(start));
  return out;
}

std::string_view trimNewline(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string_view trimLeadingSpace(std::string_view s) {
  return s.substr(leadingSpaceBytes(s));
}

bool isComment(std::string_view line) {
  line = trimLeadingSpace(line);
  return !line.empty() && line.front() == '#';
}

std::string lineError(int line, std::string_view message, int column = 0) {
  std::string out = "line " + std::to_string(line);
  if (column > 0) out += ", column " + std::to_string(column);
  out += ": ";
  out += message;
  return out;
}

struct Directives {
  char escape = '\\';
  bool done = false;
  std::map<std::string, bool> seen;
  std::vector<Directive> found;
};

bool isReSpace(char c) {  // RE2's \s
  return c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' ';
}

// `# name = value` at the top of the file; anything else ends the directive block.
Status possibleDirective(Directives& d, std::string_view line, int line_no, bool& is_directive) {
  is_directive = false;
  if (d.done) return okStatus();
  if (!line.starts_with('#')) {
    d.done = true;
    return okStatus();
  }
  line.remove_prefix(1);
  line = trimLeadingSpace(line);
  std::size_t i = 0;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (i >= line.size() || !alpha(line[i])) {
    d.done = true;
    return okStatus();
  }
  while (i < line.size() && (alpha(line[i]) || digit(line[i])))
    ++i;
  std::string key = toLowerAscii(line.substr(0, i));
  while (i < line.size() && isReSpace(line[i]))
    ++i;
  if (i >= line.size() || line[i] != '=') {
    d.done = true;
    return okStatus();
  }
  ++i;
  while (i < line.size() && isReSpace(line[i]))
    ++i;
  std::string_view value = line.substr(i);
  while (!value.empty() && isReSpace(value.back()))
    value.remove_suffix(1);
  if (value.empty()) {
    d.done = true;
    return okStatus();
  }
  if (key != "syntax" && key != "escape" && key != "check") {
    d.done = true;
    return okStatus();
  }
  if (d.seen[key]) {
    return invalidArgument(lineError(line_no, "only one " + key + " parser directive can be used"));
  }
  d.seen[key] = true;
  if (key == "escape") {
    if (value != "`" && value != "\\") {
      return invalidArgument(lineError(
          line_no, "invalid escape token '" + std::string(value) + "' does not match ` or \\"));
    }
    d.escape = value.front();
  }
  d.found.push_back(Directive{key, std::string(value), line_no});
  is_directive = true;
  return okStatus();
}

// BuildKit's continuation rule: the escape character as the last non-blank character, unless
// it is itself escaped (`([^\\])\\[ \t]*$|^\\[ \t]*$`). Returns the line without it.
bool trimContinuation(std::string& line, char escape) {
  std::size_t end = line.size();
  while (end > 0 && (line[end - 1] == ' ' || line[end - 1] == '\t'))
    --end;
  if (end == 0 || line[end - 1] != escape) return false;
  if (end >= 2 && line[end - 2] == escape) return false;
  line.resize(end - 1);
  return true;
}

// BuildKit's extractBuilderFlags: leading `--flag[=value]` words, with quotes and `\`.
Status extractFlags(std::string_view line, std::string& rest, std::vector<std::string>& flags) {
  enum class Phase { kSpaces, kWord, kQuote } phase = Phase::kSpaces;
  std::string word;
  char quote = 0;
  bool blank_ok = false;
  rest.clear();
  for (std::size_t pos = 0; pos <= line.size(); ++pos) {
    char ch = pos < line.size() ? line[pos] : '\0';
    if (phase == Phase::kSpaces) {
      if (pos == line.size()) break;
      if (isSplitSpace(ch) || ch == '\n') continue;
      if (ch != '-' || pos + 1 == line.size() || line[pos + 1] != '-') {
        rest = std::string(line.substr(pos));
        return okStatus();
      }
      phase = Phase::kWord;
    }
    if (pos == line.size()) {
      if (word != "--" && (blank_ok || !word.empty())) flags.push_back(word);
      break;
    }
    if (phase == Phase::kWord) {
      if (isSplitSpace(ch) || ch == '\n') {
        phase = Phase::kSpaces;
        if (word == "--") {
          rest = std::string(line.substr(pos));
          return okStatus();
        }
        if (blank_ok || !word.empty()) flags.push_back(word);
        word.clear();
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = Phase::kQuote;
        continue;
      }
      if (ch == '\\') {
        if (pos + 1 == line.size()) continue;
        ch = line[++pos];
      }
      word.push_back(ch);
      continue;
    }
    // kQuote
    if (ch == quote) {
      phase = Phase::kWord;
      continue;
    }
    if (ch == '\\') {
      if (pos + 1 == line.size()) {
        phase = Phase::kWord;
        continue;
      }
      ch = line[++pos];
    }
    word.push_back(ch);
  }
  return okStatus();
}

// BuildKit's parseWords: splits on whitespace keeping quotes and escapes in the words.
std::vector<std::string> parseWords(std::string_view rest, char escape) {
  enum class Phase { kSpaces, kWord, kQuote } phase = Phase::kSpaces;
  std::vector<std::string> words;
  std::string word;
  char quote = 0;
  bool blank_ok = false;
  std::size_t pos = 0;
  while (pos <= rest.size()) {
    std::size_t width = 1;
    char32_t ch = 0;
    if (pos < rest.size()) ch = decodeRuneAt(rest, pos, width);
    if (phase == Phase::kSpaces) {
      if (pos == rest.size()) break;
      if (isUnicodeSpace(ch)) {
        pos += width;
        continue;
      }
      phase = Phase::kWord;
    }
    if (pos == rest.size()) {
      if (blank_ok || !word.empty()) words.push_back(word);
      break;
    }
    std::string_view cur = rest.substr(pos, width);
    if (phase == Phase::kWord) {
      if (isUnicodeSpace(ch)) {
        phase = Phase::kSpaces;
        if (blank_ok || !word.empty()) words.push_back(word);
        word.clear();
        blank_ok = false;
        pos += width;
        continue;
      }
      if (ch == U'\'' || ch == U'"') {
        quote = static_cast<char>(ch);
        blank_ok = true;
        phase = Phase::kQuote;
      }
      if (ch == static_cast<unsigned char>(escape)) {
        if (pos + width == rest.size()) {
          pos += width;
          continue;  // an escape at the end of the line is dropped
        }
        // Outside quotes the escape and the next character are both kept, even a quote.
        word += cur;
        pos += width;
        decodeRuneAt(rest, pos, width);
        cur = rest.substr(pos, width);
      }
      word += cur;
      pos += width;
      continue;
    }
    // kQuote
    if (ch == static_cast<unsigned char>(quote)) phase = Phase::kWord;
    if (ch == static_cast<unsigned char>(escape) && quote != '\'') {
      if (pos + width == rest.size()) {
        phase = Phase::kWord;
        pos += width;
        continue;
      }
      word += cur;
      pos += width;
      decodeRuneAt(rest, pos, width);
      cur = rest.substr(pos, width);
    }
    word += cur;
    pos += width;
  }
  return words;
}

// The argument parsers, one per instruction shape. Each fills node.args / node.json.
using ArgParser = Status (*)(std::string_view rest, char escape, Node& node);

Status parseIgnore(std::string_view, char, Node&) {
  return okStatus();
}

Status parseStringsWhitespaceDelimited(std::string_view rest, char, Node& node) {
  if (rest.empty()) return okStatus();
  node.args = splitWhitespace(rest, false);
  return okStatus();
}

Status parseString(std::string_view rest, char, Node& node) {
  if (rest.empty()) return okStatus();
  node.args.emplace_back(rest);
  return okStatus();
}

constexpr std::string_view kNotStringArray =
    "when using JSON array syntax, arrays must be comprised of strings only";

// 1 = parsed as JSON, 0 = not JSON (use the shell form), -1 = a JSON array of non-strings.
int parseJson(std::string_view rest, std::vector<std::string>& out) {
  rest = trimLeadingSpace(rest);
  if (!rest.starts_with('[')) return 0;
  nlohmann::json j = nlohmann::json::parse(rest, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) return 0;
  std::vector<std::string> values;
  for (const auto& v : j) {
    if (!v.is_string()) return -1;
    values.push_back(v.get<std::string>());
  }
  out = std::move(values);
  return 1;
}

Status parseMaybeJson(std::string_view rest, char, Node& node) {
  if (rest.empty()) return okStatus();
  int r = parseJson(rest, node.args);
  if (r == 1) {
    node.json = true;
    return okStatus();
  }
  if (r < 0) return invalidArgument(std::string(kNotStringArray));
  node.args = {std::string(rest)};
  return okStatus();
}

Status parseMaybeJsonToList(std::string_view rest, char escape, Node& node) {
  int r = parseJson(rest, node.args);
  if (r == 1) {
    node.json = true;
    return okStatus();
  }
  if (r < 0) return invalidArgument(std::string(kNotStringArray));
  return parseStringsWhitespaceDelimited(rest, escape, node);
}

Status parseNameVal(std::string_view rest, std::string_view key, char escape, Node& node) {
  std::vector<std::string> words = parseWords(rest, escape);
  if (words.empty()) return okStatus();
  if (words[0].find('=') == std::string::npos) {
    // The old form: KEY name value (the rest of the line is the value).
    std::vector<std::string> parts = splitWhitespace(rest, true);
    if (parts.size() < 2) {
      return invalidArgument(std::string(key) + " must have two arguments");
    }
    node.args = {parts[0], parts[1], ""};
    return okStatus();
  }
  for (const std::string& word : words) {
    std::size_t eq = word.find('=');
    if (eq == std::string::npos) {
      return invalidArgument("syntax error - can't find = in " + goQuote(word) +
                             ". Must be of the form: name=value");
    }
    node.args.push_back(word.substr(0, eq));
    node.args.push_back(word.substr(eq + 1));
    node.args.emplace_back("=");
  }
  return okStatus();
}

Status parseEnv(std::string_view rest, char escape, Node& node) {
  return parseNameVal(rest, "ENV", escape, node);
}

Status parseLabel(std::string_view rest, char escape, Node& node) {
  return parseNameVal(rest, "LABEL", escape, node);
}

Status parseNameOrNameVal(std::string_view rest, char escape, Node& node) {
  node.args = parseWords(rest, escape);
  return okStatus();
}

Status parseHealthConfig(std::string_view rest, char escape, Node& node) {
  std::size_t sep = 0;
  while (sep < rest.size() && !isUnicodeSpace(static_cast<unsigned char>(rest[sep])))
    ++sep;
  std::size_t next = sep;
  while (next < rest.size() && isUnicodeSpace(static_cast<unsigned char>(rest[next])))
    ++next;
  if (sep == 0) return okStatus();
  Node cmd;
  CAIRN_RETURN_IF_ERROR(parseMaybeJson(rest.substr(next), escape, cmd));
  node.args.emplace_back(rest.substr(0, sep));
  for (auto& a : cmd.args)
    node.args.push_back(std::move(a));
  node.json = cmd.json;
  return okStatus();
}

Status newNodeFromLine(std::string_view line, char escape, Node& node, int depth);

Status parseSubCommand(std::string_view rest, char escape, Node& node) {
  if (rest.empty()) return okStatus();
  Node child;
  CAIRN_RETURN_IF_ERROR(newNodeFromLine(rest, escape, child, 1));
  node.nested.push_back(std::move(child));
  return okStatus();
}

const std::map<std::string, ArgParser, std::less<>>& dispatchTable() {
  static const std::map<std::string, ArgParser, std::less<>> kTable = {
      {"add", parseMaybeJsonToList},
      {"arg", parseNameOrNameVal},
      {"cmd", parseMaybeJson},
      {"copy", parseMaybeJsonToList},
      {"entrypoint", parseMaybeJson},
      {"env", parseEnv},
      {"expose", parseStringsWhitespaceDelimited},
      {"from", parseStringsWhitespaceDelimited},
      {"healthcheck", parseHealthConfig},
      {"label", parseLabel},
      {"maintainer", parseString},
      {"onbuild", parseSubCommand},
      {"run", parseMaybeJson},
      {"shell", parseMaybeJson},
      {"stopsignal", parseString},
      {"user", parseString},
      {"volume", parseMaybeJsonToList},
      {"workdir", parseString},
  };
  return kTable;
}

Status newNodeFromLine(std::string_view line, char escape, Node& node, int depth) {
  std::string_view trimmed = trimUnicodeSpace(line);
  std::vector<std::string> cmdline = splitWhitespace(trimmed, true);
  node.keyword = cmdline[0];
  node.original = std::string(line);
  std::string rest;
  if (cmdline.size() == 2) CAIRN_RETURN_IF_ERROR(extractFlags(cmdline[1], rest, node.flags));
  std::string_view args = trimUnicodeSpace(rest);
  std::string cmd = toLowerAscii(node.keyword);
  if (depth > 0 && cmd == "onbuild") {
    // ONBUILD ONBUILD is rejected later; do not nest deeper than one level here.
    node.args.emplace_back(args);
    return okStatus();
  }
  auto it = dispatchTable().find(cmd);
  ArgParser fn = it == dispatchTable().end() ? parseIgnore : it->second;
  return fn(args, escape, node);
}

bool canContainHeredoc(const Node& node) {
  const Node* n = &node;
  if (n->command() == "onbuild" && !n->nested.empty()) n = &n->nested.front();
  std::string cmd = n->command();
  if (cmd != "add" && cmd != "copy" && cmd != "run") return false;
  return !n->json;
}

Result<std::vector<Heredoc>> heredocsFromLine(std::string_view line) {
  ShellLexerOptions options;
  options.raw_quotes = true;
  options.raw_escapes = true;
  options.skip_unset_env = true;
  ShellLexer lexer('\\', options);
  auto words = lexer.process(line, EnvLookup());
  std::vector<Heredoc> docs;
  if (!words.ok()) return docs;  // BuildKit ignores lexing errors here
  const std::vector<std::string>& w = words->words;
  for (std::size_t i = 0; i < w.size(); ++i) {
    Heredoc doc;
    // `<< EOF` lexes as two words; the operator takes the next word as its delimiter.
    if (isHeredocOperator(w[i]) && i + 1 < w.size()) {
      CAIRN_ASSIGN_OR_RETURN(bool joined, parseHeredocWord(w[i] + " " + w[i + 1], doc));
      if (joined) {
        docs.push_back(std::move(doc));
        ++i;
        continue;
      }
    }
    CAIRN_ASSIGN_OR_RETURN(bool is_heredoc, parseHeredocWord(w[i], doc));
    if (is_heredoc) docs.push_back(std::move(doc));
  }
  return docs;
}

// Lines are kept with their '\n' so heredoc bodies keep their line ends.
class LineScanner {
 public:
  explicit LineScanner(std::string_view data) : data_(data) {}
  bool scan() {
    if (pos_ >= data_.size()) return false;
    std::size_t nl = data_.find('\n', pos_);
    std::size_t end = nl == std::string_view::npos ? data_.size() : nl + 1;
    line_ = data_.substr(pos_, end - pos_);
    pos_ = end;
    return true;
  }
  std::string_view line() const { return line_; }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
  std::string_view line_;
};

}  // namespace

std::string Node::command() const {
  return toLowerAscii(keyword);
}

std::string Node::dump() const {
  std::string s = toLowerAscii(keyword);
  if (!flags.empty()) {
    s += " [";
    for (std::size_t i = 0; i < flags.size(); ++i) {
      if (i > 0) s += ' ';
      s += goQuote(flags[i]);
    }
    s += ']';
  }
  for (const Node& n : nested)
    s += " (" + n.dump() + ")";
  for (const std::string& a : args)
    s += " " + goQuote(a);
  return std::string(trimSpace(s));
}

std::string goQuote(std::string_view s) {
  std::string out = "\"";
  std::size_t pos = 0;
  char buf[16];
  while (pos < s.size()) {
    std::size_t len = 1;
    char32_t c = decodeRuneAt(s, pos, len);
    if (c >= 0xDC80 && c <= 0xDCFF && len == 1) {
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c - 0xDC00));
      out += buf;
    } else if (c == U'"' || c == U'\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else if (c == U'\a') {
      out += "\\a";
    } else if (c == U'\b') {
      out += "\\b";
    } else if (c == U'\f') {
      out += "\\f";
    } else if (c == U'\n') {
      out += "\\n";
    } else if (c == U'\r') {
      out += "\\r";
    } else if (c == U'\t') {
      out += "\\t";
    } else if (c == U'\v') {
      out += "\\v";
    } else if (c < 0x20 || c == 0x7F) {
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      out += buf;
    } else if ((c >= 0x80 && c < 0xA0) || c == 0xAD || c == 0xFEFF ||
               (c >= 0x2028 && c <= 0x2029) || (c >= 0x200B && c <= 0x200F) ||
               (c >= 0xFFF9 && c <= 0xFFFB)) {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += s.substr(pos, len);
    }
    pos += len;
  }
  out += '"';
  return out;
}

bool isHeredocOperator(std::string_view word) {
  std::size_t i = 0;
  while (i < word.size() && word[i] >= '0' && word[i] <= '9')
    ++i;
  std::string_view op = word.substr(i);
  return op == "<<" || op == "<<-";
}

Result<bool> parseHeredocWord(std::string_view word, Heredoc& out) {
  // ^(\d*)<<(-?)([^<]*)$
  std::size_t i = 0;
  while (i < word.size() && word[i] >= '0' && word[i] <= '9')
    ++i;
  std::string_view digits = word.substr(0, i);
  if (word.substr(i, 2) != "<<") return false;
  i += 2;
  bool chomp = false;
  if (i < word.size() && word[i] == '-') {
    chomp = true;
    ++i;
  }
  // Newer BuildKit also accepts `<< EOF` and `<<- EOF`.
  while (i < word.size() && isReSpace(word[i]))
    ++i;
  std::string_view rest = word.substr(i);
  if (rest.find('<') != std::string_view::npos || rest.empty()) return false;

  ShellLexerOptions options;
  options.skip_unset_env = true;
  ShellLexer plain('\\', options);
  auto words = plain.process(rest, EnvLookup());
  if (!words.ok()) return words.status();
  if (words->words.size() != 1) return false;
  options.raw_quotes = true;
  ShellLexer raw('\\', options);
  auto raw_words = raw.process(rest, EnvLookup());
  if (!raw_words.ok()) return raw_words.status();
  if (raw_words->words.size() != 1) {
    return invalidArgument("internal lexing of heredoc produced inconsistent results: " +
                           std::string(rest));
  }
  auto quotes = [](const std::string& w) {
    std::size_t n = 0;
    for (char c : w)
      n += (c == '\'' || c == '"') ? 1 : 0;
    return n;
  };
  unsigned fd = 0;
  if (!digits.empty() && digits.size() < 10)
    fd = static_cast<unsigned>(std::stoul(std::string(digits)));
  out.name = words->words[0];
  out.expand = quotes(words->words[0]) == quotes(raw_words->words[0]);
  out.chomp = chomp;
  out.fd = fd;
  out.content.clear();
  return true;
}

std::string chompHeredocContent(std::string_view content) {
  std::string out;
  out.reserve(content.size());
  bool at_line_start = true;
  for (char c : content) {
    if (at_line_start && c == '\t') continue;
    at_line_start = c == '\n';
    out += c;
  }
  return out;
}

Result<Ast> parseDockerfile(std::string_view text, const ParseLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return invalidArgument("Dockerfile is " + std::to_string(text.size()) +
                           " bytes, more than the limit of " + std::to_string(limits.max_bytes));
  }
  std::size_t line_count = 0;
  for (char c : text)
    line_count += c == '\n' ? 1 : 0;
  if (line_count > limits.max_lines) {
    return invalidArgument("Dockerfile has " + std::to_string(line_count) +
                           " lines, more than the limit of " + std::to_string(limits.max_lines));
  }

  Ast ast;
  Directives d;
  LineScanner scanner(text);
  int current_line = 0;
  std::vector<std::string> comments;
  bool seen_instruction = false;

  // Trims the newline (and leading space when asked) and feeds the directive parser.
  auto processLine = [&](std::string_view raw, bool strip_left, int line_no,
                         bool& directive) -> Result<std::string> {
    std::string_view token = trimNewline(raw);
    if (strip_left) token = trimLeadingSpace(token);
    CAIRN_RETURN_IF_ERROR(possibleDirective(d, token, line_no, directive));
    if (isComment(token)) return std::string();
    return std::string(token);
  };

  while (scanner.scan()) {
    std::string_view raw = scanner.line();
    if (current_line == 0 && raw.starts_with("\xEF\xBB\xBF")) raw.remove_prefix(3);
    if (isComment(raw)) {
      std::string_view c = trimLeadingSpace(trimNewline(raw));
      std::string comment(trimUnicodeSpace(c.substr(1)));
      if (comment.empty()) {
        comments.clear();
      } else {
        comments.push_back(std::move(comment));
      }
    }
    bool directive = false;
    CAIRN_ASSIGN_OR_RETURN(std::string line, processLine(raw, true, current_line + 1, directive));
    if (directive && !comments.empty()) comments.pop_back();
    ++current_line;
    int start_line = current_line;
    std::string first_line(trimNewline(raw));

    bool continued = trimContinuation(line, d.escape);
    if (!continued && line.empty()) continue;

    bool empty_continuation = false;
    while (continued && scanner.scan()) {
      bool ignored = false;
      CAIRN_ASSIGN_OR_RETURN(std::string next,
                             processLine(scanner.line(), false, current_line + 1, ignored));
      ++current_line;
      if (isComment(scanner.line())) continue;
      if (trimLeadingSpace(trimNewline(next)).empty()) {
        empty_continuation = true;
        continue;
      }
      continued = trimContinuation(next, d.escape);
      line += next;
    }
    if (empty_continuation) {
      ast.warnings.push_back(lineError(current_line, "empty continuation line found in: " + line));
    }

    Node child;
    Status st = newNodeFromLine(line, d.escape, child, 0);
    if (!st.ok()) return invalidArgument(lineError(start_line, st.message()));
    child.first_line = first_line;
    child.column = static_cast<int>(leadingSpaceBytes(first_line)) + 1;

    if (canContainHeredoc(child) && line.find("<<") != std::string::npos) {
      auto heredocs = heredocsFromLine(line);
      if (!heredocs.ok())
        return invalidArgument(lineError(start_line, heredocs.status().message()));
      for (Heredoc& heredoc : *heredocs) {
        bool terminated = false;
        while (scanner.scan()) {
          std::string_view body = scanner.line();
          ++current_line;
          std::string_view candidate = trimNewline(body);
          if (heredoc.chomp) {
            while (!candidate.empty() && candidate.front() == '\t')
              candidate.remove_prefix(1);
          }
          if (candidate == heredoc.name) {
            terminated = true;
            break;
          }
          heredoc.content += body;
        }
        if (!terminated) {
          return invalidArgument(lineError(
              start_line, "unterminated heredoc: no line \"" + heredoc.name + "\" ends it"));
        }
        child.heredocs.push_back(std::move(heredoc));
      }
    }

    child.start_line = start_line;
    child.end_line = current_line;
    child.comments = std::move(comments);
    comments.clear();
    if (!seen_instruction) ast.start_line = start_line;
    seen_instruction = true;
    ast.end_line = current_line;
    ast.children.push_back(std::move(child));
  }

  if (!seen_instruction) {
    return invalidArgument(lineError(current_line, "file with no instructions"));
  }
  ast.directives = std::move(d.found);
  ast.escape = d.escape;
  return ast;
}

}  // namespace cairn::dockerfile
