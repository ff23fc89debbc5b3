#include "cairn/dockerfile/instructions.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "cairn/common/strings.h"

namespace cairn::dockerfile {
namespace {

constexpr std::array<std::string_view, 18> kInstructions = {
    "ADD",    "ARG",   "CMD",         "COPY",  "ENTRYPOINT", "ENV",
    "EXPOSE", "FROM",  "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD",
    "RUN",    "SHELL", "STOPSIGNAL",  "USER",  "VOLUME",     "WORKDIR"};

// "did you mean X?" when a close candidate exists (case-insensitive, like BuildKit's suggest).
std::string suggestion(std::string_view word, const std::vector<std::string>& candidates) {
  std::string lower = toLowerAscii(word);
  std::size_t best = std::numeric_limits<std::size_t>::max();
  std::string best_word;
  for (const std::string& c : candidates) {
    std::size_t d = editDistance(lower, toLowerAscii(c));
    if (d < best) {
      best = d;
      best_word = c;
    }
  }
  std::size_t limit = std::max<std::size_t>(1, std::min<std::size_t>(2, lower.size() / 2));
  if (best == 0 || best > limit) return "";
  return " (did you mean " + best_word + "?)";
}

// Where a parse error is reported: the node's line, and the column of the offending flag (or
// the keyword) when it can be found on the first line.
struct Where {
  const Node& node;
  Status error(std::string_view message, std::string_view needle = {}) const {
    int column = 0;
    if (!needle.empty()) {
      std::size_t pos = node.first_line.find(needle);
      if (pos != std::string::npos) column = static_cast<int>(pos) + 1;
    } else {
      column = node.column;
    }
    std::string out = "line " + std::to_string(node.start_line);
    if (column > 0) out += ", column " + std::to_string(column);
    out += ": ";
    out += message;
    return invalidArgument(std::move(out));
  }
};

// BuildKit's BFlags: declared flags, parsed from node.flags.
class Flags {
 public:
  enum class Type { kBool, kString, kStrings };
  struct Flag {
    Type type = Type::kBool;
    bool set = false;
    std::string value;
    std::vector<std::string> values;
  };

  void add(std::string name, Type type) {
    Flag f;
    f.type = type;
    flags_[std::move(name)] = std::move(f);
  }

  Status parse(const Node& node, std::string_view instruction) {
    Where where{node};
    for (const std::string& raw : node.flags) {
      if (!raw.starts_with("--")) return where.error("flag should start with --: " + raw, raw);
      if (raw == "--") return okStatus();
      std::string arg = raw.substr(2);
      std::string value;
      std::size_t eq = arg.find('=');
      bool has_value = eq != std::string::npos;
      if (has_value) {
        value = arg.substr(eq + 1);
        arg.resize(eq);
      }
      auto it = flags_.find(arg);
      if (it == flags_.end()) {
        std::vector<std::string> names;
        for (const auto& [n, f] : flags_)
          names.push_back("--" + n);
        std::string msg = "unknown flag --" + arg + " for " + std::string(instruction);
        if (names.empty()) {
          msg += " (it takes no flags)";
        } else {
          msg += suggestion("--" + arg, names);
          if (msg.back() != ')') msg += " (valid flags: " + joinStrings(names, ", ") + ")";
        }
        return where.error(msg, "--" + arg);
      }
      Flag& flag = it->second;
      if (flag.set && flag.type != Type::kStrings) {
        return where.error("duplicate flag specified: --" + arg, "--" + arg);
      }
      flag.set = true;
      switch (flag.type) {
        case Type::kBool: {
          if (has_value && value.empty()) {
            return where.error("missing a value on flag: --" + arg, "--" + arg);
          }
          std::string lower = toLowerAscii(value);
          if (lower.empty()) {
            flag.value = "true";
          } else if (lower == "true" || lower == "false") {
            flag.value = lower;
          } else {
            return where.error("expecting boolean value for flag --" + arg + ", not: " + value,
                               "--" + arg);
          }
          break;
        }
        case Type::kString:
          if (!has_value) return where.error("missing a value on flag: --" + arg, "--" + arg);
          flag.value = value;
          break;
        case Type::kStrings:
          if (!has_value) return where.error("missing a value on flag: --" + arg, "--" + arg);
          flag.values.push_back(value);
          break;
      }
    }
    return okStatus();
  }

  const std::string& str(const std::string& name) const { return flags_.at(name).value; }
  bool boolean(const std::string& name) const { return flags_.at(name).value == "true"; }
  bool isSet(const std::string& name) const { return flags_.at(name).set; }
  const std::vector<std::string>& strings(const std::string& name) const {
    return flags_.at(name).values;
  }

