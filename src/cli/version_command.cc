// `cairn version`: what this binary is.
#include "cairn/cli/command.h"

#include <iostream>

namespace {

void registerVersion(CLI::App& command, cairn::cli::GlobalOptions& options) {
  auto* cmd = &command;
  cmd->callback([&options] {
    std::cout << "cairn 0.1.0\n"
              << "data dir: " << cairn::cli::resolvedDataDir(options) << "\n";
  });
}

CAIRN_REGISTER_SUBCOMMAND(1000, "version", "Print the version and the data directory in use",
                          registerVersion);

}  // namespace
