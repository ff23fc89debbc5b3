// Crash recovery of the real `cairn serve`: the binary on a temp data dir (port 0, the real
// engine over crun, a busybox base image in its catalog) is killed with SIGKILL at several
// points of a build, then started again on the same data dir. Every snapshot must reach
// `active` or `error` with a reason within a bounded wait, and nothing may be left behind:
// no mounts under the data dir, no work dirs, no containers in the runtime's state root, no
// processes of the killed build.
//
// Label integration: overlayfs and containers need root (CI is root). The test process makes
// itself a child subreaper, so that the killed server's orphans (container inits) are
// re-parented to it and can be reaped; PID 1 of these machines does not reap.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../api/test_client.h"
#include "cairn/common/crypto.h"
#include "cairn/common/encoding.h"
#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/runtime/overlay.h"
#include "cairn/testing/busybox_image.h"
#include "cairn/testing/serve_process.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::service {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::ServeProcess;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr auto kTerminalWait = std::chrono::seconds(180);

//! Processes (not zombies) whose environment holds `marker` (an ENV of the Dockerfile: every
//! process of that build's RUN steps inherits it).
std::set<pid_t> processesWithMarker(const std::string& marker) {
  std::set<pid_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto env = readFile(e.path() / "environ");
    if (!env.ok() || env->find(marker) == std::string::npos) continue;
    auto stat = readFile(e.path() / "stat");
    if (!stat.ok()) continue;
    std::size_t paren = stat->rfind(')');
    if (paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] == 'Z') {
      continue;
    }
    out.insert(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

bool alive(pid_t pid) {
  auto stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return false;
  std::size_t paren = stat->rfind(')');
  return paren == std::string::npos || paren + 2 >= stat->size() || (*stat)[paren + 2] != 'Z';
}

//! Reaps exited orphans re-parented to this (subreaper) process, never `keep`.
void reapOrphans(pid_t keep) {
  while (true) {
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
    if (info.si_pid == keep) return;
    ::waitpid(info.si_pid, nullptr, WNOHANG);
  }
}

//! Containers in the runtime's state root (crun's, or runc's after a fallback) whose bundle is
//! under `dir`, as "<id> <bundle>".
std::vector<std::string> containersUnder(const fs::path& dir) {
  std::vector<std::string> out;
  for (const char* runtime : {"crun", "runc"}) {
    fs::path root = fs::path("/run/cairn") / runtime;
    std::error_code ec;
    if (!fs::exists(root, ec)) continue;
    std::string cmd = std::string(runtime) + " --root " + root.string() + " list 2>/dev/null";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) continue;
    std::string text;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;)
      text.append(buf, n);
    ::pclose(p);
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream fields(line);
      std::string id, pid, status, bundle;
      fields >> id >> pid >> status >> bundle;
      if (bundle.rfind(dir.string(), 0) == 0) out.push_back(id + " " + bundle);
    }
  }
  return out;
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    out.push_back(e.path().filename().string());
  return out;
}

class CrashRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "cairn serve's engine mounts overlayfs and runs crun: needs root (CI is "
                      "root)";
    }
    if (::cairn::testing::busyboxPath() == nullptr) {
      GTEST_SKIP() << "busybox-static is not installed (scripts/install-deps installs it)";
    }
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    ASSERT_OK_AND_ASSIGN(auto dir, TempDir::create("crash-recovery"));
    tmp_ = std::make_unique<TempDir>(std::move(dir));
    data_ = tmp_->path() / "data";
    fs::create_directories(data_);
    ASSERT_OK(::cairn::testing::storeBusyboxImage(data_, tmp_->path() / "busybox-rootfs").status());
    marker_ = "CAIRN_CRASH_MARK=" + hexEncode(randomBytes(8));
  }

  void TearDown() override {
    if (server_) server_->kill(SIGKILL);
    server_.reset();
    if (!tmp_) return;
    if (HasFailure() || std::getenv("CAIRN_TEST_VERBOSE") != nullptr) {
      std::cerr << "--- every run's cairn serve output:\n"
                << readFile(tmp_->path() / "serve.log").valueOr("") << "---\n";
    }
    // A failed test must not leave containers or mounts behind for the next one.
    reapOrphans(-1);
    for (pid_t p : processesWithMarker(marker_))
      ::kill(p, SIGKILL);
    (void)runtime::unmountAllUnder(data_);
    reapOrphans(-1);
  }

  void startServer(std::vector<std::string> args = {}) {
    server_.reset();
    // Every run appends to one serve.log (TearDown prints it); output() is this run's part.
    ASSERT_OK_AND_ASSIGN(server_, ServeProcess::start({.binary = CAIRN_BIN,
                                                       .data_dir = data_,
                                                       .log_path = tmp_->path() / "serve.log",
                                                       .args = std::move(args)}));
    key_ = server_->apiKey();
  }

  //! kill -9, then reap the server (its orphans are reaped later, once recovery killed them).
  void crash() {
    ASSERT_TRUE(server_);
    EXPECT_EQ(server_->kill(SIGKILL), 128 + SIGKILL);
  }

  std::pair<int, std::string> http(const std::string& method, const std::string& target,
                                   const std::string& body = "") {
    api::testing::TestClient client(server_->port());
    std::string req = method + " " + target +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + "Bearer " + key_ + "\r\n";
    if (!body.empty()) {
      req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\n";
    }
    req += "\r\n" + body;
    auto r = client.roundTrip(req);
    if (!r) return {-1, ""};
    return {static_cast<int>(r->result_int()), r->body()};
  }

  //! POST /api/snapshots with a Dockerfile; returns the snapshot id.
  std::string create(const std::string& name, const std::string& dockerfile) {
    Json body = {
        {"name", name},
        {"buildInfo", {{"dockerfileContent", dockerfile}, {"contextHashes", Json::array()}}}};
    auto [status, text] = http("POST", "/api/snapshots", body.dump());
    EXPECT_EQ(status, 200) << text;
    auto j = parseJson(text);
    return j.ok() && j->contains("id") ? (*j)["id"].get<std::string>() : "";
  }

  Json get(const std::string& id) {
    auto [status, text] = http("GET", "/api/snapshots/" + id);
    if (status != 200) return Json();
    auto j = parseJson(text);
    return j.ok() ? *j : Json();
  }

  std::string stateOf(const std::string& id) {
    Json j = get(id);
    return j.is_object() ? j.value("state", "") : "";
  }

  //! Polls until the snapshot is terminal for the SDK (active, error, build_failed).
  Json waitTerminal(const std::string& id) {
    auto deadline = Clock::now() + kTerminalWait;
    while (Clock::now() < deadline) {
      Json j = get(id);
      std::string state = j.is_object() ? j.value("state", "") : "";
      if (state == "active" || state == "error" || state == "build_failed") return j;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "snapshot " << id << " not terminal after " << kTerminalWait.count()
                  << " s: " << get(id).dump() << "\nserver output:\n"
                  << server_->output();
    return get(id);
  }

  std::string buildLog(const std::string& id) {
    return readFile(data_ / "logs" / (id + ".log")).valueOr("");
  }

  //! Waits (bounded) until `pred` holds; false on timeout.
  template <typename Pred>
  bool waitFor(Pred pred, std::chrono::seconds limit = std::chrono::seconds(120)) {
    auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  //! The container ids of the runs in progress (their bundle dirs under work/run).
  std::vector<std::string> runningContainers() {
    std::vector<std::string> out;
    for (const auto& name : entries(data_ / "work" / "run"))
      if (name.rfind("cairn-", 0) == 0) out.push_back(name);
    return out;
  }

  //! Everything a build may leave behind, checked once every snapshot is terminal.
  void expectNothingLeftBehind(const std::vector<std::string>& containers) {
    auto mounts = runtime::mountsUnder(data_);
    ASSERT_OK(mounts.status());
    std::string list;
    for (const auto& m : *mounts)
      list += m.string() + "\n";
    EXPECT_TRUE(mounts->empty()) << "still mounted:\n" << list;
    EXPECT_THAT(entries(data_ / "work" / "builds"), ::testing::IsEmpty());
    EXPECT_THAT(entries(data_ / "work" / "run"), ::testing::IsEmpty());
    EXPECT_THAT(entries(data_ / "work" / "contexts"), ::testing::IsEmpty());
    EXPECT_THAT(entries(data_ / "ingest"), ::testing::IsEmpty());
    EXPECT_THAT(containersUnder(data_), ::testing::IsEmpty())
        << "the OCI runtime still has containers of this data dir";
    for (const auto& id : containers) {
      for (const char* root : {"/run/cairn/crun", "/run/cairn/runc"}) {
        std::error_code ec;
        EXPECT_FALSE(fs::exists(fs::path(root) / id, ec))
            << "container " << id << " is still in the state root " << root;
      }
    }
    reapOrphans(server_ ? server_->pid() : -1);
    EXPECT_THAT(processesWithMarker(marker_), ::testing::IsEmpty())
        << "processes of the build are still running";
  }

  std::unique_ptr<TempDir> tmp_;
  fs::path data_;
  std::string marker_;
  std::string key_;
  std::unique_ptr<ServeProcess> server_;
};

TEST_F(CrashRecoveryTest, KilledWhileARunStepRunsAndAnotherSnapshotIsPending) {
  startServer({"--max-concurrent-builds", "1"});
  // The RUN step is slow enough to be caught running; its processes carry the marker.
  std::string slow = create("slow", "FROM busybox:test\nENV " + marker_ + "\nRUN sleep 6\n");
  ASSERT_FALSE(slow.empty());
  std::set<pid_t> old_pids;
  ASSERT_TRUE(waitFor([&] { return !(old_pids = processesWithMarker(marker_)).empty(); }))
      << "the RUN step never started\n"
      << buildLog(slow) << server_->output();
  EXPECT_EQ(stateOf(slow), "building");
  // The only build worker is busy: this one waits in the queue.
  std::string queued = create("queued", "FROM busybox:test\nRUN echo queued > /queued\n");
  ASSERT_FALSE(queued.empty());
  EXPECT_EQ(stateOf(queued), "pending");
  std::vector<std::string> containers = runningContainers();
  EXPECT_FALSE(containers.empty());

  crash();
  // The kill leaves the RUN step's container and processes running: recovery has to stop them.
  EXPECT_THAT(containersUnder(data_), ::testing::Not(::testing::IsEmpty()));
  for (pid_t p : old_pids)
    EXPECT_TRUE(alive(p)) << "pid " << p << " died with the server; the test proves nothing";

  startServer({"--max-concurrent-builds", "1"});
  // Recovery runs before the server listens: the old build's processes are gone by now, while
  // their `sleep 6` would still have seconds to go.
  reapOrphans(server_->pid());
  for (pid_t p : old_pids)
    EXPECT_FALSE(alive(p)) << "pid " << p << " of the killed build survived the restart";

  Json s = waitTerminal(slow);
  EXPECT_EQ(s.value("state", ""), "active") << s.dump();
  EXPECT_TRUE(s["errorReason"].is_null());
  EXPECT_THAT(buildLog(slow), HasSubstr("taken over by worker"));
  Json q = waitTerminal(queued);
  EXPECT_EQ(q.value("state", ""), "active") << q.dump();
  expectNothingLeftBehind(containers);
  EXPECT_EQ(server_->kill(SIGTERM), 0) << server_->output();
}

TEST_F(CrashRecoveryTest, KilledWhileExportingTheImage) {
  startServer();
  // 256 MiB of random bytes: the layer's export (tar, zstd, sha256 into the blob store) takes
  // long enough to be interrupted. An image layer is exported when its step is committed, right
  // after the RUN's process exits and before the step's DONE line, so the kill comes on the
  // step's last output line.
  std::string id = create("export",
                          "FROM busybox:test\nRUN dd if=/dev/urandom of=/big bs=1M count=256 "
                          "2>/dev/null && echo payload-written\n");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(waitFor([&] { return buildLog(id).find("payload-written") != std::string::npos; },
                      std::chrono::seconds(180)))
      << buildLog(id) << server_->output();
  crash();
  std::string log_at_kill = buildLog(id);
  EXPECT_THAT(log_at_kill, ::testing::Not(HasSubstr("#4 DONE")))
      << "the layer was committed before the kill: this run did not test an interrupted export";

  startServer();
  Json s = waitTerminal(id);
  EXPECT_EQ(s.value("state", ""), "active") << s.dump() << buildLog(id);
  EXPECT_GT(s.value("size", 0.0), 0.1);  // GB: the 160 MiB layer made it into the image
  expectNothingLeftBehind({});
  EXPECT_EQ(server_->kill(SIGTERM), 0) << server_->output();
}

TEST_F(CrashRecoveryTest, KilledWhileTheEntrypointIsValidated) {
  startServer();
  // The image is built and tagged; its entrypoint (`sleep infinity`, with the marker in its
  // environment) runs in the validation sandbox when the server dies. It would never exit.
  std::string id = create("validating", "FROM busybox:test\nENV " + marker_ + "\n");
  ASSERT_FALSE(id.empty());
  std::set<pid_t> old_pids;
  ASSERT_TRUE(waitFor([&] {
    return buildLog(id).find("[entrypoint] validating") != std::string::npos &&
           !(old_pids = processesWithMarker(marker_)).empty();
  })) << buildLog(id)
      << server_->output();
  std::vector<std::string> containers = runningContainers();
  crash();
  for (pid_t p : old_pids)
    EXPECT_TRUE(alive(p)) << "pid " << p << " died with the server; the test proves nothing";

  startServer();
  reapOrphans(server_->pid());
  for (pid_t p : old_pids)
    EXPECT_FALSE(alive(p)) << "the killed validation's entrypoint (pid " << p << ") survived";
  // Taken over: the image is there already, so it is validated again and goes active.
  Json s = waitTerminal(id);
  EXPECT_EQ(s.value("state", ""), "active") << s.dump();
  EXPECT_THAT(buildLog(id), HasSubstr("taken over by worker"));
  expectNothingLeftBehind(containers);
  EXPECT_EQ(server_->kill(SIGTERM), 0) << server_->output();
}

TEST_F(CrashRecoveryTest, KilledRightAfterTheSnapshotWentActive) {
  startServer();
  const std::string dockerfile = "FROM busybox:test\nRUN echo hi > /hi\n";
  std::string id = create("done", dockerfile);
  ASSERT_FALSE(id.empty());
  Json before = waitTerminal(id);
  ASSERT_EQ(before.value("state", ""), "active") << before.dump();
  // cairn serve validated the entrypoint (the default `sleep infinity`) before `active`.
  EXPECT_THAT(buildLog(id), HasSubstr("[entrypoint] still running after"));
  crash();

  startServer();
  Json after = get(id);
  EXPECT_EQ(after.value("state", ""), "active") << after.dump();
  EXPECT_EQ(after["ref"], before["ref"]);
  EXPECT_EQ(after["size"], before["size"]);
  // The image survived the crash: the same definition is active at once (dedup, §5.3).
  std::string twin = create("done-twin", dockerfile);
  EXPECT_EQ(stateOf(twin), "active");
  expectNothingLeftBehind({});
  EXPECT_EQ(server_->kill(SIGTERM), 0) << server_->output();
}

TEST_F(CrashRecoveryTest, ABuildThatKillsTheServerOnEveryAttemptEndsInErrorWithAReason) {
  startServer();
  std::string id = create("doomed", "FROM busybox:test\nENV " + marker_ + "\nRUN sleep 30\n");
  ASSERT_FALSE(id.empty());
  // Each attempt is killed while its RUN step runs; a job has three attempts.
  for (int attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_TRUE(waitFor([&] { return !processesWithMarker(marker_).empty(); }))
        << "attempt " << attempt << " never ran its RUN step\n"
        << buildLog(id) << server_->output();
    std::vector<std::string> containers = runningContainers();
    crash();
    startServer();
    reapOrphans(server_->pid());
    for (const auto& c : containers)
      EXPECT_FALSE(fs::exists(fs::path("/run/cairn/crun") / c)) << c;
  }
  Json s = waitTerminal(id);
  EXPECT_EQ(s.value("state", ""), "error") << s.dump();
  EXPECT_THAT(s.value("errorReason", ""), HasSubstr("The worker processing this snapshot stopped"));
  EXPECT_THAT(s.value("errorReason", ""), HasSubstr("died"));
  expectNothingLeftBehind({});
  EXPECT_EQ(server_->kill(SIGTERM), 0) << server_->output();
}

// Not a crash: the entrypoint check as `cairn serve` runs it, and its setting.
TEST_F(CrashRecoveryTest, ServeFailsASnapshotWhoseEntrypointExitsAndTheCheckIsConfigurable) {
  startServer();
  std::string bad =
      create("bad-entrypoint",
             "FROM busybox:test\nENTRYPOINT [\"sh\", \"-c\", \"echo bad config >&2; exit 2\"]\n");
  Json s = waitTerminal(bad);
  EXPECT_EQ(s.value("state", ""), "error") << s.dump();
  EXPECT_THAT(s.value("errorReason", ""), HasSubstr("exited with exit code 2"));
  EXPECT_THAT(s.value("errorReason", ""), HasSubstr("bad config"));
  expectNothingLeftBehind({});
  EXPECT_EQ(server_->kill(SIGTERM), 0) << server_->output();

  startServer({"--entrypoint-check", "0"});
  std::string unchecked =
      create("unchecked", "FROM busybox:test\nENTRYPOINT [\"sh\", \"-c\", \"exit 2\"]\n");
  Json u = waitTerminal(unchecked);
  EXPECT_EQ(u.value("state", ""), "active") << u.dump();
  EXPECT_THAT(buildLog(unchecked), ::testing::Not(HasSubstr("[entrypoint]")));
  EXPECT_EQ(server_->kill(SIGTERM), 0) << server_->output();

  auto wrong = ServeProcess::start({.binary = CAIRN_BIN,
                                    .data_dir = data_,
                                    .log_path = tmp_->path() / "wrong.log",
                                    .args = {"--entrypoint-check", "soon"}});
  EXPECT_FALSE(wrong.ok());
  EXPECT_THAT(wrong.status().message(),
              HasSubstr("--entrypoint-check must be a number of seconds"));
}

}  // namespace
}  // namespace cairn::service