 private:
  std::map<std::string, Flag> flags_;
};

std::optional<bool> parseGoBool(std::string_view s) {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False") {
    return false;
  }
  return std::nullopt;
}

std::optional<uint64_t> parseUnsigned(std::string_view s, int base, uint64_t max) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    int d = (c >= '0' && c <= '9') ? c - '0' : -1;
    if (d < 0 || d >= base) return std::nullopt;
    if (v > (max - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) return std::nullopt;
    v = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  return v;
}

// docker/go-units RAMInBytes: "64m", "1.5GiB", "1024" (binary multiples).
std::optional<uint64_t> parseRamBytes(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
    ++i;
  std::string_view number = s.substr(0, i);
  if (number.empty() || number.front() == '.' || number.back() == '.') return std::nullopt;
  std::string_view unit = s.substr(i);
  if (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  double mult = 1;
  if (!unit.empty()) {
    switch (unit.front()) {
      case 'k':
      case 'K':
        mult = 1024.0;
        break;
      case 'm':
      case 'M':
        mult = 1024.0 * 1024;
        break;
      case 'g':
      case 'G':
        mult = 1024.0 * 1024 * 1024;
        break;
      case 't':
      case 'T':
        mult = 1024.0 * 1024 * 1024 * 1024;
        break;
      case 'p':
      case 'P':
        mult = 1024.0 * 1024 * 1024 * 1024 * 1024;
        break;
      case 'b':
      case 'B':
        break;
      default:
        return std::nullopt;
    }
    std::string_view tail = unit.substr(unit.front() == 'b' || unit.front() == 'B' ? 0 : 1);
    if (!tail.empty() && (tail.front() == 'i' || tail.front() == 'I')) tail.remove_prefix(1);
    if (!tail.empty() && (tail.front() == 'b' || tail.front() == 'B')) tail.remove_prefix(1);
    if (!tail.empty()) return std::nullopt;
  }
  char* end = nullptr;
  std::string num(number);
  double v = std::strtod(num.c_str(), &end);
  if (end != num.c_str() + num.size()) return std::nullopt;
  double bytes = v * mult;
  if (!(bytes >= 0) || bytes > 9.0e18) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

// Go's encoding/csv for one record, as BuildKit reads --mount values.
Result<std::vector<std::string>> readCsvRecord(std::string_view s) {
  std::vector<std::string> fields;
  std::size_t i = 0;
  for (;;) {
    std::string field;
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        if (s[i] == '"') {
          if (i + 1 < s.size() && s[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          closed = true;
          ++i;
          break;
        }
        field += s[i++];
      }
      if (!closed) return invalidArgument("extraneous or missing \" in quoted-field");
      if (i < s.size() && s[i] != ',') return invalidArgument("extraneous \" in field");
    } else {
      while (i < s.size() && s[i] != ',') {
        if (s[i] == '"') return invalidArgument("bare \" in non-quoted-field");
        field += s[i++];
      }
    }
    fields.push_back(std::move(field));
    if (i >= s.size()) break;
    ++i;  // ','
  }
  return fields;
}

Result<RunMount> parseMount(std::string_view value) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> fields, readCsvRecord(value));
  RunMount m;
  bool ro_auto = true;
  bool sharing_set = false;
  bool required_set = false;
  bool size_set = false;
  for (const std::string& field : fields) {
    std::size_t eq = field.find('=');
    std::string key = toLowerAscii(field.substr(0, eq));
    std::string val = eq == std::string::npos ? "" : field.substr(eq + 1);
    if (eq == std::string::npos) {
      if (key == "readonly" || key == "ro") {
        m.read_only = true;
        ro_auto = false;
        continue;
      }
      if (key == "readwrite" || key == "rw") {
        m.read_only = false;
        ro_auto = false;
        continue;
      }
      if (key == "required") {
        m.required = true;
        required_set = true;
        continue;
      }
    }
    if (key == "type") {
      std::string t = toLowerAscii(val);
      if (t == "bind") {
        m.type = MountType::kBind;
      } else if (t == "cache") {
        m.type = MountType::kCache;
      } else if (t == "tmpfs") {
        m.type = MountType::kTmpfs;
      } else if (t == "secret") {
        m.type = MountType::kSecret;
      } else if (t == "ssh") {
        m.type = MountType::kSsh;
      } else {
        return invalidArgument("unsupported mount type \"" + val + "\"" +
                               suggestion(val, {"bind", "cache", "tmpfs", "secret", "ssh"}));
      }
    } else if (key == "from") {
      m.from = val;
    } else if (key == "source" || key == "src") {
      m.source = val;
    } else if (key == "target" || key == "dst" || key == "destination") {
      m.target = val;
    } else if (key == "readonly" || key == "ro" || key == "readwrite" || key == "rw") {
      auto b = parseGoBool(val);
      if (!b) return invalidArgument("invalid value for " + key + ": " + val);
      m.read_only = (key == "readonly" || key == "ro") ? *b : !*b;
      ro_auto = false;
    } else if (key == "required") {
      auto b = parseGoBool(val);
      if (!b) return invalidArgument("invalid value for required: " + val);
      m.required = *b;
      required_set = true;
    } else if (key == "size") {
      auto bytes = parseRamBytes(val);
      if (!bytes) return invalidArgument("invalid value for size: " + val);
      m.size_bytes = *bytes;
      size_set = true;
    } else if (key == "id") {
      m.cache_id = val;
    } else if (key == "sharing") {
      std::string s = toLowerAscii(val);
      if (s == "shared") {
        m.sharing = CacheSharing::kShared;
      } else if (s == "private") {
        m.sharing = CacheSharing::kPrivate;
      } else if (s == "locked") {
        m.sharing = CacheSharing::kLocked;
      } else {
        return invalidArgument("unsupported sharing value \"" + val +
                               "\" (use shared, private or locked)");
      }
      sharing_set = true;
    } else if (key == "mode") {
      auto mode = parseUnsigned(val, 8, 0xFFFFFFFFu);
      if (!mode) return invalidArgument("invalid value " + val + " for mode (octal expected)");
      m.mode = static_cast<uint32_t>(*mode);
    } else if (key == "uid" || key == "gid") {
      auto id = parseUnsigned(val, 10, 0xFFFFFFFFu);
      if (!id) return invalidArgument("invalid value for " + key + ": " + val);
      (key == "uid" ? m.uid : m.gid) = static_cast<uint32_t>(*id);
    } else if (key == "env") {
      m.env = val;
    } else {
      return invalidArgument(
          "unexpected key '" + key + "' in '" + field + "'" +
          suggestion(key, {"type", "from", "source", "target", "readonly", "readwrite", "required",
                           "size", "id", "sharing", "mode", "uid", "gid", "env"}));
    }
  }
  std::string type(mountTypeName(m.type));
  bool file_info =
      m.type == MountType::kSecret || m.type == MountType::kSsh || m.type == MountType::kCache;
  if (!file_info && (m.mode || m.uid || m.gid)) {
    return invalidArgument("mode, uid and gid are not allowed for " + type + " mounts");
  }
  if (required_set && m.type != MountType::kSecret && m.type != MountType::kSsh) {
    return invalidArgument("unexpected key 'required' for mount type '" + type + "'");
  }
  if (size_set && m.type != MountType::kTmpfs) {
    return invalidArgument("unexpected key 'size' for mount type '" + type + "'");
  }
  if (sharing_set && m.type != MountType::kCache) {
    return invalidArgument("invalid cache sharing set for " + type + " mount");
  }
  if (!m.env.empty() && m.type != MountType::kSecret) {
    return invalidArgument("unexpected key 'env' for mount type '" + type + "'");
  }
  if (ro_auto) m.read_only = !(m.type == MountType::kCache || m.type == MountType::kTmpfs);
  if (m.type == MountType::kSecret) {
    if (!m.from.empty()) return invalidArgument("secret mounts can't be from another image");
    if (!m.cache_id.empty() && !m.source.empty()) {
      return invalidArgument("both source and id can't be set for a secret mount");
    }
    if (m.cache_id.empty()) m.cache_id = m.source;
    if (m.cache_id.empty() && !m.target.empty()) {
      std::size_t slash = m.target.find_last_of('/');
      m.cache_id = slash == std::string::npos ? m.target : m.target.substr(slash + 1);
    }
    if (m.cache_id.empty()) return invalidArgument("secret mount needs an id, source or target");
    if (m.target.empty() && m.env.empty()) m.target = "/run/secrets/" + m.cache_id;
  } else if (m.type == MountType::kSsh) {
    if (m.cache_id.empty()) m.cache_id = "default";
  } else if (m.target.empty()) {
    return invalidArgument(type + " mount needs a target (target=/path)");
  }
  return m;
}

std::vector<std::string> handleJsonArgs(const Node& node) {
  if (node.json) return node.args;
  if (node.args.empty()) return {};
  return {joinStrings(node.args, " ")};
}

Status exactlyOne(const Where& w, const Node& node, std::string_view name) {
  if (node.args.size() != 1) {
    return w.error(std::string(name) + " requires exactly one argument");
  }
  return okStatus();
}

Status atLeastOne(const Where& w, const Node& node, std::string_view name) {
  if (node.args.empty()) return w.error(std::string(name) + " requires at least one argument");
  return okStatus();
}

Result<std::vector<KeyValue>> parseKvps(const Where& w, const Node& node, std::string_view name) {
  CAIRN_RETURN_IF_ERROR(atLeastOne(w, node, name));
  if (node.args.size() % 3 != 0) return w.error(std::string(name) + " has too many arguments");
  std::vector<KeyValue> out;
  for (std::size_t i = 0; i < node.args.size(); i += 3) {
    if (node.args[i].empty()) return w.error(std::string(name) + " names can not be blank");
    out.push_back(KeyValue{node.args[i], node.args[i + 1]});
  }
  return out;
}

std::vector<InlineFile> shellFiles(const Node& node) {
  std::vector<InlineFile> files;
  for (const Heredoc& h : node.heredocs) {
    files.push_back(InlineFile{h.name, h.chomp ? chompHeredocContent(h.content) : h.content,
                               h.expand, h.chomp});
  }
  return files;
}

Result<CommandLine> shellDependent(const Node& node) {
  CommandLine c;
  c.args = handleJsonArgs(node);
  c.prepend_shell = !node.json;
  c.files = shellFiles(node);
  return c;
}

Result<Command> parseCommandImpl(const Node& node, int depth);

Result<CopyCommand> parseCopy(const Where& w, const Node& node, bool is_add) {
  std::string name = is_add ? "ADD" : "COPY";
  Flags flags;
  flags.add("chown", Flags::Type::kString);
  flags.add("chmod", Flags::Type::kString);
  flags.add("link", Flags::Type::kBool);
  flags.add("exclude", Flags::Type::kStrings);
  if (is_add) {
    flags.add("checksum", Flags::Type::kString);
    flags.add("keep-git-dir", Flags::Type::kBool);
    flags.add("unpack", Flags::Type::kBool);
  } else {
    flags.add("from", Flags::Type::kString);
    flags.add("parents", Flags::Type::kBool);
  }
  CAIRN_RETURN_IF_ERROR(flags.parse(node, name));
  if (node.args.size() < 2) {
    return w.error(name + " requires at least two arguments, but only " +
                   std::to_string(node.args.size()) +
                   " was provided. Destination could not be determined.");
  }
  CopyCommand c;
  c.is_add = is_add;
  c.json = node.json;
  c.dest = node.args.back();
  Heredoc probe;
  if (!node.json && parseHeredocWord(c.dest, probe).valueOr(false)) {
    return w.error(name + " does not support a heredoc as a destination");
  }
  for (std::size_t i = 0; i + 1 < node.args.size(); ++i) {
    std::string src = node.args[i];
    if (!node.json && isHeredocOperator(src) && i + 2 < node.args.size()) {
      src += " " + node.args[++i];  // `COPY << EOF /dest`
    }
    Heredoc h;
    if (!node.json && parseHeredocWord(src, h).valueOr(false)) {
      auto it = std::find_if(node.heredocs.begin(), node.heredocs.end(),
                             [&](const Heredoc& x) { return x.name == h.name; });
      std::string content;
      if (it != node.heredocs.end())
        content = h.chomp ? chompHeredocContent(it->content) : it->content;
      c.source_contents.push_back(InlineFile{h.name, std::move(content), h.expand, h.chomp});
    } else {
      c.sources.push_back(src);
    }
  }
  c.chown = flags.str("chown");
  c.chmod = flags.str("chmod");
  if (!c.chmod.empty()) {
    bool octal = parseUnsigned(c.chmod, 8, 07777).has_value();
    bool symbolic = std::all_of(c.chmod.begin(), c.chmod.end(), [](char ch) {
      return std::string_view("ugoa+-=rwxXst,").find(ch) != std::string_view::npos;
    });
    if (!octal && !symbolic) {
      return w.error("invalid --chmod value \"" + c.chmod +
                         "\": expected an octal mode such as 0755 or a symbolic one such as u+x",
                     "--chmod");
    }
  }
  c.link = flags.boolean("link");
  c.excludes = flags.strings("exclude");
  if (is_add) {
    c.checksum = flags.str("checksum");
    c.keep_git_dir = flags.boolean("keep-git-dir");
    if (flags.isSet("unpack")) c.unpack = flags.boolean("unpack");
    if (!c.checksum.empty()) {
      std::size_t colon = c.checksum.find(':');
      std::string algo = c.checksum.substr(0, colon == std::string::npos ? 0 : colon);
      std::string hex = colon == std::string::npos ? "" : c.checksum.substr(colon + 1);
      bool hex_ok = !hex.empty() && std::all_of(hex.begin(), hex.end(), [](char ch) {
        return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
      });
      if ((algo != "sha256" && algo != "sha384" && algo != "sha512") || !hex_ok) {
        return w.error("invalid --checksum \"" + c.checksum + "\": expected sha256:<hex digest>",
                       "--checksum");
      }
    }
  } else {
    c.from = flags.str("from");
    c.parents = flags.boolean("parents");
  }
  return c;
}

Result<RunCommand> parseRun(const Where& w, const Node& node) {
  Flags flags;
  flags.add("mount", Flags::Type::kStrings);
  flags.add("network", Flags::Type::kString);
  flags.add("security", Flags::Type::kString);
  CAIRN_RETURN_IF_ERROR(flags.parse(node, "RUN"));
  RunCommand r;
  for (const std::string& m : flags.strings("mount")) {
    auto mount = parseMount(m);
    if (!mount.ok()) {
      return w.error("invalid --mount=" + m + ": " + mount.status().message(), "--mount");
    }
    r.mounts.push_back(std::move(mount).value());
  }
  if (flags.isSet("network")) {
    const std::string& n = flags.str("network");
    if (n == "default") {
      r.network = NetworkMode::kDefault;
    } else if (n == "none") {
      r.network = NetworkMode::kNone;
    } else if (n == "host") {
      r.network = NetworkMode::kHost;
    } else {
      return w.error("unsupported network mode \"" + n + "\" (use default, none or host)",
                     "--network");
    }
  }
  if (flags.isSet("security")) {
    const std::string& s = flags.str("security");
    if (s == "sandbox") {
      r.security = SecurityMode::kSandbox;
    } else if (s == "insecure") {
      r.security = SecurityMode::kInsecure;
    } else {
      return w.error("unsupported security mode \"" + s + "\" (use sandbox or insecure)",
                     "--security");
    }
  }
  if (node.args.empty() && node.heredocs.empty()) {
    return w.error("RUN requires at least one argument");
  }
  CAIRN_ASSIGN_OR_RETURN(r.cmd, shellDependent(node));
  return r;
}

Result<int64_t> parseInterval(const Where& w, const Flags& flags, const std::string& name) {
  const std::string& s = flags.str(name);
  if (s.empty()) return int64_t{0};
  auto d = parseGoDuration(s);
  if (!d.ok()) return w.error("--" + name + ": " + d.status().message(), "--" + name);
  if (*d == 0) return int64_t{0};
  if (*d < 1000000) return w.error("--" + name + " cannot be less than 1ms", "--" + name);
  return *d;
}

Result<HealthcheckCommand> parseHealthcheck(const Where& w, const Node& node) {
  CAIRN_RETURN_IF_ERROR(atLeastOne(w, node, "HEALTHCHECK"));
  HealthcheckCommand h;
  std::string type = toUpperAscii(node.args[0]);
  if (type == "NONE") {
    if (node.args.size() != 1) return w.error("HEALTHCHECK NONE takes no arguments");
    if (!node.flags.empty()) return w.error("HEALTHCHECK NONE takes no flags", node.flags[0]);
    h.test = {"NONE"};
    return h;
  }
  Flags flags;
  flags.add("interval", Flags::Type::kString);
  flags.add("timeout", Flags::Type::kString);
  flags.add("start-period", Flags::Type::kString);
  flags.add("start-interval", Flags::Type::kString);
  flags.add("retries", Flags::Type::kString);
  CAIRN_RETURN_IF_ERROR(flags.parse(node, "HEALTHCHECK"));
  if (type != "CMD") {
    return w.error("unknown type \"" + node.args[0] + "\" in HEALTHCHECK (try CMD or NONE)");
  }
  std::vector<std::string> rest(node.args.begin() + 1, node.args.end());
  if (!node.json && !rest.empty()) rest = {joinStrings(rest, " ")};
  if (rest.empty()) return w.error("missing command after HEALTHCHECK CMD");
  h.test.push_back(node.json ? "CMD" : "CMD-SHELL");
  h.test.insert(h.test.end(), rest.begin(), rest.end());
  CAIRN_ASSIGN_OR_RETURN(h.interval_ns, parseInterval(w, flags, "interval"));
  CAIRN_ASSIGN_OR_RETURN(h.timeout_ns, parseInterval(w, flags, "timeout"));
  CAIRN_ASSIGN_OR_RETURN(h.start_period_ns, parseInterval(w, flags, "start-period"));
  CAIRN_ASSIGN_OR_RETURN(h.start_interval_ns, parseInterval(w, flags, "start-interval"));
  const std::string& retries = flags.str("retries");
  if (!retries.empty()) {
    std::string_view digits = retries;
    bool negative = digits.starts_with('-');
    if (negative || digits.starts_with('+')) digits.remove_prefix(1);
    auto v = parseUnsigned(digits, 10, 0x7FFFFFFF);
    if (!v) return w.error("invalid --retries value \"" + retries + "\"", "--retries");
    if (negative && *v != 0) {
      return w.error("--retries cannot be negative (" + retries + ")", "--retries");
    }
    h.retries = static_cast<int>(*v);
  }
  return h;
}

Result<Command> parseCommandImpl(const Node& node, int depth) {
  Where w{node};
  Command out;
  out.name = toUpperAscii(node.keyword);
  out.original = node.original;
  out.start_line = node.start_line;
  out.end_line = node.end_line;
  const std::string cmd = node.command();

  auto noFlags = [&]() { return Flags().parse(node, out.name); };

  if (cmd == "run") {
    CAIRN_ASSIGN_OR_RETURN(RunCommand r, parseRun(w, node));
    out.cmd = std::move(r);
  } else if (cmd == "copy" || cmd == "add") {
    CAIRN_ASSIGN_OR_RETURN(CopyCommand c, parseCopy(w, node, cmd == "add"));
    out.cmd = std::move(c);
  } else if (cmd == "env") {
    CAIRN_RETURN_IF_ERROR(noFlags());
    CAIRN_ASSIGN_OR_RETURN(auto kvs, parseKvps(w, node, "ENV"));
    out.cmd = EnvCommand{std::move(kvs)};
  } else if (cmd == "label") {
    CAIRN_RETURN_IF_ERROR(noFlags());
    CAIRN_ASSIGN_OR_RETURN(auto kvs, parseKvps(w, node, "LABEL"));
    out.cmd = LabelCommand{std::move(kvs)};
  } else if (cmd == "arg") {
    CAIRN_RETURN_IF_ERROR(noFlags());
    CAIRN_RETURN_IF_ERROR(atLeastOne(w, node, "ARG"));
    ArgCommand a;
    for (const std::string& word : node.args) {
      std::size_t eq = word.find('=');
      ArgDefinition def;
      def.key = word.substr(0, eq);
      if (eq != std::string::npos) def.value = word.substr(eq + 1);
      if (def.key.empty()) return w.error("ARG names can not be blank");
      a.args.push_back(std::move(def));
    }
    out.cmd = std::move(a);
  } else if (cmd == "workdir") {
    CAIRN_RETURN_IF_ERROR(noFlags());
    CAIRN_RETURN_IF_ERROR(exactlyOne(w, node, "WORKDIR"));
    out.cmd = WorkdirCommand{node.args[0]};
  } else if (cmd == "user") {
    CAIRN_RETURN_IF_ERROR(noFlags());
    CAIRN_RETURN_IF_ERROR(exactlyOne(w, node, "USER"));
    out.cmd = UserCommand{node.args[0]};
  } else if (cmd == "expose") {
    CAIRN_RETURN_IF_ERROR(noFlags());
    CAIRN_RETURN_IF_ERROR(atLeastOne(w, node, "EXPOSE"));
    out.cmd = ExposeCommand{node.args};
  } else if (cmd == "volume") {
    CAIRN_RETURN_IF_ERROR(noFlags());
    CAIRN_RETURN_IF_ERROR(atLeastOne(w, node, "VOLUME"));
    VolumeCommand v;
    for (const std::string& vol : node.args) {
      if (trimSpace(vol).empty()) return w.error("VOLUME specified can not be an empty string");
      v.volumes.push_back(vol);
    }
    out.cmd = std::move(v);
  } else if (cmd == "entrypoint" || cmd == "cmd") {
    CAIRN_RETURN_IF_ERROR(noFlags());
    CAIRN_ASSIGN_OR_RETURN(CommandLine line, shellDependent(node));
    if (cmd == "cmd") {
      out.cmd = CmdCommand{std::move(line)};
    } else {
      out.cmd = EntrypointCommand{std::move(line)};
    }
  } else if (cmd == "shell") {
    CAIRN_RETURN_IF_ERROR(noFlags());
    CAIRN_RETURN_IF_ERROR(atLeastOne(w, node, "SHELL"));
    if (!node.json) {
      return w.error(
          "SHELL requires the arguments to be in JSON form, e.g. SHELL [\"/bin/sh\", \"-c\"]");
    }
    out.cmd = ShellCommand{node.args};
  } else if (cmd == "stopsignal") {
    CAIRN_RETURN_IF_ERROR(noFlags());
    CAIRN_RETURN_IF_ERROR(exactlyOne(w, node, "STOPSIGNAL"));
    out.cmd = StopSignalCommand{node.args[0]};
  } else if (cmd == "maintainer") {
    CAIRN_RETURN_IF_ERROR(noFlags());
    CAIRN_RETURN_IF_ERROR(exactlyOne(w, node, "MAINTAINER"));
    out.cmd = MaintainerCommand{node.args[0]};
  } else if (cmd == "healthcheck") {
    CAIRN_ASSIGN_OR_RETURN(HealthcheckCommand h, parseHealthcheck(w, node));
    out.cmd = std::move(h);
  } else if (cmd == "onbuild") {
    CAIRN_RETURN_IF_ERROR(noFlags());
    if (node.nested.empty()) {
      if (!node.args.empty()) {
        return w.error("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      }
      return w.error("ONBUILD requires at least one argument");
    }
    const Node& trigger = node.nested.front();
    std::string trigger_cmd = trigger.command();
    if (trigger_cmd == "onbuild") {
      return w.error("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    }
    if (trigger_cmd == "from" || trigger_cmd == "maintainer") {
      return w.error(toUpperAscii(trigger_cmd) + " isn't allowed as an ONBUILD trigger");
    }
    if (depth == 0) {
      // Validate the trigger now so a typo is reported where it is written.
      Node checked = trigger;
      checked.start_line = node.start_line;
      checked.end_line = node.end_line;
      checked.first_line = node.first_line;
      checked.heredocs = node.heredocs;
      auto parsed = parseCommandImpl(checked, depth + 1);
      if (!parsed.ok()) return parsed.status();
    }
    std::string expression(trimSpace(node.original));
    std::size_t sp = 0;
    while (sp < expression.size() && !std::isspace(static_cast<unsigned char>(expression[sp])))
      ++sp;
    expression = std::string(trimSpace(std::string_view(expression).substr(sp)));
    for (const Heredoc& h : node.heredocs)
      expression += "\n" + h.content + h.name;
    out.cmd = OnbuildCommand{std::move(expression)};
  } else if (cmd == "from") {
    return w.error("FROM is a stage, not a command");
  } else {
    std::vector<std::string> known(kInstructions.begin(), kInstructions.end());
    return w.error("unknown instruction: " + node.keyword + suggestion(node.keyword, known));
  }
  return out;
}

bool validStageName(std::string_view name) {
  if (name.empty() || !(name[0] >= 'a' && name[0] <= 'z')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
  });
}

Result<Stage> parseFrom(const Node& node) {
  Where w{node};
  Flags flags;
  flags.add("platform", Flags::Type::kString);
  CAIRN_RETURN_IF_ERROR(flags.parse(node, "FROM"));
  Stage s;
  if (node.args.size() == 3 && equalsIgnoreCase(node.args[1], "as")) {
    s.name = toLowerAscii(node.args[2]);
    if (!validStageName(s.name)) {
      return w.error("invalid name for build stage: \"" + node.args[2] +
                     "\", name can't start with a number or contain symbols");
    }
  } else if (node.args.size() != 1) {
    return w.error("FROM requires either one or three arguments (FROM image [AS name])");
  }
  s.base_name = node.args[0];
  s.platform = flags.str("platform");
  s.original = std::string(trimSpace(node.original));
  s.start_line = node.start_line;
  return s;
}

std::string quoteList(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ", ";
    out += goQuote(v[i]);
  }
  return out + "]";
}

std::string describeLine(const CommandLine& c) {
  std::string out = c.prepend_shell ? "shell " : "exec ";
  out += quoteList(c.args);
  for (const InlineFile& f : c.files) {
    out += " heredoc(" + goQuote(f.name) + (f.expand ? "" : " noexpand") +
           (f.chomp ? " chomp" : "") + ")=" + goQuote(f.data);
  }
  return out;
}

std::string durationString(int64_t ns) {
  if (ns % 1000000000 == 0) return std::to_string(ns / 1000000000) + "s";
  if (ns % 1000000 == 0) return std::to_string(ns / 1000000) + "ms";
  return std::to_string(ns) + "ns";
}

}  // namespace

std::string_view mountTypeName(MountType t) {
  switch (t) {
    case MountType::kBind:
      return "bind";
    case MountType::kCache:
      return "cache";
    case MountType::kTmpfs:
      return "tmpfs";
    case MountType::kSecret:
      return "secret";
    case MountType::kSsh:
      return "ssh";
  }
  return "?";
}
std::string_view cacheSharingName(CacheSharing s) {
  switch (s) {
    case CacheSharing::kShared:
      return "shared";
    case CacheSharing::kPrivate:
      return "private";
    case CacheSharing::kLocked:
      return "locked";
  }
  return "?";
}
std::string_view networkModeName(NetworkMode n) {
  switch (n) {
    case NetworkMode::kDefault:
      return "default";
    case NetworkMode::kNone:
      return "none";
    case NetworkMode::kHost:
      return "host";
  }
  return "?";
}
std::string_view securityModeName(SecurityMode s) {
  switch (s) {
    case SecurityMode::kSandbox:
      return "sandbox";
    case SecurityMode::kInsecure:
      return "insecure";
  }
  return "?";
}

Result<int64_t> parseGoDuration(std::string_view s) {
  std::string orig(s);
  auto bad = [&]() {
    return invalidArgument("invalid duration \"" + orig + "\" (e.g. 30s, 1m30s, 500ms)");
  };
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return int64_t{0};
  if (s.empty()) return bad();
  long double total = 0;
  while (!s.empty()) {
    std::size_t i = 0;
    long double value = 0;
    bool digits = false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      value = value * 10 + (s[i] - '0');
      ++i;
      digits = true;
    }
    if (i < s.size() && s[i] == '.') {
      ++i;
      long double scale = 0.1L;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        value += (s[i] - '0') * scale;
        scale /= 10;
        ++i;
        digits = true;
      }
    }
    if (!digits) return bad();
    std::size_t u = i;
    while (u < s.size() && !((s[u] >= '0' && s[u] <= '9') || s[u] == '.'))
      ++u;
    std::string_view unit = s.substr(i, u - i);
    long double mult = 0;
    if (unit == "ns") {
      mult = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
      mult = 1e3L;
    } else if (unit == "ms") {
      mult = 1e6L;
    } else if (unit == "s") {
      mult = 1e9L;
    } else if (unit == "m") {
      mult = 60e9L;
    } else if (unit == "h") {
      mult = 3600e9L;
    } else {
      return bad();
    }
    total += value * mult;
    if (total > 9.2e18L) return invalidArgument("duration \"" + orig + "\" is too large");
    s.remove_prefix(u);
  }
  auto ns = static_cast<int64_t>(total);
  return negative ? -ns : ns;
}

