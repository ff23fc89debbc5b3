// The default network of a container: its own network namespace with outbound access through
// slirp4netns, which runs in user space on the host side and is started with
// --disable-host-loopback, so 127.0.0.1 of the host (the Cairn API, a developer's database) is
// unreachable from a build step. Addresses are slirp's defaults: 10.0.2.100/24 for the
// container, gateway 10.0.2.2, DNS 10.0.2.3.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "cairn/common/status.h"
#include "cairn/runtime/process.h"

namespace cairn::runtime {

//! A network namespace held open by a small child process (so it exists before the container
//! and slirp4netns can attach to it), with slirp4netns serving it. Destroying it stops both.
class SlirpNetwork {
 public:
  //! `slirp_program`: name or path of slirp4netns; its own messages go to `log_file`.
  static Result<std::unique_ptr<SlirpNetwork>> create(const std::string& slirp_program,
                                                      const std::filesystem::path& log_file);
  ~SlirpNetwork();
  SlirpNetwork(const SlirpNetwork&) = delete;
  SlirpNetwork& operator=(const SlirpNetwork&) = delete;

  //! /proc/<pid>/ns/net of the holder: the path for the OCI spec's network namespace.
  std::string netnsPath() const;

 private:
  SlirpNetwork() = default;
  pid_t holder_pid_ = -1;
  UniqueFd holder_release_;  //!< closing it lets the holder exit
  UniqueFd slirp_exit_;      //!< closing it makes slirp4netns exit (--exit-fd)
  std::unique_ptr<Subprocess> slirp_;
};

}  // namespace cairn::runtime
