// How `cairn` subcommands plug into the one binary: each subcommand lives in its own file under
// src/cli/ and registers itself with CAIRN_REGISTER_COMMAND, so adding a command touches no
// shared file. A command parses flags with CLI11, calls a library, prints, and returns an exit
// code: 0 ok, 1 failed, 2 usage.
#pragma once

#include <CLI/CLI.hpp>

#include "cairn/common/status.h"

#include <functional>
#include <string>
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

using CommandRegistrar = std::function<void(CLI::App& app, GlobalOptions& options)>;

struct CommandRegistration {
  CommandRegistration(int order, CommandRegistrar registrar);
};

std::vector<std::pair<int, CommandRegistrar>>& commandRegistry();

}  // namespace cairn::cli

#define CAIRN_REGISTER_COMMAND(order, fn) \
  static ::cairn::cli::CommandRegistration CAIRN_CONCAT_(cairn_cli_reg_, __LINE__)(order, fn)
