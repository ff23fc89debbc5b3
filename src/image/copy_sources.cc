#include "copy_sources.h"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <set>

#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/common/strings.h"
#include "cairn/dockerfile/dockerignore.h"
#include "js_compat.h"

namespace cairn::image {

namespace fs = std::filesystem;

std::vector<std::string> dockerfileLogicalLines(std::string_view content) {
  std::vector<std::string> physical;
  std::size_t start = 0;
  while (true) {
    std::size_t nl = content.find('\n', start);
    std::string_view line =
        content.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    if (nl != std::string_view::npos && !line.empty() && line.back() == '\r') line.remove_suffix(1);
    physical.emplace_back(line);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  std::vector<std::string> logical;
  std::optional<std::string> current;
  for (const std::string& line : physical) {
    const bool is_comment = js::trimStart(line).starts_with('#');
    if (current && (js::trim(line).empty() || is_comment)) continue;
    std::string stripped = js::trimEnd(line);
    const bool continued = !is_comment && !stripped.empty() && stripped.back() == '\\';
    std::string segment = continued ? stripped.substr(0, stripped.size() - 1) : line;
    current = current ? *current + segment : segment;
    if (!continued) {
      logical.push_back(std::move(*current));
      current.reset();
    }
  }
  if (current) logical.push_back(std::move(*current));
  return logical;
}

// ---------------------------------------------------------------------------------------------
// Globbing

namespace {

// Expands `{a,b}` alternatives (nested, left to right), as micromatch's brace expansion does for
// the simple comma form.
std::vector<std::string> expandBraces(const std::string& pattern) {
  std::size_t open = std::string::npos;
  int depth = 0;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      ++i;
      continue;
    }
    if (pattern[i] == '{') {
      if (depth == 0) open = i;
      ++depth;
    } else if (pattern[i] == '}' && depth > 0) {
      if (--depth == 0) {
        std::vector<std::string> alternatives;
        int d = 0;
        std::size_t part_start = open + 1;
        for (std::size_t k = open + 1; k < i; ++k) {
          if (pattern[k] == '\\') {
            ++k;
            continue;
          }
          if (pattern[k] == '{') ++d;
          if (pattern[k] == '}') --d;
          if (pattern[k] == ',' && d == 0) {
            alternatives.push_back(pattern.substr(part_start, k - part_start));
            part_start = k + 1;
          }
        }
        alternatives.push_back(pattern.substr(part_start, i - part_start));
        if (alternatives.size() < 2) continue;  // "{a}" is literal
        std::vector<std::string> out;
        for (const std::string& alt : alternatives) {
          for (std::string& e :
               expandBraces(pattern.substr(0, open) + alt + pattern.substr(i + 1))) {
            out.push_back(std::move(e));
          }
        }
        return out;
      }
    }
  }
  return {pattern};
}

bool hasMagic(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\') {
      ++i;
      continue;
    }
    if (c == '*' || c == '?') return true;
    if (c == '[' && s.find(']', i + 1) != std::string_view::npos) return true;
    if (c == '{' && s.find('}', i + 1) != std::string_view::npos) return true;
  }
  return false;
}

