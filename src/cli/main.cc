// `cairn`: one binary, many subcommands (serve, snapshot, build, run, image, base, …). Each
// subcommand registers itself (see cairn/cli/command.h); main only orders and runs them.
#include <string>

#include "cairn/cli/command.h"
#include "cairn/common/log.h"

namespace {

// Builds the app with every command complete (`only` empty) or only `only` complete, parses and
// runs. Throws NeedEveryCommand (before any callback ran) when `only` was a wrong guess.
int runCairn(int argc, char** argv, const std::string& only) {
  CLI::App app{"cairn — a self-hostable sandbox snapshot service", "cairn"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "cairn 0.1.0");
  cairn::cli::GlobalOptions options;
  app.add_option("--data-dir", options.data_dir,
                 "Data directory (env CAIRN_DATA_DIR; default $XDG_DATA_HOME/cairn or "
                 "/var/lib/cairn for root)");
  app.add_option("--log-level", options.log_level, "trace|debug|info|warn|error|off")
      ->envname("CAIRN_LOG_LEVEL");
  app.parse_complete_callback([&] { cairn::initLogging(options.log_level); });
  cairn::cli::addCommands(app, options, only);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return cairn::cli::exitCode();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string only = cairn::cli::invokedCommand(argc, argv);
  if (!only.empty()) {
    try {
      return runCairn(argc, argv, only);
    } catch (const cairn::cli::NeedEveryCommand&) {
      // Fall through: nothing was printed and no callback ran.
    }
  }
  return runCairn(argc, argv, {});
}