Result<std::string> expandInlineFile(const InlineFile& file, const EnvMap& env) {
  if (!file.expand) return file.data;
  ShellLexerOptions options;
  options.skip_process_quotes = true;
  return ShellLexer('\\', options).processWord(file.data, env);
}

Result<Command> parseCommand(const Node& node) {
  return parseCommandImpl(node, 0);
}

Result<Dockerfile> parseInstructions(const Ast& ast) {
  Dockerfile df;
  df.directives = ast.directives;
  df.escape = ast.escape;
  for (const Node& node : ast.children) {
    if (node.command() == "from") {
      CAIRN_ASSIGN_OR_RETURN(Stage stage, parseFrom(node));
      if (!stage.name.empty()) {
        for (const Stage& s : df.stages) {
          if (s.name == stage.name) {
            return Where{node}.error("duplicate stage name \"" + stage.name +
                                     "\" (first used on line " + std::to_string(s.start_line) +
                                     ")");
          }
        }
      }
      df.stages.push_back(std::move(stage));
      continue;
    }
    CAIRN_ASSIGN_OR_RETURN(Command cmd, parseCommand(node));
    if (df.stages.empty()) {
      if (auto* arg = std::get_if<ArgCommand>(&cmd.cmd)) {
        for (auto& a : arg->args)
          df.meta_args.push_back(std::move(a));
        continue;
      }
      return Where{node}.error(cmd.name +
                               " comes before any FROM: only ARG may precede the first FROM");
    }
    df.stages.back().commands.push_back(std::move(cmd));
  }
  if (df.stages.empty()) {
    return invalidArgument(
        "line " + std::to_string(ast.end_line) +
        ": the Dockerfile has no FROM instruction, so there is no stage to build");
  }
  return df;
}