// Matches one path segment against one pattern segment (`*`, `?`, `[…]`, `\x`), by code point.
bool matchSegment(const std::u32string& p, std::size_t pi, const std::u32string& s,
                  std::size_t si) {
  while (pi < p.size()) {
    char32_t c = p[pi];
    if (c == U'*') {
      while (pi < p.size() && p[pi] == U'*')
        ++pi;
      if (pi == p.size()) return true;
      for (std::size_t k = si; k <= s.size(); ++k) {
        if (matchSegment(p, pi, s, k)) return true;
      }
      return false;
    }
    if (si >= s.size()) return false;
    if (c == U'?') {
      ++pi;
      ++si;
      continue;
    }
    if (c == U'[') {
      std::size_t k = pi + 1;
      bool negate = k < p.size() && (p[k] == U'!' || p[k] == U'^');
      if (negate) ++k;
      bool matched = false;
      bool first = true;
      while (k < p.size() && (p[k] != U']' || first)) {
        first = false;
        char32_t lo = p[k];
        if (lo == U'\\' && k + 1 < p.size()) lo = p[++k];
        char32_t hi = lo;
        if (k + 2 < p.size() && p[k + 1] == U'-' && p[k + 2] != U']') {
          hi = p[k + 2];
          k += 2;
        }
        if (s[si] >= lo && s[si] <= hi) matched = true;
        ++k;
      }
      if (k >= p.size()) {  // no closing bracket: a literal '['
        if (s[si] != U'[') return false;
        ++pi;
        ++si;
        continue;
      }
      // picomatch also lets a bracket expression match its own literal text ("x[1].txt").
      const std::size_t lit_len = k + 1 - pi;
      if (s.compare(si, lit_len, p, pi, lit_len) == 0 && matchSegment(p, k + 1, s, si + lit_len)) {
        return true;
      }
      if (matched == negate) return false;
      pi = k + 1;
      ++si;
      continue;
    }
    if (c == U'\\' && pi + 1 < p.size()) c = p[++pi];
    if (s[si] != c) return false;
    ++pi;
    ++si;
  }
  return si == s.size();
}

struct CompiledPattern {
  std::vector<std::u32string> segments;  // relative to the walk base; "**" spans directories
  bool globstar = false;
};

bool matchPath(const CompiledPattern& pat, std::size_t pi, const std::vector<std::u32string>& path,
               std::size_t si) {
  if (pi == pat.segments.size()) return si == path.size();
  if (pat.segments[pi] == U"**") {
    for (std::size_t k = si; k <= path.size(); ++k) {
      if (matchPath(pat, pi + 1, path, k)) return true;
    }
    return false;
  }
  if (si >= path.size()) return false;
  return matchSegment(pat.segments[pi], 0, path[si], 0) && matchPath(pat, pi + 1, path, si + 1);
}

std::vector<std::string> splitSlash(std::string_view s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    std::size_t pos = s.find('/', start);
    if (pos == std::string_view::npos) {
      out.emplace_back(s.substr(start));
      break;
    }
    out.emplace_back(s.substr(start, pos - start));
    start = pos + 1;
  }
  return out;
}

std::string unescapeGlob(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    out += s[i];
  }
  return out;
}

bool isRegularFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

constexpr std::size_t kMaxGlobDepth = 128;

}  // namespace

