// Helpers for tests against real peers (docker-registry, skopeo, umoci, mmdebstrap, the cairn
// binary): running a command with a bounded timeout, and a docker-registry on 127.0.0.1 with
// a free port and temp storage that stops when the object goes away.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/common/status.h"

namespace cairn::registry::peer {

struct CommandResult {
  int exit_code = -1;  //!< -1: killed (timeout) or died of a signal
  std::string output;  //!< stdout and stderr
};

//! Runs argv (no shell), capturing stdout+stderr; kills it after `timeout`.
CommandResult run(const std::vector<std::string>& argv,
                  std::chrono::seconds timeout = std::chrono::seconds(120));

//! Whether `name` is on PATH.
bool haveTool(const std::string& name);

int freePort();

//! `docker-registry serve` with our own config: loopback only, temp storage, deletes on.
class DockerRegistry {
 public:
  static Result<std::unique_ptr<DockerRegistry>> start();
  ~DockerRegistry() { stop(); }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  DockerRegistry() = default;
  void stop();
  std::unique_ptr<TempDir> dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace cairn::registry::peer
