// How `cairn` subcommands plug into the one binary: each subcommand lives in its own file under
// src/cli/ and registers itself with CAIRN_REGISTER_SUBCOMMAND, so adding a command touches no
// shared file. A command parses flags
// with CLI11, calls a library, prints, and returns an exit code: 0 ok, 1 failed, 2 usage.
//
// Start-up cost: building a command's CLI11 options (App, Option, Validator objects) costs more
// than running `cairn version` itself, so `cairn` builds the options of the one command a
// command line invokes only; every other command is a name and a description, which is all
// `cairn --help` shows. A command line main cannot read with certainty gets every command built,
// as before. Register new commands with CAIRN_REGISTER_SUBCOMMAND:
//
//   void buildVersion(CLI::App& cmd, cairn::cli::GlobalOptions& options) {
//     cmd.callback([&options] { ... });
//   }
//   CAIRN_REGISTER_SUBCOMMAND(1000, "version", "Print the version", buildVersion);
#pragma once

#include <CLI/CLI.hpp>

#include "cairn/common/status.h"

#include <string>
#include <utility>
#include <vector>

namespace cairn::cli {

//! Flags every subcommand sees.
struct GlobalOptions {
  std::string data_dir;  //!< --data-dir / CAIRN_DATA_DIR; resolved by resolvedDataDir()
  std::string log_level = "warn";
};

//! `--data-dir`, else $CAIRN_DATA_DIR, else $XDG_DATA_HOME/cairn, else /var/lib/cairn for root,
//! else ~/.local/share/cairn.
std::string resolvedDataDir(const GlobalOptions& options);

//! Sets the exit code a subcommand's callback wants `cairn` to return.
void setExitCode(int code);
int exitCode();

//! Fills in `cmd`, a subcommand `cairn` already created with its name and description: options,
//! sub-subcommands, callbacks. Run only when the command line may invoke that subcommand.
using CommandBuilder = void (*)(CLI::App& cmd, GlobalOptions& options);

//! One registered subcommand.
struct CommandEntry {
  int order = 0;
  const char* name = nullptr;
  const char* description = nullptr;
  CommandBuilder builder = nullptr;
};

struct CommandRegistration {
  CommandRegistration(int order, const char* name, const char* description, CommandBuilder builder);
};

//! Every registration, in static-initialization order (main sorts it by `order`, stably).
std::vector<CommandEntry>& commandRegistry();

//! The name of the subcommand `argv` invokes, read the way CLI11 will read it: the first
//! argument that is neither one of `cairn`'s own options (--data-dir, --log-level, -h, --help,
//! --version) nor such an option's value. Empty when there is none, or when the line holds
//! anything this scan does not know for sure how CLI11 reads (another option before the
//! command, `--`, a lone `-`): then every command must be built.
std::string invokedCommand(int argc, const char* const* argv);

//! Thrown out of CLI::App::parse when the command line reached a subcommand whose options were
//! not built: main builds them all and parses again.
struct NeedEveryCommand {};

//! Adds every registered subcommand to `app` in order: all of them complete when `only` is
//! empty, else only the one named `only` complete and the others as placeholders (name and
//! description; parsing into one throws NeedEveryCommand).
void addCommands(CLI::App& app, GlobalOptions& options, const std::string& only);

}  // namespace cairn::cli

#define CAIRN_REGISTER_SUBCOMMAND(order, name, description, builder)                \
  static ::cairn::cli::CommandRegistration CAIRN_CONCAT_(cairn_cli_reg_, __LINE__)( \
      order, name, description, builder)