namespace {

// The walk base of one (brace-free) pattern: its leading segments without glob characters.
std::pair<std::string, std::size_t> globBase(const std::string& pattern) {
  std::vector<std::string> segs = splitSlash(pattern);
  std::size_t base_len = 0;
  while (base_len + 1 < segs.size() && !hasMagic(segs[base_len]))
    ++base_len;
  std::string base;
  for (std::size_t i = 0; i < base_len; ++i) {
    if (i > 0) base += '/';
    base += unescapeGlob(segs[i]);
  }
  if (!pattern.empty() && pattern[0] == '/' && base.empty()) base = "/";
  return {base, base_len};
}

// One breadth-first walk from `base` (fast-glob's sync walker: each directory's entries in
// byte order, files reported as met, subdirectories queued), matching files against `patterns`.
void walkBase(const std::string& base, const std::vector<CompiledPattern>& patterns,
              bool match_dirs, std::set<std::string>* seen, std::vector<std::string>* results) {
  std::size_t max_depth = 0;
  for (const CompiledPattern& cp : patterns) {
    max_depth = std::max(max_depth, cp.globstar ? kMaxGlobDepth : cp.segments.size());
  }
  struct Dir {
    std::string path;                 // as it will be printed ("" = the current directory)
    std::vector<std::u32string> rel;  // segments below the base
  };
  std::deque<Dir> queue;
  queue.push_back({base, {}});
  while (!queue.empty()) {
    Dir dir = std::move(queue.front());
    queue.pop_front();
    std::string fs_path = dir.path.empty() ? "." : dir.path;
    std::error_code ec;
    std::vector<std::string> names;
    for (fs::directory_iterator it(fs_path, ec), end; !ec && it != end; it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      std::string child = dir.path.empty()  ? name
                          : dir.path == "/" ? "/" + name
                                            : dir.path + "/" + name;
      struct stat st {};
      if (::stat(child.c_str(), &st) != 0) continue;  // dangling symlink
      std::vector<std::u32string> rel = dir.rel;
      rel.push_back(js::decodeUtf8(name));
      if (S_ISREG(st.st_mode)) {
        for (const CompiledPattern& cp : patterns) {
          if (matchPath(cp, 0, rel, 0)) {
            if (seen->insert(child).second) results->push_back(child);
            break;
          }
        }
      } else if (S_ISDIR(st.st_mode) && match_dirs &&
                 std::any_of(patterns.begin(), patterns.end(), [&](const CompiledPattern& cp) {
                   return !cp.globstar && matchPath(cp, 0, rel, 0);
                 })) {
        if (seen->insert(child).second) results->push_back(child);  // copied whole
      } else if (S_ISDIR(st.st_mode) && rel.size() < max_depth) {
        queue.push_back({child, std::move(rel)});
      }
    }
  }
}

}  // namespace

std::vector<std::string> globFiles(std::string_view pattern_in, bool match_dirs) {
  std::string pattern(pattern_in);
  if (!hasMagic(pattern)) {
    std::string literal = unescapeGlob(pattern);
    if (isRegularFile(literal.empty() ? "." : literal)) return {literal};
    return {};
  }
  // fast-glob expands braces first, then runs one walk ("task") per distinct base directory,
  // in the order the bases first appear; results are de-duplicated across tasks.
  std::vector<std::pair<std::string, std::vector<CompiledPattern>>> tasks;
  for (const std::string& alt : expandBraces(pattern)) {
    const auto base_and_len = globBase(alt);
    const std::string& base = base_and_len.first;
    const std::size_t base_len = base_and_len.second;
    std::vector<std::string> segs = splitSlash(alt);
    CompiledPattern cp;
    for (std::size_t i = base_len; i < segs.size(); ++i) {
      if (segs[i].empty()) continue;  // "a//b"
      if (segs[i] == "**") cp.globstar = true;
      cp.segments.push_back(js::decodeUtf8(segs[i]));
    }
    if (!hasMagic(alt)) {
      // A brace alternative without glob characters is a static path.
      cp.segments.clear();
      for (std::size_t i = base_len; i < segs.size(); ++i) {
        if (!segs[i].empty()) cp.segments.push_back(js::decodeUtf8(unescapeGlob(segs[i])));
      }
    }
    auto it =
        std::find_if(tasks.begin(), tasks.end(), [&](const auto& t) { return t.first == base; });
    if (it == tasks.end()) {
      tasks.emplace_back(base, std::vector<CompiledPattern>{std::move(cp)});
    } else {
      it->second.push_back(std::move(cp));
    }
  }
  std::vector<std::string> results;
  std::set<std::string> seen;
  for (const auto& [base, patterns] : tasks)
    walkBase(base, patterns, match_dirs, &seen, &results);
  return results;
}

// ---------------------------------------------------------------------------------------------
// Discovery

