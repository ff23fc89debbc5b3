// The typed instruction layer: the IR the build engine consumes (BuildKit's `instructions`).
//
// parseInstructions() turns a parsed Dockerfile (parser.h) into build stages holding typed
// commands. Every flag is validated here — an unknown flag, a bad value, a missing argument or
// an unknown instruction is an InvalidArgument naming the line (and the column where the
// flag or keyword starts), e.g. "line 7, column 1: unknown instruction: CPY (did you mean
// COPY?)". Variable references are kept as written: the build engine expands them with
// ShellLexer at the point the stage's environment is known.
//
//   ASSIGN_OR_RETURN(Dockerfile df, parseDockerfileInstructions(text));
//   for (const Stage& s : df.stages) { … s.base_name … for (const Command& c : s.commands) … }
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/dockerfile/parser.h"
#include "cairn/dockerfile/shell_lexer.h"

namespace cairn::dockerfile {

struct KeyValue {
  std::string key;
  std::string value;
};

//! `ARG name[=default]`.
struct ArgDefinition {
  std::string key;
  std::optional<std::string> value;
};

//! A file given inline by a heredoc (RUN <<EOF, COPY <<EOF /dest).
struct InlineFile {
  std::string name;    //!< the heredoc delimiter (COPY: the file name)
  std::string data;    //!< content, with leading tabs already removed for `<<-`
  bool expand = true;  //!< variables in `data` are expanded (delimiter was not quoted)
  bool chomp = false;
};

//! A command line that is either exec form (JSON) or shell form (run through SHELL).
struct CommandLine {
  std::vector<std::string> args;  //!< exec: argv; shell: exactly one string
  bool prepend_shell = false;     //!< shell form
  std::vector<InlineFile> files;  //!< RUN heredocs
};

enum class MountType { kBind, kCache, kTmpfs, kSecret, kSsh };
enum class CacheSharing { kShared, kPrivate, kLocked };
enum class NetworkMode { kDefault, kNone, kHost };
enum class SecurityMode { kSandbox, kInsecure };

std::string_view mountTypeName(MountType t);
std::string_view cacheSharingName(CacheSharing s);
std::string_view networkModeName(NetworkMode n);
std::string_view securityModeName(SecurityMode s);

//! `RUN --mount=type=…,target=…` (BuildKit's runmount).
struct RunMount {
  MountType type = MountType::kBind;
  std::string from;    //!< stage name/index or image (bind, cache)
  std::string source;  //!< path inside `from` (or the context)
  std::string target;
  bool read_only = true;  //!< bind: default read-only; cache/tmpfs: read-write
  std::string cache_id;   //!< cache: id (default: target); secret/ssh: id
  CacheSharing sharing = CacheSharing::kShared;
  bool required = false;         //!< secret/ssh
  std::optional<uint32_t> mode;  //!< octal
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint64_t> size_bytes;  //!< tmpfs
  std::string env;                     //!< secret: expose as this environment variable
};

struct RunCommand {
  CommandLine cmd;
  std::vector<RunMount> mounts;
  NetworkMode network = NetworkMode::kDefault;
  SecurityMode security = SecurityMode::kSandbox;
};

//! COPY and ADD share this shape; the ADD-only fields stay empty for COPY.
struct CopyCommand {
  bool is_add = false;
  std::vector<std::string> sources;         //!< context paths, URLs (ADD), or globs
  std::vector<InlineFile> source_contents;  //!< heredoc sources, in order
  std::string dest;
  std::string from;   //!< --from=stage|index|image (COPY only)
  std::string chown;  //!< --chown=user[:group]
  std::string chmod;  //!< --chmod=0755 or symbolic
  bool link = false;
  bool parents = false;
  std::vector<std::string> excludes;
  std::string checksum;        //!< ADD --checksum=sha256:…
  bool keep_git_dir = false;   //!< ADD --keep-git-dir
  std::optional<bool> unpack;  //!< ADD --unpack
  bool json = false;
};

struct EnvCommand {
  std::vector<KeyValue> env;
};
struct LabelCommand {
  std::vector<KeyValue> labels;
};
struct ArgCommand {
  std::vector<ArgDefinition> args;
};
struct WorkdirCommand {
  std::string path;
};
struct UserCommand {
  std::string user;
};
struct ExposeCommand {
  std::vector<std::string> ports;
};
struct VolumeCommand {
  std::vector<std::string> volumes;
};
struct EntrypointCommand {
  CommandLine cmd;
};
struct CmdCommand {
  CommandLine cmd;
};
struct ShellCommand {
  std::vector<std::string> shell;
};
struct StopSignalCommand {
  std::string signal;
};
struct MaintainerCommand {
  std::string maintainer;
};
//! Durations in nanoseconds (0 = not set, use the runtime's default).
struct HealthcheckCommand {
  std::vector<std::string> test;  //!< {"NONE"}, {"CMD", argv…} or {"CMD-SHELL", line}
  int64_t interval_ns = 0;
  int64_t timeout_ns = 0;
  int64_t start_period_ns = 0;
  int64_t start_interval_ns = 0;
  int retries = 0;
};
struct OnbuildCommand {
  std::string expression;  //!< the trigger instruction as written (e.g. "RUN make")
};

using CommandVariant = std::variant<RunCommand, CopyCommand, EnvCommand, LabelCommand, ArgCommand,
                                    WorkdirCommand, UserCommand, ExposeCommand, VolumeCommand,
                                    EntrypointCommand, CmdCommand, ShellCommand, StopSignalCommand,
                                    MaintainerCommand, HealthcheckCommand, OnbuildCommand>;

struct Command {
  std::string name;  //!< upper-case keyword: "RUN", "COPY", …
  std::string original;
  int start_line = 0;
  int end_line = 0;
  CommandVariant cmd;
};

struct Stage {
  std::string name;       //!< lower-cased `AS name`, empty when unnamed
  std::string base_name;  //!< the image (or earlier stage) it starts from, as written
  std::string platform;   //!< --platform, as written
  std::string original;
  int start_line = 0;
  std::vector<Command> commands;
};

struct Dockerfile {
  std::vector<ArgDefinition> meta_args;  //!< ARGs before the first FROM
  std::vector<Stage> stages;
  std::vector<Directive> directives;
  char escape = '\\';
};

//! AST → stages and typed commands.
Result<Dockerfile> parseInstructions(const Ast& ast);
//! Text → stages and typed commands (parseDockerfile + parseInstructions).
Result<Dockerfile> parseDockerfileInstructions(std::string_view text,
                                               const ParseLimits& limits = {});

//! One typed command from one AST node (FROM is not a command; see parseInstructions).
Result<Command> parseCommand(const Node& node);

//! Go's time.ParseDuration, in nanoseconds.
Result<int64_t> parseGoDuration(std::string_view s);

//! A heredoc file's content as the build uses it: unchanged when the delimiter was quoted,
//! otherwise with variables expanded the way BuildKit does for heredocs — a lexer with escape
//! `\` that leaves quotes alone (a heredoc body is a script, its quotes are not Dockerfile
//! quotes), while `\` still escapes the next character.
Result<std::string> expandInlineFile(const InlineFile& file, const EnvMap& env);

//! A stable, human-readable dump of the IR (used by golden tests and `cairn dockerfile
//! check`): one line per stage and per command.
std::string dumpInstructions(const Dockerfile& dockerfile);
std::string describeCommand(const Command& command);

}  // namespace cairn::dockerfile
