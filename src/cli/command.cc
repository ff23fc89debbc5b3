#include "cairn/cli/command.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

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