namespace {

bool startsWithCi(std::string_view s, std::string_view word) {
  if (s.size() < word.size()) return false;
  return equalsIgnoreCase(s.substr(0, word.size()), word);
}

// `^\s*COPY\s+` / `^\s*ADD\s+` (case-insensitive): returns the instruction's length, or 0.
std::size_t instructionAt(const std::string& trimmed_start, std::string_view word) {
  if (!startsWithCi(trimmed_start, word)) return 0;
  std::string rest = trimmed_start.substr(word.size());
  if (rest.empty()) return 0;
  std::u32string r = js::decodeUtf8(rest.substr(0, 4));
  return !r.empty() && js::isWhitespace(r[0]) ? word.size() : 0;
}

// The sources of one COPY/ADD line after its keyword, or nothing when the SDK skips the line.
std::optional<std::vector<js::ShellWord>> parseSources(std::string parts) {
  parts = js::trim(parts);
  while (parts.starts_with("--")) {
    // .replace(/^\S+\s*/, '')
    std::u32string u = js::decodeUtf8(parts);
    std::size_t k = 0;
    while (k < u.size() && !js::isWhitespace(u[k]))
      ++k;
    while (k < u.size() && js::isWhitespace(u[k]))
      ++k;
    parts = js::encodeUtf8(std::u32string_view(u).substr(k));
  }
  if (parts.starts_with("[")) {
    Result<Json> decoded = parseJson(parts);
    if (!decoded.ok() || !decoded->is_array() || decoded->size() < 2) return std::nullopt;
    std::vector<js::ShellWord> sources;
    for (const Json& e : *decoded) {
      if (!e.is_string()) return std::nullopt;
      sources.push_back({e.get<std::string>(), false});
    }
    sources.pop_back();
    // The JSON form has no shell: a source with glob characters is globbed (fast-glob sees it).
    return sources;
  }
  std::vector<js::ShellWord> words = js::parseShellWords(parts);
  if (words.size() < 2) return std::nullopt;
  words.pop_back();
  return words;
}

bool isRemoteSource(std::string_view s) {
  // ADD's URL and git sources are fetched by the builder, not taken from the context.
  std::size_t scheme_end = s.find("://");
  if (scheme_end != std::string_view::npos && scheme_end > 0) {
    bool scheme = true;
    for (std::size_t i = 0; i < scheme_end; ++i) {
      char c = s[i];
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.')) {
        scheme = false;
      }
    }
    if (scheme) return true;
  }
  return s.starts_with("git@");
}

std::string realPathOr(const std::string& target, bool* ok) {
  char buf[PATH_MAX];
  if (::realpath(target.c_str(), buf) != nullptr) {
    *ok = true;
    return buf;
  }
  *ok = false;
  return {};
}

Status ensureSourceWithinContext(const std::string& source) {
  std::string normalized = js::pathe::normalize(source);
  bool drive_or_unc = (source.size() >= 2 && std::isalpha(static_cast<unsigned char>(source[0])) &&
                       source[1] == ':') ||
                      source.starts_with("\\\\");
  bool outside = js::pathe::isAbsolute(source) || drive_or_unc || normalized == ".." ||
                 normalized.starts_with("../");
  if (outside) return invalidArgument("forbidden path outside the build context: " + source);
  return okStatus();
}

Status ensureWithinBuildContext(const std::optional<std::string>& real_root,
                                const std::string& candidate) {
  if (!real_root) return okStatus();
  bool ok = false;
  std::string resolved = realPathOr(candidate, &ok);
  if (!ok) {
    struct stat st {};
    if (::lstat(candidate.c_str(), &st) == 0) {
      return invalidArgument("forbidden path outside the build context: " + candidate);
    }
    return okStatus();
  }
  resolved = js::pathe::normalize(resolved);
  std::string rel = js::pathe::relative(*real_root, resolved);
  if (rel == ".." || rel.starts_with("../")) {
    return invalidArgument("forbidden path outside the build context: " + resolved);
  }
  return okStatus();
}

std::string archivePathFor(const std::string& match, const std::string& source,
                           std::string_view prefix) {
  if (prefix.empty() || source.starts_with(prefix)) return match;
  std::string rest = js::utf16Slice(match, js::utf16Length(prefix), std::string::npos);
  std::size_t k = 0;
  while (k < rest.size() && (rest[k] == '/' || rest[k] == '\\'))
    ++k;
  return rest.substr(k);
}

}  // namespace

