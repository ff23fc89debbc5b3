// Runs the `cairn` binary under test as a child process, the way a user's shell would, and
// collects its exit code, stdout and stderr.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace cairn::testing {

struct CairnRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string shellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

//! `program ARGS` with only `env` (plus PATH and HOME=`scratch`) in its environment and
//! `stdin_text` on its stdin. `scratch` is a directory the call may write its temporary files to.
inline CairnRun runProgram(const std::string& program, const std::filesystem::path& scratch,
                           const std::vector<std::string>& args,
                           const std::map<std::string, std::string>& env = {},
                           const std::string& stdin_text = {}) {
  const auto err_path = scratch / "cairn.stderr";
  const auto in_path = scratch / "cairn.stdin";
  std::ofstream(in_path, std::ios::binary) << stdin_text;
  std::string cmd =
      "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=" + shellQuote(scratch.string());
  for (const auto& [k, v] : env)
    cmd += " " + k + "=" + shellQuote(v);
  cmd += " " + shellQuote(program);
  for (const auto& a : args)
    cmd += " " + shellQuote(a);
  cmd += " 2>" + shellQuote(err_path.string()) + " <" + shellQuote(in_path.string());
  CairnRun r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    r.out.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.err = slurp(err_path);
  return r;
}

#ifdef CAIRN_BINARY
//! runProgram for the `cairn` binary under test.
inline CairnRun runCairn(const std::filesystem::path& scratch, const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env = {},
                         const std::string& stdin_text = {}) {
  return runProgram(CAIRN_BINARY, scratch, args, env, stdin_text);
}
#endif

}  // namespace cairn::testing
