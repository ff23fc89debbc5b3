// A real `cairn serve` for SDK end-to-end tests: cairn::testing::ServeProcess (the built binary
// as a child process on 127.0.0.1:0 with a temp data directory; see serve_process.h) with what
// the SDK tests ask of it: a Daytona client with its key, its /metrics counters.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/common/status.h"
#include "cairn/sdk/daytona.h"
#include "cairn/sdk/errors.h"
#include "cairn/sdk/http_client.h"
#include "cairn/testing/serve_process.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::testing {

class CairnServe final : public ServeProcess {
 public:
  //! Starts `cairn --data-dir DATA serve --listen 127.0.0.1:0 ARGS…`, output to `log_path`.
  static Result<std::unique_ptr<CairnServe>> start(const std::filesystem::path& data_dir,
                                                   const std::filesystem::path& log_path,
                                                   const std::vector<std::string>& args = {}) {
    auto serve = std::unique_ptr<CairnServe>(new CairnServe());
    CAIRN_RETURN_IF_ERROR(serve->launch(
        {.binary = CAIRN_BIN, .data_dir = data_dir, .log_path = log_path, .args = args}));
    return serve;
  }

  //! A client with this server's key (or `key`), polling every 100 ms instead of 1 s.
  std::unique_ptr<Daytona> client(std::optional<std::string> key = std::nullopt) const {
    auto d = std::make_unique<Daytona>(
        DaytonaConfig{.apiKey = key.value_or(apiKey()), .apiUrl = apiUrl()});
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
};

//! For a test's TearDown: the server stops on SIGTERM within the bounded wait and exits 0.
inline void expectStopsCleanly(CairnServe& serve) {
  Result<int> code = serve.stop();
  ASSERT_OK(code.status());
  EXPECT_EQ(*code, 0) << serve.output();
}

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
