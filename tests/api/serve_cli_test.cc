// `cairn serve` and `cairn admin` as a user runs them: the binary on a temp data dir, port 0.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/testing/status_matchers.h"
#include "test_client.h"

namespace cairn::api {
namespace {

using ::testing::HasSubstr;
using testing::TestClient;

//! A child process with its stdout+stderr on a pipe.
struct Child {
  pid_t pid = -1;
  int out = -1;
  std::string output;

  //! Reads until `needle` appears (true) or EOF/timeout (false).
  bool readUntil(const std::string& needle,
                 std::chrono::seconds timeout = std::chrono::seconds(60)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (output.find(needle) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{out, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[4096];
      ssize_t n = ::read(out, buf, sizeof buf);
      if (n <= 0) return false;
      output.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  //! Exit status, after reading the rest of the output.
  int wait() {
    readUntil("\x01never\x01", std::chrono::seconds(30));
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
};

Child spawn(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  Child c;
  c.pid = ::fork();
  if (c.pid == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::unsetenv("CAIRN_LISTEN");
    ::unsetenv("CAIRN_PUBLIC_URL");
    ::unsetenv("CAIRN_CONFIG");
    ::unsetenv("CAIRN_DATA_DIR");
    for (const auto& e : env)
      ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv;
    std::string bin = CAIRN_BIN;
    argv.push_back(bin.data());
    for (const auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  c.out = fds[0];
  return c;
}

std::uint16_t portOf(const std::string& output) {
  std::size_t at = output.find("listening on http://");
  if (at == std::string::npos) return 0;
  std::size_t colon = output.find(':', at + 20);
  return static_cast<std::uint16_t>(std::atoi(output.c_str() + colon + 1));
}

std::pair<int, std::string> httpGet(std::uint16_t port, const std::string& target,
                                    const std::string& key) {
  TestClient client(port);
  auto r = client.roundTrip("GET " + target + " HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer " +
                            key + "\r\n\r\n");
  if (!r) return {-1, ""};
  return {static_cast<int>(r->result_int()), r->body()};
}

class ServeCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(TempDir d, TempDir::create("cairn-serve-cli"));
    dir_.emplace(std::move(d));
    data_ = (dir_->path() / "data").string();
  }
  std::optional<TempDir> dir_;
  std::string data_;
};

TEST_F(ServeCliTest, FirstStartWritesTheInitialKeyAndSigtermStopsCleanly) {
  Child c = spawn({"--data-dir", data_, "serve", "--listen", "127.0.0.1:0"});
  ASSERT_TRUE(c.readUntil("listening on http://127.0.0.1:")) << c.output;
  ASSERT_TRUE(c.readUntil("\n", std::chrono::seconds(5)));
  std::uint16_t port = portOf(c.output);
  ASSERT_NE(port, 0) << c.output;

  std::string key_file = data_ + "/initial-api-key";
  struct stat st {};
  ASSERT_EQ(::stat(key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_OK_AND_ASSIGN(std::string content, readFile(key_file));
  ASSERT_FALSE(content.empty());
  EXPECT_EQ(content.back(), '\n');
  std::string key = content.substr(0, content.size() - 1);
  EXPECT_EQ(key.find('\n'), std::string::npos);
  EXPECT_THAT(c.output, HasSubstr(key));  // printed once

  auto [status, body] = httpGet(port, "/api/snapshots", key);
  EXPECT_EQ(status, 200) << body;
  EXPECT_EQ(httpGet(port, "/api/snapshots", "cairn_wrong").first, 401);
  EXPECT_EQ(httpGet(port, "/healthz", "").first, 200);
  auto [metrics_status, metrics] = httpGet(port, "/metrics", "");
  EXPECT_EQ(metrics_status, 200);
  EXPECT_THAT(metrics, HasSubstr("cairn_queue_depth"));
  EXPECT_THAT(metrics, HasSubstr("cairn_store_bytes"));
  EXPECT_THAT(
      metrics,
      HasSubstr(
          "cairn_http_requests_total{method=\"GET\",route=\"/api/snapshots\",status=\"200\"} 1"));

  ::kill(c.pid, SIGTERM);
  EXPECT_EQ(c.wait(), 0) << c.output;

  // Second start: no new key, the old one still works.
  Child again = spawn({"--data-dir", data_, "serve", "--listen", "127.0.0.1:0"});
  ASSERT_TRUE(again.readUntil("listening on http://")) << again.output;
  ASSERT_TRUE(again.readUntil("\n", std::chrono::seconds(5)));
  EXPECT_THAT(again.output, ::testing::Not(HasSubstr("initial API key")));
  EXPECT_EQ(httpGet(portOf(again.output), "/api/snapshots", key).first, 200);
  ::kill(again.pid, SIGTERM);
  EXPECT_EQ(again.wait(), 0) << again.output;
}

TEST_F(ServeCliTest, FlagsBeatEnvironmentBeatConfigFile) {
  std::string config = dir_->path() / "cairn.toml";
  ASSERT_OK(
      writeFileDurable(config, "listen = \"127.0.0.1:0\"\npublic_url = \"http://from-config\"\n"));
  auto storageUrl = [&](std::vector<std::string> args, std::vector<std::string> env) {
    Child c = spawn(args, env);
    EXPECT_TRUE(c.readUntil("listening on http://")) << c.output;
    EXPECT_TRUE(c.readUntil("\n", std::chrono::seconds(5)));
    Result<std::string> content = readFile(data_ + "/initial-api-key");
    std::string key = content.ok() ? content->substr(0, content->size() - 1) : "";
    auto [status, body] = httpGet(portOf(c.output), "/api/object-storage/push-access", key);
    ::kill(c.pid, SIGTERM);
    EXPECT_EQ(c.wait(), 0) << c.output;
    EXPECT_EQ(status, 200) << body;
    Result<Json> j = parseJson(body);
    return j.ok() ? (*j)["storageUrl"].get<std::string>() : std::string();
  };
  EXPECT_EQ(storageUrl({"--data-dir", data_, "serve", "--config", config}, {}),
            "http://from-config/s3");
  EXPECT_EQ(storageUrl({"--data-dir", data_, "serve", "--config", config},
                       {"CAIRN_PUBLIC_URL=http://from-env"}),
            "http://from-env/s3");
  EXPECT_EQ(storageUrl({"--data-dir", data_, "serve", "--config", config, "--public-url",
                        "http://from-flag"},
                       {"CAIRN_PUBLIC_URL=http://from-env"}),
            "http://from-flag/s3");
}

TEST_F(ServeCliTest, BadSettingsAreUsageErrors) {
  Child c = spawn({"--data-dir", data_, "serve", "--listen", "nonsense"});
  EXPECT_EQ(c.wait(), 2);
  EXPECT_THAT(c.output, HasSubstr("--listen must be HOST:PORT"));
  std::string config = dir_->path() / "bad.toml";
  ASSERT_OK(writeFileDurable(config, "listen = [\n"));
  Child d = spawn({"--data-dir", data_, "serve", "--config", config});
  EXPECT_EQ(d.wait(), 2);
  EXPECT_THAT(d.output, HasSubstr("bad.toml"));
}

TEST_F(ServeCliTest, AdminCreatesOrganizationsAndKeysAndRevokes) {
  Child org = spawn({"--data-dir", data_, "admin", "org", "create", "acme"});
  EXPECT_EQ(org.wait(), 0) << org.output;
  Child key = spawn({"--data-dir", data_, "admin", "key", "create", "--org", "acme", "--name", "ci",
                     "--expires", "30d", "--permissions", "write:snapshots"});
  EXPECT_EQ(key.wait(), 0) << key.output;
  EXPECT_THAT(key.output, HasSubstr("cairn_"));
  std::size_t at = key.output.find("key ");
  ASSERT_NE(at, std::string::npos) << key.output;
  std::string id = key.output.substr(at + 4, 36);
  Child revoke = spawn({"--data-dir", data_, "admin", "key", "revoke", id});
  EXPECT_EQ(revoke.wait(), 0) << revoke.output;
  EXPECT_THAT(revoke.output, HasSubstr("revoked " + id));
  Child unknown = spawn({"--data-dir", data_, "admin", "key", "create", "--org", "nope"});
  EXPECT_EQ(unknown.wait(), 2);
  EXPECT_THAT(unknown.output, HasSubstr("no organization named \"nope\""));
  Child bad_perm = spawn({"--data-dir", data_, "admin", "key", "create", "--org", "acme",
                          "--permissions", "fly:planes"});
  EXPECT_NE(bad_perm.wait(), 0);
  EXPECT_THAT(bad_perm.output, HasSubstr("fly:planes"));
  Child revoke_unknown = spawn({"--data-dir", data_, "admin", "key", "revoke", "nope"});
  EXPECT_EQ(revoke_unknown.wait(), 1);
  EXPECT_THAT(revoke_unknown.output, HasSubstr("no API key with id nope"));
}

}  // namespace
}  // namespace cairn::api