Result<Dockerfile> parseDockerfileInstructions(std::string_view text, const ParseLimits& limits) {
  CAIRN_ASSIGN_OR_RETURN(Ast ast, parseDockerfile(text, limits));
  return parseInstructions(ast);
}

std::string describeCommand(const Command& command) {
  std::string out = command.name;
  std::visit(
      [&](const auto& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, RunCommand>) {
          out += " " + describeLine(c.cmd);
          for (const RunMount& m : c.mounts) {
            out += " mount(type=" + std::string(mountTypeName(m.type));
            if (!m.from.empty()) out += " from=" + goQuote(m.from);
            if (!m.source.empty()) out += " source=" + goQuote(m.source);
            if (!m.target.empty()) out += " target=" + goQuote(m.target);
            if (!m.cache_id.empty()) out += " id=" + goQuote(m.cache_id);
            if (m.type == MountType::kCache)
              out += " sharing=" + std::string(cacheSharingName(m.sharing));
            out += m.read_only ? " ro" : " rw";
            if (m.required) out += " required";
            if (m.mode) {
              char buf[16];
              std::snprintf(buf, sizeof buf, "%o", *m.mode);
              out += std::string(" mode=0") + buf;
            }
            if (m.uid) out += " uid=" + std::to_string(*m.uid);
            if (m.gid) out += " gid=" + std::to_string(*m.gid);
            if (m.size_bytes) out += " size=" + std::to_string(*m.size_bytes);
            if (!m.env.empty()) out += " env=" + goQuote(m.env);
            out += ")";
          }
          if (c.network != NetworkMode::kDefault)
            out += " network=" + std::string(networkModeName(c.network));
          if (c.security != SecurityMode::kSandbox)
            out += " security=" + std::string(securityModeName(c.security));
        } else if constexpr (std::is_same_v<T, CopyCommand>) {
          out += " " + quoteList(c.sources);
          for (const InlineFile& f : c.source_contents) {
            out += " heredoc(" + goQuote(f.name) + (f.expand ? "" : " noexpand") +
                   ")=" + goQuote(f.data);
          }
          out += " -> " + goQuote(c.dest);
          if (!c.from.empty()) out += " from=" + goQuote(c.from);
          if (!c.chown.empty()) out += " chown=" + goQuote(c.chown);
          if (!c.chmod.empty()) out += " chmod=" + goQuote(c.chmod);
          if (c.link) out += " link";
          if (c.parents) out += " parents";
          for (const auto& e : c.excludes)
            out += " exclude=" + goQuote(e);
          if (!c.checksum.empty()) out += " checksum=" + goQuote(c.checksum);
          if (c.keep_git_dir) out += " keep-git-dir";
          if (c.unpack) out += std::string(" unpack=") + (*c.unpack ? "true" : "false");
        } else if constexpr (std::is_same_v<T, EnvCommand> || std::is_same_v<T, LabelCommand>) {
          const auto& kvs = [&]() -> const std::vector<KeyValue>& {
            if constexpr (std::is_same_v<T, EnvCommand>) {
              return c.env;
            } else {
              return c.labels;
            }
          }();
          for (const KeyValue& kv : kvs)
            out += " " + goQuote(kv.key) + "=" + goQuote(kv.value);
        } else if constexpr (std::is_same_v<T, ArgCommand>) {
          for (const ArgDefinition& a : c.args) {
            out += " " + goQuote(a.key);
            if (a.value) out += "=" + goQuote(*a.value);
          }
        } else if constexpr (std::is_same_v<T, WorkdirCommand>) {
          out += " " + goQuote(c.path);
        } else if constexpr (std::is_same_v<T, UserCommand>) {
          out += " " + goQuote(c.user);
        } else if constexpr (std::is_same_v<T, ExposeCommand>) {
          out += " " + quoteList(c.ports);
        } else if constexpr (std::is_same_v<T, VolumeCommand>) {
          out += " " + quoteList(c.volumes);
        } else if constexpr (std::is_same_v<T, EntrypointCommand> ||
                             std::is_same_v<T, CmdCommand>) {
          out += " " + describeLine(c.cmd);
        } else if constexpr (std::is_same_v<T, ShellCommand>) {
          out += " " + quoteList(c.shell);
        } else if constexpr (std::is_same_v<T, StopSignalCommand>) {
          out += " " + goQuote(c.signal);
        } else if constexpr (std::is_same_v<T, MaintainerCommand>) {
          out += " " + goQuote(c.maintainer);
        } else if constexpr (std::is_same_v<T, HealthcheckCommand>) {
          out += " " + quoteList(c.test);
          if (c.interval_ns) out += " interval=" + durationString(c.interval_ns);
          if (c.timeout_ns) out += " timeout=" + durationString(c.timeout_ns);
          if (c.start_period_ns) out += " start-period=" + durationString(c.start_period_ns);
          if (c.start_interval_ns) out += " start-interval=" + durationString(c.start_interval_ns);
          if (c.retries) out += " retries=" + std::to_string(c.retries);
        } else if constexpr (std::is_same_v<T, OnbuildCommand>) {
          out += " " + goQuote(c.expression);
        }
      },
      command.cmd);
  return out;
}

std::string dumpInstructions(const Dockerfile& df) {
  std::string out;
  for (const Directive& d : df.directives) {
    out += "directive " + d.name + "=" + goQuote(d.value) + "\n";
  }
  for (const ArgDefinition& a : df.meta_args) {
    out += "meta-arg " + goQuote(a.key);
    if (a.value) out += "=" + goQuote(*a.value);
    out += "\n";
  }
  for (std::size_t i = 0; i < df.stages.size(); ++i) {
    const Stage& s = df.stages[i];
    out += "stage " + std::to_string(i) + " line " + std::to_string(s.start_line) + ": from " +
           goQuote(s.base_name);
    if (!s.name.empty()) out += " as " + goQuote(s.name);
    if (!s.platform.empty()) out += " platform=" + goQuote(s.platform);
    out += "\n";
    for (const Command& c : s.commands) {
      out += "  line " + std::to_string(c.start_line);
      if (c.end_line != c.start_line) out += "-" + std::to_string(c.end_line);
      out += ": " + describeCommand(c) + "\n";
    }
  }
  return out;
}

}  // namespace cairn::dockerfile
