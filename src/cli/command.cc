#include "cairn/cli/command.h"

#include <unistd.h>

#include <cstdlib>

#include "cairn/common/status.h"

namespace cairn::cli {
namespace {
int g_exit_code = 0;
}

std::vector<std::pair<int, CommandRegistrar>>& commandRegistry() {
  static std::vector<std::pair<int, CommandRegistrar>> registry;
  return registry;
}

CommandRegistration::CommandRegistration(int order, CommandRegistrar registrar) {
  commandRegistry().emplace_back(order, std::move(registrar));
}

void setExitCode(int code) {
  g_exit_code = code;
}
int exitCode() {
  return g_exit_code;
}

std::string resolvedDataDir(const GlobalOptions& options) {
  if (!options.data_dir.empty()) return options.data_dir;
  if (const char* env = std::getenv("CAIRN_DATA_DIR"); env && *env) return env;
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
