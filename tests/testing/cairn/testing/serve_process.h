// A real `cairn serve` as a child process, for tests that run the binary as a user does:
// `cairn --data-dir DATA serve --listen 127.0.0.1:0 ARGS…` with its output appended to a log
// file (a pipe nobody drains during a build could fill up and stall the server), its address read
// from the "listening on http://HOST:PORT" line and its API key from <data>/initial-api-key.
//
// The child gets none of the CAIRN_* settings of the test's environment (flags, not whatever the
// developer exported, decide how it runs) and dies with the test process (PR_SET_PDEATHSIG), so
// a crashed test leaves no server behind. Destruction stops it (SIGTERM, then SIGKILL after 60 s).
//
//   ASSERT_OK_AND_ASSIGN(auto serve, ServeProcess::start({.binary = CAIRN_BIN,
//                                                         .data_dir = tmp.path() / "data",
//                                                         .log_path = tmp.path() / "serve.log"}));
//   client.get(serve->apiUrl() + "/snapshots", serve->apiKey());
//   EXPECT_EQ(*serve->stop(), 0) << serve->output();
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/common/status.h"

namespace cairn::testing {

class ServeProcess {
 public:
  struct Options {
    std::filesystem::path binary = {};    //!< the `cairn` binary (the test's CAIRN_BIN)
    std::filesystem::path data_dir = {};  //!< --data-dir
    std::filesystem::path log_path =
        {};                              //!< stdout and stderr, appended (one file across restarts)
    std::vector<std::string> args = {};  //!< after `serve --listen 127.0.0.1:0`
  };

  //! Starts the server and waits (60 s at most, less if it exits) until it listens; recovery
  //! is done by then. The error carries what the server printed.
  static Result<std::unique_ptr<ServeProcess>> start(Options options) {
    auto serve = std::unique_ptr<ServeProcess>(new ServeProcess());
    CAIRN_RETURN_IF_ERROR(serve->launch(std::move(options)));
    return serve;
  }

  virtual ~ServeProcess() {
    if (pid_ > 0) kill(SIGTERM);
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  //! Sends `sig` and reaps the server (SIGKILL if it is still there 60 s later). Returns its
  //! exit status (128 + signal when a signal ended it), or -1 when it was not running.
  int kill(int sig) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    int status = 0;
    pid_t r = 0;
    while ((r = ::waitpid(pid_, &status, WNOHANG)) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stopped_in_time_ = r == pid_;
    if (!stopped_in_time_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  //! SIGTERM and the bounded wait of kill(). Returns the exit code; an error when the server
  //! was not running or needed the SIGKILL.
  Result<int> stop() {
    if (pid_ <= 0) return failedPrecondition("cairn serve is not running");
    int code = kill(SIGTERM);
    if (!stopped_in_time_)
      return deadlineExceeded("cairn serve did not stop within 60 s of SIGTERM");
    return code;
  }

  //! What this run printed so far (the log file from where it was when this run started).
  std::string output() const {
    Result<std::string> all = readFile(options_.log_path);
    if (!all.ok() || all->size() <= log_offset_) return "";
    return all->substr(log_offset_);
  }

  pid_t pid() const { return pid_; }
  std::uint16_t port() const { return port_; }
  //! "http://127.0.0.1:PORT"
  std::string baseUrl() const { return "http://" + host_port_; }
  std::string apiUrl() const { return baseUrl() + "/api"; }
  const std::string& apiKey() const { return api_key_; }
  const std::filesystem::path& dataDir() const { return options_.data_dir; }

 protected:
  ServeProcess() = default;

  //! start()'s work, for subclasses that add helpers (their own static start calls it).
  Status launch(Options options) {
    options_ = std::move(options);
    std::vector<std::string> argv_s = {options_.binary.string(),
                                       "--data-dir",
                                       options_.data_dir.string(),
                                       "serve",
                                       "--listen",
                                       "127.0.0.1:0"};
    argv_s.insert(argv_s.end(), options_.args.begin(), options_.args.end());
    const std::string& log = options_.log_path.string();
    UniqueFd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!out.valid()) return errnoStatus(errno, "open " + log);
    std::error_code ec;
    log_offset_ = std::filesystem::file_size(options_.log_path, ec);
    // Everything the child needs is made before fork: the test process may have threads (HTTP
    // clients, in-process registries), so the child may only call async-signal-safe functions.
    std::vector<char*> argv;
    for (auto& a : argv_s)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string_view entry(*e);
      bool drop = false;
      for (std::string_view name :
           {"CAIRN_LISTEN=", "CAIRN_PUBLIC_URL=", "CAIRN_CONFIG=", "CAIRN_DATA_DIR=",
            "CAIRN_MAX_SNAPSHOTS=", "CAIRN_MAX_CONCURRENT_BUILDS=", "CAIRN_ENTRYPOINT_CHECK=",
            "CAIRN_IO_THREADS=", "CAIRN_CONTEXT_TTL_DAYS=", "CAIRN_REGISTRY_CONFIG="}) {
        drop = drop || entry.substr(0, name.size()) == name;
      }
      if (!drop) envp.push_back(*e);
    }
    envp.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) return errnoStatus(errno, "fork");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      ::dup2(out.get(), 1);
      ::dup2(out.get(), 2);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    const std::string needle = "listening on http://";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (true) {
      std::string text = output();
      std::size_t at = text.find(needle);
      std::size_t eol = at == std::string::npos ? at : text.find('\n', at);
      if (eol != std::string::npos) {
        host_port_ = text.substr(at + needle.size(), eol - at - needle.size());
        std::size_t colon = host_port_.rfind(':');
        if (colon != std::string::npos) {
          port_ = static_cast<std::uint16_t>(std::atoi(host_port_.c_str() + colon + 1));
        }
        break;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return internalError("cairn serve exited before listening: " + text);
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return internalError("cairn serve did not print its address within 60 s: " + text);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (port_ == 0) return internalError("cairn serve printed no port: " + host_port_);
    CAIRN_ASSIGN_OR_RETURN(std::string key, readFile(options_.data_dir / "initial-api-key"));
    key = key.substr(0, key.find_first_of("\r\n"));
    if (key.empty()) return internalError("cairn serve wrote an empty initial-api-key");
    api_key_ = key;
    return okStatus();
  }

 private:
  Options options_;
  pid_t pid_ = -1;
  bool stopped_in_time_ = true;
  std::size_t log_offset_ = 0;
  std::string host_port_;
  std::uint16_t port_ = 0;
  std::string api_key_;
};

}  // namespace cairn::testing
