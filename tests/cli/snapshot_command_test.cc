// `cairn snapshot …` end to end: the real `cairn` binary, run as a child process with a clean
// environment, against the SDK's fake Daytona server started by each test on 127.0.0.1:0.
// list/get output (table and --json) is compared with golden files after masking what the
// fake makes up per run (times, ids, the port).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/testing/status_matchers.h"
#include "fake_daytona.h"
#include "run_cairn.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using cairn::testing::slurp;
using RunResult = cairn::testing::CairnRun;

class CliSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(auto dir, cairn::TempDir::create("cli-test"));
    tmp_ = std::make_unique<cairn::TempDir>(std::move(dir));
  }

  // Runs `cairn ARGS` with only the given variables (plus PATH/HOME) in its environment.
  RunResult run(const std::vector<std::string>& args,
                const std::map<std::string, std::string>& env = {}) {
    return cairn::testing::runCairn(tmp_->path(), args, env);
  }

  // The API URL and key of the fake, as a user would export them.
  std::map<std::string, std::string> apiEnv() const {
    return {{"DAYTONA_API_URL", fake_.apiUrl()},
            {"DAYTONA_API_KEY", cairn::testing::FakeDaytona::kApiKey}};
  }

  // Times, uuids and the fake's port differ per run; everything else must match exactly.
  static std::string masked(std::string text) {
    static const std::regex kTime(
        R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))");
    static const std::regex kUuid(
        R"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})");
    text = std::regex_replace(text, kTime, "<TIME>");
    text = std::regex_replace(text, kUuid, "<UUID>");
    return text;
  }

  static void expectGolden(const std::string& name, const std::string& actual) {
    const auto path = std::filesystem::path(CAIRN_GOLDEN_DIR) / name;
    const std::string got = masked(actual);
    if (const char* u = std::getenv("CAIRN_UPDATE_GOLDEN"); u != nullptr && *u == '1') {
      std::ofstream(path, std::ios::binary) << got;
      return;
    }
    ASSERT_TRUE(std::filesystem::exists(path)) << "missing golden file " << path;
    EXPECT_EQ(got, slurp(path)) << "golden file " << path
                                << " differs (CAIRN_UPDATE_GOLDEN=1 rewrites it)";
  }

  void addThree() {
    fake_.addSnapshot("alpha", "active");
    fake_.addSnapshot("beta", "building");
    fake_.addSnapshot("gamma-with-a-long-name", "error");
  }

  cairn::testing::FakeDaytona fake_;
  std::unique_ptr<cairn::TempDir> tmp_;
};

TEST_F(CliSnapshotTest, ListTableIsAlignedGolden) {
  addThree();
  auto r = run({"snapshot", "list"}, apiEnv());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expectGolden("list.txt", r.out);
  EXPECT_THAT(r.out, Not(HasSubstr(".000Z")));  // whole seconds in the table
}

TEST_F(CliSnapshotTest, ListJsonGolden) {
  addThree();
  auto r = run({"snapshot", "list", "--json"}, apiEnv());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expectGolden("list.json", r.out);
  // It is JSON a script can read back.
  ASSERT_OK_AND_ASSIGN(auto json, cairn::parseJson(r.out));
  EXPECT_EQ(json["total"], 3);
  EXPECT_EQ(json["items"][0]["name"], "alpha");
}

TEST_F(CliSnapshotTest, GetTableGolden) {
  addThree();
  auto r = run({"snapshot", "get", "alpha"}, apiEnv());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expectGolden("get.txt", r.out);
}

TEST_F(CliSnapshotTest, GetJsonGolden) {
  addThree();
  auto r = run({"snapshot", "get", "alpha", "--json"}, apiEnv());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expectGolden("get.json", r.out);
}

TEST_F(CliSnapshotTest, ListPagesAndSaysHowToSeeMore) {
  addThree();
  auto r = run({"snapshot", "list", "--page", "2", "--limit", "1"}, apiEnv());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("beta"));
  EXPECT_THAT(r.out, Not(HasSubstr("alpha")));
  EXPECT_THAT(r.out, HasSubstr("page 2 of 3 (3 snapshots; --page N for more)"));
  auto reqs = fake_.requests("GET", "/api/snapshots");
  ASSERT_FALSE(reqs.empty());
  EXPECT_THAT(reqs.back().query, HasSubstr("page=2"));
  EXPECT_THAT(reqs.back().query, HasSubstr("limit=1"));
}