Result<std::shared_ptr<const dockerfile::DockerIgnore>> loadDockerIgnore(std::string_view dir) {
  std::string path = js::pathe::join({dir.empty() ? std::string_view(".") : dir, ".dockerignore"});
  if (!isRegularFile(path)) return std::shared_ptr<const dockerfile::DockerIgnore>();
  CAIRN_ASSIGN_OR_RETURN(std::string text, readFile(path));
  Result<dockerfile::DockerIgnore> parsed = dockerfile::DockerIgnore::parse(text);
  if (!parsed.ok()) return parsed.status().withContext(path);
  if (parsed->empty()) return std::shared_ptr<const dockerfile::DockerIgnore>();
  return std::shared_ptr<const dockerfile::DockerIgnore>(
      std::make_shared<dockerfile::DockerIgnore>(std::move(parsed).value()));
}

Result<std::vector<ContextEntry>> discoverContextEntries(
    std::string_view content, std::string_view prefix_view, bool strict,
    std::shared_ptr<const dockerfile::DockerIgnore> dockerignore) {
  const std::string prefix(prefix_view);
  std::vector<ContextEntry> entries;
  for (const std::string& line : dockerfileLogicalLines(content)) {
    std::string trimmed = js::trim(line);
    if (trimmed.empty() || trimmed.starts_with('#')) continue;
    std::string start = js::trimStart(line);
    bool is_add = false;
    std::size_t keyword = instructionAt(start, "COPY");
    if (keyword == 0) {
      keyword = instructionAt(start, "ADD");
      is_add = keyword > 0;
    }
    if (keyword == 0) continue;
    // (?!.*--from=): `.` stops at a line terminator.
    std::string_view upto = line;
    if (std::size_t cr = upto.find('\r'); cr != std::string_view::npos) upto = upto.substr(0, cr);
    if (upto.find("--from=") != std::string_view::npos) continue;
    if (line.find("<<") != std::string::npos) continue;  // heredoc: inline content

    std::optional<std::string> real_root;
    if (strict) {
      bool ok = false;
      std::string real = realPathOr(prefix, &ok);
      real_root = ok ? js::pathe::normalize(real) : js::pathe::resolve(prefix);
    }
    std::optional<std::vector<js::ShellWord>> sources = parseSources(trimmed.substr(keyword));
    if (!sources) continue;
    for (const js::ShellWord& word : *sources) {
      const std::string& source = word.text;
      if (is_add && isRemoteSource(source)) continue;
      if (real_root) CAIRN_RETURN_IF_ERROR(ensureSourceWithinContext(source));
      std::string full = js::pathe::isAbsolute(source) ? source : js::pathe::join({prefix, source});
      // An unquoted glob is Cairn's addition (the SDK drops it): like Docker, it also matches
      // directories, which are then copied whole.
      std::vector<std::string> matches = globFiles(full, word.glob);
      const bool globbed = hasMagic(full);
      bool any = false;
      for (const std::string& match : matches) {
        CAIRN_RETURN_IF_ERROR(ensureWithinBuildContext(real_root, match));
        std::string archive = archivePathFor(match, source, prefix);
        if (globbed && dockerignore && !js::pathe::isAbsolute(archive) &&
            dockerignore->excluded(archive)) {
          any = true;  // matched, but the .dockerignore leaves it out of the context
          continue;
        }
        bool inside = !js::pathe::isAbsolute(archive);
        entries.push_back({match, archive, inside ? dockerignore : nullptr});
        any = true;
      }
      if (!any) {
        CAIRN_RETURN_IF_ERROR(ensureWithinBuildContext(real_root, full));
        std::string archive = archivePathFor(full, source, prefix);
        bool inside = !js::pathe::isAbsolute(archive);
        entries.push_back({full, archive, inside ? dockerignore : nullptr});
      }
    }
  }
  return entries;
}

}  // namespace cairn::image
