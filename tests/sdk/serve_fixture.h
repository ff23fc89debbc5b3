// A real `cairn serve` for SDK end-to-end tests: the built binary as a child process on
// 127.0.0.1:0 with a temp data directory, its URL read from the "listening on http://HOST:PORT"
// line and its API key from <data-dir>/initial-api-key. The child dies with the test process
// (PR_SET_PDEATHSIG) so a crashed test leaves no server behind.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/common/status.h"
#include "cairn/sdk/daytona.h"
#include "cairn/sdk/errors.h"
#include "cairn/sdk/http_client.h"

namespace cairn::testing {

class CairnServe {
 public:
  //! Starts `cairn --data-dir DATA serve --listen 127.0.0.1:0 ARGS…`, output to `log_path`.
  static Result<std::unique_ptr<CairnServe>> start(const std::filesystem::path& data_dir,
                                                   const std::filesystem::path& log_path,
                                                   const std::vector<std::string>& args = {}) {
    auto serve = std::unique_ptr<CairnServe>(new CairnServe());
    serve->data_dir_ = data_dir;
    serve->log_path_ = log_path;
    std::vector<std::string> argv_s = {CAIRN_BIN, "--data-dir", data_dir.string(),
                                       "serve",   "--listen",   "127.0.0.1:0"};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!log.valid()) return errnoStatus(errno, "open " + log_path.string());
    // Everything the child needs is prepared before fork: the test process has threads (HTTP
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
            "CAIRN_MAX_SNAPSHOTS=", "CAIRN_MAX_CONCURRENT_BUILDS="}) {
        drop = drop || entry.substr(0, name.size()) == name;
      }
      if (!drop) envp.push_back(*e);
    }
    envp.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return errnoStatus(errno, "fork");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      ::dup2(log.get(), 1);
      ::dup2(log.get(), 2);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    serve->pid_ = pid;
    // Bounded wait for the address line (a cold start takes well under a second).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (true) {
      std::string out = serve->output();
      std::size_t at = out.find("listening on http://");
      if (at != std::string::npos && out.find('\n', at) != std::string::npos) {
        std::size_t end = out.find('\n', at);
        serve->host_port_ = out.substr(at + 20, end - at - 20);
        break;
      }
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        serve->pid_ = -1;
        return internalError("cairn serve exited before listening: " + out);
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return internalError("cairn serve did not print its address within 60 s: " + out);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CAIRN_ASSIGN_OR_RETURN(std::string key, readFile(data_dir / "initial-api-key"));
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r'))
      key.pop_back();
    if (key.empty()) return internalError("initial-api-key is empty");
    serve->api_key_ = key;
    return serve;
  }

  ~CairnServe() {
    if (pid_ > 0) {
      Result<int> r = stop();
      (void)r;
    }
  }
  CairnServe(const CairnServe&) = delete;
  CairnServe& operator=(const CairnServe&) = delete;

  //! SIGTERM, then a bounded wait (SIGKILL after 60 s). Returns the exit code.
  Result<int> stop() {
    if (pid_ <= 0) return failedPrecondition("not running");
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) != pid_) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return deadlineExceeded("cairn serve did not stop within 60 s of SIGTERM");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  //! Everything the server printed so far.
  std::string output() const {
    Result<std::string> r = readFile(log_path_);
    return r.ok() ? *r : std::string();
  }
  std::string baseUrl() const { return "http://" + host_port_; }
  std::string apiUrl() const { return baseUrl() + "/api"; }
  const std::string& apiKey() const { return api_key_; }
  const std::filesystem::path& dataDir() const { return data_dir_; }

  //! A client with this server's key (or `key`), polling every 100 ms instead of 1 s.
  std::unique_ptr<Daytona> client(std::optional<std::string> key = std::nullopt) const {
    auto d = std::make_unique<Daytona>(
        DaytonaConfig{.apiKey = key.value_or(api_key_), .apiUrl = apiUrl()});
    d->snapshot.setPollInterval(std::chrono::milliseconds(100));
    return d;
  }

  //! The /metrics text.
  Result<std::string> metrics() const {
    sdk::HttpClient http;
    CAIRN_ASSIGN_OR_RETURN(sdk::HttpResponse r, http.send({.method = "GET",
                                                           .url = baseUrl() + "/metrics",
                                                           .timeout = std::chrono::seconds(10)}));
    if (r.status != 200) return internalError("GET /metrics: " + std::to_string(r.status));
    return r.body;
  }

  //! The value of the counter line that starts with `series` ("name{labels}"); 0 if absent.
  Result<double> counter(const std::string& series) const {
    CAIRN_ASSIGN_OR_RETURN(std::string text, metrics());
    std::size_t at = 0;
    while ((at = text.find(series, at)) != std::string::npos) {
      if (at == 0 || text[at - 1] == '\n') {
        std::size_t value_at = at + series.size();
        if (value_at < text.size() && text[value_at] == ' ') {
          return std::strtod(text.c_str() + value_at + 1, nullptr);
        }
      }
      at += series.size();
    }
    return 0.0;
  }

 private:
  CairnServe() = default;
  pid_t pid_ = -1;
  std::filesystem::path data_dir_;
  std::filesystem::path log_path_;
  std::string host_port_;
  std::string api_key_;
};

//! Runs `cairn --data-dir DATA ARGS…` to completion and returns its stdout (stderr is dropped);
//! a non-zero exit is an error. For `cairn admin …` beside a running server (SQLite in WAL mode
//! takes both). Arguments are passed through the shell: keep them free of quotes and spaces.
inline Result<std::string> runCairn(const std::filesystem::path& data_dir,
                                    const std::vector<std::string>& args) {
  std::string command = std::string(CAIRN_BIN) + " --data-dir " + data_dir.string();
  for (const auto& a : args)
    command += " " + a;
  command += " 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return errnoStatus(errno, "popen " + command);
  std::string out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0)
    out.append(buf, n);
  int status = ::pclose(pipe);
  if (status != 0) {
    return internalError(command + " exited with status " + std::to_string(status) + ": " + out);
  }
  return out;
}

//! Collects onLogs lines (calls may come from the SDK's log-stream thread).
class LogCollector {
 public:
  CreateOptions options(double timeout = 0) {
    return {.onLogs =
                [this](std::string_view line) {
                  std::lock_guard lock(mu_);
                  lines_.emplace_back(line);
                },
            .timeout = timeout};
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(mu_);
    return lines_;
  }
  //! All lines joined with '\n' (log chunks may hold several lines each).
  std::string text() const {
    std::string out;
    for (const auto& l : lines())
      out += l + "\n";
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

}  // namespace cairn::testing
