// The official Daytona TypeScript SDK (@daytonaio/sdk 0.218.0, tests/node/compat/) against a real
// `cairn serve` with its real build engine (crun), as a user would run them:
//
//   - a busybox image made here goes to Debian's docker-registry on 127.0.0.1:<random port>
//     with `cairn image push` (the pull path, offline), and a busybox base goes into the
//     server's data dir with `cairn image export` + `cairn image import` (the build's FROM);
//   - `cairn serve --listen 127.0.0.1:0` on a temp data dir, its initial API key;
//   - the Node script: create from an image name, create from an Image with addLocalFile /
//     addLocalDir (> 5 MiB context: S3 multipart) and onLogs (real RUN output), a failing build,
//     get, list, 409, 404, delete, the freed name reused;
//   - /metrics afterwards counts those builds and pulls by outcome.
//
// Needs root (overlayfs, crun), busybox-static, docker-registry, curl, node and
// tests/node/node_modules (scripts/install-deps installs all of them): label `integration`.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../cli/run_cairn.h"
#include "cairn/common/fs.h"
#include "cairn/testing/busybox_image.h"
#include "cairn/testing/serve_process.h"
#include "cairn/testing/status_matchers.h"
#include "test_client.h"

namespace cairn::api {
namespace {

namespace fs = std::filesystem;
using cairn::testing::CairnRun;
using cairn::testing::runCairn;
using cairn::testing::runProgram;
using cairn::testing::shellQuote;
using ::testing::HasSubstr;

const std::string kSourceDir = CAIRN_SOURCE_DIR;
const std::string kNodeModules = kSourceDir + "/tests/node/node_modules";

//! A background child process, killed when it goes out of scope. Its stdout+stderr go to a
//! file (a pipe nobody drains while the SDK runs could fill up and stall the server).
class Child {
 public:
  static Result<Child> spawn(const std::vector<std::string>& argv, const fs::path& log) {
    UniqueFd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!out.valid()) return errnoStatus(errno, "create " + log.string());
    pid_t pid = ::fork();
    if (pid < 0) return errnoStatus(errno, "fork");
    if (pid == 0) {
      ::dup2(out.get(), 1);
      ::dup2(out.get(), 2);
      for (const char* v : {"CAIRN_LISTEN", "CAIRN_PUBLIC_URL", "CAIRN_CONFIG", "CAIRN_DATA_DIR",
                            "CAIRN_REGISTRY_CONFIG"}) {
        ::unsetenv(v);
      }
      std::vector<char*> args;
      for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    Child c;
    c.pid_ = pid;
    c.log_ = log;
    return c;
  }
  Child() = default;
  Child(Child&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)), log_(std::move(o.log_)), exit_code_(o.exit_code_) {}
  Child& operator=(Child&&) = delete;
  ~Child() { stop(SIGKILL); }