TEST_F(CliSnapshotTest, NoApiKeySaysWhatToDo) {
  auto r = run({"snapshot", "list"}, {{"DAYTONA_API_URL", fake_.apiUrl()}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no API key: set DAYTONA_API_KEY"));
  EXPECT_THAT(r.err, HasSubstr("--api-key"));
  EXPECT_THAT(r.err, HasSubstr("`cairn serve` printed one at first start"));
  EXPECT_TRUE(fake_.requests().empty());
}

TEST_F(CliSnapshotTest, FlagsAndCairnVariablesGiveUrlAndKey) {
  fake_.addSnapshot("alpha", "active");
  auto by_flag = run({"snapshot", "--api-url", fake_.apiUrl(), "--api-key",
                      cairn::testing::FakeDaytona::kApiKey, "get", "alpha"});
  EXPECT_EQ(by_flag.exit_code, 0) << by_flag.err;
  auto by_env = run(
      {"snapshot", "get", "alpha"},
      {{"CAIRN_API_URL", fake_.apiUrl()}, {"CAIRN_API_KEY", cairn::testing::FakeDaytona::kApiKey}});
  EXPECT_EQ(by_env.exit_code, 0) << by_env.err;
  EXPECT_THAT(by_env.out, HasSubstr("alpha"));
}

TEST_F(CliSnapshotTest, WrongKeyFailsWithAuthenticationHint) {
  auto r = run({"snapshot", "list"},
               {{"DAYTONA_API_URL", fake_.apiUrl()}, {"DAYTONA_API_KEY", "wrong"}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("Invalid credentials"));
  EXPECT_THAT(r.err, HasSubstr("API key was refused"));
}

TEST_F(CliSnapshotTest, UnreachableServerSaysHowToStartOne) {
  // Port 1 on loopback: nothing listens there (connection refused at once).
  auto r = run({"snapshot", "list"},
               {{"CAIRN_API_URL", "http://127.0.0.1:1/api"}, {"DAYTONA_API_KEY", "k"}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("127.0.0.1"));
  EXPECT_THAT(r.err, HasSubstr("start one with `cairn serve`"));
}

TEST_F(CliSnapshotTest, GetMissingIsNotFound) {
  auto r = run({"snapshot", "get", "nope"}, apiEnv());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("nope"));
  EXPECT_THAT(r.err, HasSubstr("cairn snapshot list"));
}

TEST_F(CliSnapshotTest, UsageErrorsExitTwo) {
  EXPECT_EQ(run({"snapshot"}, apiEnv()).exit_code, 2);
  EXPECT_EQ(run({"snapshot", "frobnicate"}, apiEnv()).exit_code, 2);
  EXPECT_EQ(run({"snapshot", "get"}, apiEnv()).exit_code, 2);
  EXPECT_EQ(run({"snapshot", "list", "--limit", "zero"}, apiEnv()).exit_code, 2);
  auto both = run({"snapshot", "create", "x", "--image", "a", "--dockerfile", "b"}, apiEnv());
  EXPECT_EQ(both.exit_code, 2);
  auto neither = run({"snapshot", "create", "x"}, apiEnv());
  EXPECT_EQ(neither.exit_code, 2);
  EXPECT_THAT(neither.err, HasSubstr("give --image REF or --dockerfile PATH"));
  EXPECT_TRUE(fake_.requests("POST", "/api/snapshots").empty());
}

TEST_F(CliSnapshotTest, CreateFromImageShowsLogsAndSendsResources) {
  auto r = run({"snapshot", "create", "web", "--image", "alpine:3.19", "--cpu", "2", "--memory",
                "4", "--disk", "8", "--entrypoint", "sleep", "--entrypoint", "infinity"},
               apiEnv());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The SDK's progress lines, as onLogs delivers them.
  EXPECT_THAT(r.out, HasSubstr("Created snapshot web (active)"));
  EXPECT_THAT(r.out, HasSubstr("snapshot web is active"));
  auto posts = fake_.requests("POST", "/api/snapshots");
  ASSERT_EQ(posts.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto body, cairn::parseJson(posts[0].body));
  EXPECT_EQ(body["name"], "web");
  EXPECT_EQ(body["imageName"], "alpine:3.19");
  EXPECT_EQ(body["cpu"], 2);
  EXPECT_EQ(body["memory"], 4);
  EXPECT_EQ(body["disk"], 8);
  EXPECT_EQ(body["entrypoint"], cairn::Json::array({"sleep", "infinity"}));
}

TEST_F(CliSnapshotTest, CreateThatFailsExitsOneWithTheReason) {
  fake_.setStateScript({"pending", "building", "build_failed"});
  fake_.setErrorReason("RUN step 2 exited with 1");
  auto r = run({"snapshot", "create", "bad", "--image", "alpine:3.19"}, apiEnv());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out + r.err, HasSubstr("RUN step 2 exited with 1"));
}

TEST_F(CliSnapshotTest, CreateTimeoutCoversTheWholeOperation) {
  fake_.setStateScript({"pending", "building"});  // never finishes
  fake_.setCloseLogsWhenTerminal(false);
  auto r =
      run({"snapshot", "create", "slow", "--image", "alpine:3.19", "--timeout", "1"}, apiEnv());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("timed out"));
}

TEST_F(CliSnapshotTest, CreateFromDockerfileUploadsContext) {
  const auto dir = tmp_->path() / "ctx";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "Dockerfile") << "FROM alpine:3.19\nCOPY app.txt /app.txt\n";
  std::ofstream(dir / "app.txt") << "hello\n";
  fake_.setLogChunks({"Step 1/2 : FROM alpine:3.19\n", "Step 2/2 : COPY app.txt /app.txt\n"});
  auto r = run({"snapshot", "create", "built", "--dockerfile", (dir / "Dockerfile").string(),
                "--context", dir.string()},
               apiEnv());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Step 1/2 : FROM alpine:3.19\nStep 2/2 : COPY app.txt /app.txt\n"));
  EXPECT_THAT(r.out, HasSubstr("snapshot built is active"));
  EXPECT_TRUE(fake_.s3Failures().empty());
  EXPECT_EQ(fake_.objects().size(), 1u);
  auto posts = fake_.requests("POST", "/api/snapshots");
  ASSERT_EQ(posts.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto body, cairn::parseJson(posts[0].body));
  EXPECT_THAT(body["buildInfo"]["dockerfileContent"].get<std::string>(),
              HasSubstr("COPY app.txt /app.txt"));
}

