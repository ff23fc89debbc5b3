// `cairn version`: what this binary is.
#include "cairn/cli/command.h"

#include <iostream>

namespace {

void registerVersion(CLI::App& app, cairn::cli::GlobalOptions& options) {
  auto* cmd = app.add_subcommand("version", "Print the version and the data directory in use");
  cmd->callback([&options] {
    std::cout << "cairn 0.1.0\n"
              << "data dir: " << cairn::cli::resolvedDataDir(options) << "\n";
  });
}

CAIRN_REGISTER_COMMAND(1000, registerVersion);

}  // namespace