  std::string output() const { return readFile(log_).valueOr(""); }
  //! Polls the output until it contains `needle` (true), the child exits or `timeout` (false).
  bool waitFor(const std::string& needle, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (output().find(needle) == std::string::npos) {
      if (exited() || std::chrono::steady_clock::now() > deadline) {
        return output().find(needle) != std::string::npos;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  }
  bool exited() {
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return true;
    }
    return pid_ <= 0;
  }
  //! Sends `sig` and waits for the exit (SIGKILL after 60 s). Returns the exit code.
  int stop(int sig) {
    if (pid_ > 0) {
      ::kill(pid_, sig);
      for (int i = 0; i < 600 && !exited(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        exit_code_ = 128 + SIGKILL;
      }
    }
    return exit_code_;
  }

 private:
  pid_t pid_ = -1;
  fs::path log_;
  int exit_code_ = -1;
};

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

//! Debian's docker-registry with our own config (the packaged one listens on every interface):
//! loopback, temp storage. Retries another port if the chosen one was taken meanwhile.
Result<std::pair<Child, std::string>> startRegistry(const fs::path& dir, const fs::path& scratch) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::string host = "127.0.0.1:" + std::to_string(freePort());
    std::string config =
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        "    rootdirectory: " +
        (dir / "storage").string() + "\n  delete:\n    enabled: true\nhttp:\n  addr: " + host +
        "\n";
    CAIRN_RETURN_IF_ERROR(writeFileDurable(dir / "config.yml", config));
    CAIRN_ASSIGN_OR_RETURN(
        Child registry,
        Child::spawn({"docker-registry", "serve", (dir / "config.yml")}, dir / "registry.log"));
    for (int i = 0; i < 200 && !registry.exited(); ++i) {
      CairnRun probe = runProgram("/usr/bin/curl", scratch,
                                  {"-sf", "-o", "/dev/null", "http://" + host + "/v2/"});
      if (probe.exit_code == 0) return std::make_pair(std::move(registry), host);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return unavailable("docker-registry did not start on 127.0.0.1 (5 ports tried)");
}

//! The value of one series line ("name{labels} value") in a /metrics body; NaN if absent.
double seriesValue(const std::string& text, const std::string& series) {
  std::size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      return std::strtod(text.c_str() + at + series.size(), nullptr);
    }
    at += series.size();
  }
  return std::nan("");
}

std::string expectOk(const CairnRun& r, const std::string& what) {
  EXPECT_EQ(r.exit_code, 0) << what << "\nstdout: " << r.out << "\nstderr: " << r.err;
  return r.out;
}

TEST(DaytonaSdkCompatTest, OfficialSdkAgainstServeWithTheRealEngine) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "builds run under crun on overlayfs: needs root (CI runs as root)";
  }
  ASSERT_TRUE(fs::is_directory(kNodeModules + "/@daytonaio/sdk"))
      << kNodeModules << " lacks @daytonaio/sdk: run scripts/install-deps (npm ci in tests/node)";
  ASSERT_NE(::cairn::testing::busyboxPath(), nullptr) << "busybox-static is not installed";
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("cairn-compat"));
  const fs::path client = tmp.path() / "client";
  const fs::path server = tmp.path() / "server";
  fs::create_directories(tmp.path() / "registry");

  // The images: a base for the Image's FROM, and a different one (own layer) to pull; busybox
  // with the applets the script's RUN steps use, gzip layers.
  ASSERT_OK(::cairn::testing::storeBusyboxImage(client, tmp.path() / "base-rootfs",
                                                {.name = "busybox-base:1",
                                                 .extra_applets = {"sha256sum"},
                                                 .compression = layer::Compression::kGzip})
                .status());
  oci::ContainerConfig pull_config;
  pull_config.env = {"PATH=/bin"};
  pull_config.entrypoint = std::vector<std::string>{"/bin/sleep"};
  pull_config.cmd = std::vector<std::string>{"3600"};
  ASSERT_OK(::cairn::testing::storeBusyboxImage(
                client, tmp.path() / "pull-rootfs",
                {.name = "pullme:1",
                 .container = pull_config,
                 .extra_applets = {"sha256sum"},
                 .compression = layer::Compression::kGzip,
                 .customize =
                     [](const fs::path& root) {
                       return writeFileDurable(root / "etc/pulled", "from the loopback registry\n");
                     }})
                .status());

  ASSERT_OK_AND_ASSIGN(auto registry, startRegistry(tmp.path() / "registry", tmp.path()));
  const std::string pull_ref = registry.second + "/compat/busybox:1";
  expectOk(
      runCairn(tmp.path(), {"--data-dir", client.string(), "image", "push", "pullme:1", pull_ref}),
      "cairn image push");
  const std::string layout = "oci:" + (tmp.path() / "layout").string() + ":1";
  expectOk(runCairn(tmp.path(),
                    {"--data-dir", client.string(), "image", "export", "busybox-base:1", layout}),
           "cairn image export");
  expectOk(runCairn(tmp.path(),
                    {"--data-dir", server.string(), "image", "import", layout, "busybox-base:1"}),
           "cairn image import");
  if (HasFailure()) return;

  ASSERT_OK_AND_ASSIGN(
      auto serve,
      ::cairn::testing::ServeProcess::start(
          {.binary = CAIRN_BINARY, .data_dir = server, .log_path = tmp.path() / "serve.log"}));
  const std::uint16_t port = serve->port();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  const std::string key = serve->apiKey();
  // A warning here would mean no OCI runtime: every build would fail.
  EXPECT_THAT(serve->output(), ::testing::Not(HasSubstr("no OCI runtime"))) << serve->output();

  std::string cmd = "env CAIRN_API_URL=" + shellQuote("http://" + address + "/api") +
                    " CAIRN_API_KEY=" + shellQuote(key) +
                    " NODE_MODULES=" + shellQuote(kNodeModules) +
                    " CAIRN_PULL_IMAGE=" + shellQuote(pull_ref) +
                    " CAIRN_PULL_ENTRYPOINT=" + shellQuote(R"(["/bin/sleep","3600"])") +
                    " CAIRN_BASE_IMAGE=busybox-base:1 NODE_NO_WARNINGS=1 timeout 480 node " +
                    shellQuote(kSourceDir + "/tests/node/compat/daytona_compat.js") + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe))
    out.append(buf, n);
  int rc = ::pclose(pipe);
  EXPECT_EQ(rc, 0) << out << "\n--- cairn serve ---\n" << serve->output();
  EXPECT_THAT(out, HasSubstr("OK create(imageName) | create(Image with local files, onLogs, "
                             "multipart) | build error | get list | 409 404 | delete | reuse name"))
      << out;

  // What the server counted. The re-created snapshot may be active at once (its image was not
  // collected yet: no build) or built again (from the step cache).
  testing::TestClient metrics_client(port);
  auto scraped = metrics_client.roundTrip("GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_TRUE(scraped.has_value());
  std::string metrics = scraped->body();
  double built_ok = seriesValue(metrics, R"(cairn_builds_total{kind="build",outcome="succeeded"})");
  EXPECT_TRUE(built_ok == 1 || built_ok == 2) << metrics;
  EXPECT_EQ(seriesValue(metrics, R"(cairn_builds_total{kind="build",outcome="failed"})"), 1)
      << metrics;
  EXPECT_EQ(seriesValue(metrics, R"(cairn_builds_total{kind="pull",outcome="succeeded"})"), 1)
      << metrics;
  EXPECT_EQ(seriesValue(metrics, R"(cairn_builds_total{kind="pull",outcome="failed"})"), 0)
      << metrics;
  EXPECT_EQ(seriesValue(metrics, "cairn_queue_depth"), 0) << metrics;
  // The 6 MiB context object and the layers are in the store.
  EXPECT_GT(seriesValue(metrics, "cairn_store_bytes"), 6 * 1024 * 1024) << metrics;

  auto stopped = serve->stop();
  ASSERT_OK(stopped.status()) << serve->output();
  EXPECT_EQ(*stopped, 0) << serve->output();
  registry.first.stop(SIGTERM);
}

}  // namespace
}  // namespace cairn::api