TEST_F(CliSnapshotTest, CreateWithForeignContextIsRefused) {
  const auto dir = tmp_->path() / "ctx";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "Dockerfile") << "FROM alpine:3.19\n";
  auto r = run({"snapshot", "create", "built", "--dockerfile", (dir / "Dockerfile").string(),
                "--context", tmp_->path().string()},
               apiEnv());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("is not the Dockerfile's directory"));
  EXPECT_TRUE(fake_.requests("POST", "/api/snapshots").empty());
}

TEST_F(CliSnapshotTest, CreateWithMissingDockerfileFails) {
  auto r = run({"snapshot", "create", "built", "--dockerfile",
                (tmp_->path() / "no-such-Dockerfile").string()},
               apiEnv());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no-such-Dockerfile"));
}

TEST_F(CliSnapshotTest, DeleteSeveralAndReportTheMissingOne) {
  addThree();
  auto r = run({"snapshot", "delete", "alpha", "nope", "beta"}, apiEnv());
  EXPECT_EQ(r.exit_code, 1);  // one of them failed
  EXPECT_THAT(r.out, HasSubstr("deleted alpha"));
  EXPECT_THAT(r.out, HasSubstr("deleted beta"));
  EXPECT_THAT(r.err, HasSubstr("nope"));
  auto after = run({"snapshot", "list"}, apiEnv());
  EXPECT_THAT(after.out, Not(HasSubstr("alpha ")));
  EXPECT_THAT(after.out, HasSubstr("gamma-with-a-long-name"));
}

TEST_F(CliSnapshotTest, DeactivateThenActivate) {
  fake_.addSnapshot("alpha", "active");
  auto d = run({"snapshot", "deactivate", "alpha"}, apiEnv());
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ((*fake_.snapshotByName("alpha"))["state"], "inactive");
  auto a = run({"snapshot", "activate", "alpha"}, apiEnv());
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_THAT(a.out, HasSubstr("snapshot alpha is"));
}

TEST_F(CliSnapshotTest, LogsPrintsTheBuildLog) {
  fake_.setLogChunks({"line one\n", "line two\n"});
  fake_.addSnapshot("alpha", "active");
  auto r = run({"snapshot", "logs", "alpha"}, apiEnv());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "line one\nline two\n");
}

TEST_F(CliSnapshotTest, LogsFollowEndsWhenTheBuildIsDone) {
  fake_.setLogChunks({"building...\n", "done\n"});
  fake_.addSnapshot("alpha", "active");
  auto r = run({"snapshot", "logs", "-f", "alpha"}, apiEnv());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "building...\ndone\n");
  auto streams = fake_.requests();  // the stream is at whatever build-logs-url said
  bool followed = false;
  for (const auto& req : streams)
    followed = followed || req.query.find("follow=true") != std::string::npos;
  EXPECT_TRUE(followed);
}

}  // namespace
