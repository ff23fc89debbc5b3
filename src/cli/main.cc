// `cairn`: one binary, many subcommands (serve, snapshot, build, run, image, base, …). Each
// subcommand registers itself (see cairn/cli/command.h); main only orders and runs them.
#include <algorithm>
#include <iostream>

#include "cairn/cli/command.h"
#include "cairn/common/log.h"

int main(int argc, char** argv) {
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

  auto& registry = cairn::cli::commandRegistry();
  std::stable_sort(registry.begin(), registry.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, registrar] : registry)
    registrar(app, options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return cairn::cli::exitCode();
}
