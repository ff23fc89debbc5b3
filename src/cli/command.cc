#include "cairn/cli/command.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string_view>

#include "cairn/common/status.h"

namespace cairn::cli {
namespace {
int g_exit_code = 0;

// A command that is only its name and description, standing in for one whose options were not
// built. CLI::App's protected constructor, given no parent, skips what add_subcommand would copy
// from the parent, above all the -h,--help flag, which costs more than all the rest (about
// 19k of a placeholder's 20k instructions). Nothing copied is read before parsing enters the
// command: `cairn --help` lists a command by name, description and group (the default here and
// in the parent), and names match case- and underscore-sensitively in both. Parsing into a
// placeholder throws NeedEveryCommand first thing, before any callback: invokedCommand read the
// line differently from CLI11, so main builds every command and parses again.
class Placeholder : public CLI::App {
 public:
  Placeholder(const char* name, const char* description) : CLI::App(description, name, nullptr) {
    preparse_callback([](std::size_t) { throw NeedEveryCommand{}; });
  }
};

}  // namespace

std::vector<CommandEntry>& commandRegistry() {
  static std::vector<CommandEntry> registry;
  return registry;
}

CommandRegistration::CommandRegistration(int order, const char* name, const char* description,
                                         CommandBuilder builder) {
  CommandEntry entry;
  entry.order = order;
  entry.name = name;
  entry.description = description;
  entry.builder = builder;
  commandRegistry().push_back(std::move(entry));
}

std::string invokedCommand(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    // main's options that take a value; CLI11 takes the next argument as the value whatever it
    // looks like (`--data-dir version version` is the data dir "version", then the command).
    if (arg == "--data-dir" || arg == "--log-level") {
      ++i;
      continue;
    }
    if (arg == "-h" || arg == "--help" || arg == "--version" || arg.starts_with("--data-dir=") ||
        arg.starts_with("--log-level=")) {
      continue;
    }
    // Anything else that starts with '-' (an unknown option, `--`, `-`) is read by rules this
    // scan does not repeat; so is an empty argument.
    if (arg.empty() || arg.front() == '-') return {};
    return std::string(arg);
  }
  return {};
}

void addCommands(CLI::App& app, GlobalOptions& options, const std::string& only) {
  auto& registry = commandRegistry();
  // Same-order commands keep their registration order, so `cairn --help` lists them as before.
  std::stable_sort(registry.begin(), registry.end(),
                   [](const CommandEntry& a, const CommandEntry& b) { return a.order < b.order; });
  for (const CommandEntry& entry : registry) {
    if (only.empty() || only == entry.name) {
      entry.builder(*app.add_subcommand(entry.name, entry.description), options);
    } else {
      app.add_subcommand(std::make_shared<Placeholder>(entry.name, entry.description));
    }
  }
}

void setExitCode(int code) {
  g_exit_code = code;
}
int exitCode() {
  return g_exit_code;
}

std::string resolvedDataDir(const GlobalOptions& options) {
  // Absolute, so that overlay mounts and runtime specs built from it never depend on the cwd.
  if (!options.data_dir.empty()) return std::filesystem::absolute(options.data_dir).string();
  if (const char* env = std::getenv("CAIRN_DATA_DIR"); env && *env) {
    return std::filesystem::absolute(env).string();
  }
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) {
    return std::string(xdg) + "/cairn";
  }
  if (::geteuid() == 0) return "/var/lib/cairn";
  if (const char* home = std::getenv("HOME"); home && *home) {
    return std::string(home) + "/.local/share/cairn";
  }
  return "/var/lib/cairn";
}

}  // namespace cairn::cli
