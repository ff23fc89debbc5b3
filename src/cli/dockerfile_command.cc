// `cairn dockerfile check FILE`: parses a Dockerfile into stages and typed instructions and
// prints them, or prints the error (with its line and column) and exits 1.
#include <iostream>
#include <string>

#include "cairn/cli/command.h"
#include "cairn/common/fs.h"
#include "cairn/dockerfile/instructions.h"

namespace {

int checkDockerfile(const std::string& path) {
  auto text = cairn::readFile(path);
  if (!text.ok()) {
    std::cerr << "cairn: " << text.status().message() << "\n";
    return 1;
  }
  auto parsed = cairn::dockerfile::parseDockerfileInstructions(*text);
  if (!parsed.ok()) {
    std::cerr << path << ": " << parsed.status().message() << "\n";
    return 1;
  }
  std::cout << cairn::dockerfile::dumpInstructions(*parsed);
  return 0;
}

void registerDockerfile(CLI::App& command, cairn::cli::GlobalOptions& /*options*/) {
  auto* cmd = &command;
  cmd->require_subcommand(1);
  auto* check = cmd->add_subcommand(
      "check", "Parse a Dockerfile and print its stages and instructions (exit 1 on an error)");
  auto path = std::make_shared<std::string>();
  check->add_option("FILE", *path, "The Dockerfile")->required();
  check->callback([path] { cairn::cli::setExitCode(checkDockerfile(*path)); });
}

CAIRN_REGISTER_SUBCOMMAND(300, "dockerfile", "Work with Dockerfiles", registerDockerfile);

}  // namespace
