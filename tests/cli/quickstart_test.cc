// examples/quickstart — the SDK program of the README's main job (scripts/demo) — run as the
// demo runs it, against a real `cairn serve` that the test starts on 127.0.0.1:0 over a temp
// data directory. The base image is a busybox one the test stores itself (mmdebstrap takes
// minutes), passed with --base as the demo passes its Debian one. The server builds with crun on
// overlayfs, and the test runs the built image with `cairn run`: needs root, crun and
// busybox-static (CI has all three), label `integration`.
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/testing/busybox_image.h"
#include "cairn/testing/serve_process.h"
#include "cairn/testing/status_matchers.h"
#include "run_cairn.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kBase = "cairn.local/busybox:quickstart";

class QuickstartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the server builds on overlayfs: needs root (CI is root)";
    ASSERT_OK_AND_ASSIGN(auto dir, cairn::TempDir::create("cli-quickstart"));
    tmp_ = std::make_unique<cairn::TempDir>(std::move(dir));
    data_ = tmp_->path() / "data";
    ASSERT_NO_FATAL_FAILURE(storeBusyboxBase());
    ASSERT_OK_AND_ASSIGN(
        server_,
        cairn::testing::ServeProcess::start(
            {.binary = CAIRN_BINARY, .data_dir = data_, .log_path = tmp_->path() / "serve.log"}));
    url_ = server_->baseUrl();
    ASSERT_THAT(url_, HasSubstr("http://127.0.0.1:")) << server_->output();
    key_ = server_->apiKey();
    ASSERT_FALSE(key_.empty());
  }

  // A one-layer busybox image (with the date and uname applets the Image's RUN step uses) in the
  // server's local store, under kBase.
  void storeBusyboxBase() {
    cairn::oci::ContainerConfig container;
    container.env = {"PATH=/bin"};
    ASSERT_OK(cairn::testing::storeBusyboxImage(
                  data_, tmp_->path() / "busybox",
                  {.name = kBase, .container = container, .extra_applets = {"date", "uname"}})
                  .status());
  }

  std::map<std::string, std::string> apiEnv() const {
    return {{"DAYTONA_API_URL", url_ + "/api"}, {"DAYTONA_API_KEY", key_}};
  }

  cairn::testing::CairnRun quickstart(std::vector<std::string> args) {
    return cairn::testing::runProgram(CAIRN_QUICKSTART_BINARY, tmp_->path(), args, apiEnv());
  }
  cairn::testing::CairnRun quickstartOnBusybox(const std::string& name) {
    return quickstart({"--name", name, "--base", kBase, "--app", CAIRN_QUICKSTART_APP});
  }

  //! `cairn snapshot get NAME --json` (the CLI, not the program under test), parsed.
  cairn::Json snapshotJson(const std::string& name) {
    auto r = cairn::testing::runCairn(tmp_->path(), {"snapshot", "get", name, "--json"}, apiEnv());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto json = cairn::parseJson(r.out);
    EXPECT_TRUE(json.ok()) << r.out;
    return json.ok() ? *json : cairn::Json::object();
  }

  std::unique_ptr<cairn::TempDir> tmp_;
  fs::path data_;
  std::unique_ptr<cairn::testing::ServeProcess> server_;
  std::string url_;
  std::string key_;
};

TEST_F(QuickstartTest, BuildsTheSnapshotWithItsLogListsItAndItsImageRuns) {
  auto r = quickstartOnBusybox("qs-test");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << server_->output();

  // The Image as the program declares it.
  EXPECT_THAT(r.out, HasSubstr("  | FROM cairn.local/busybox:quickstart\n"
                               "  | COPY quickstart-app /app\n"
                               "  | WORKDIR /app\n"));
  // The build log reached stdout: the steps, the RUN step's own output, the export.
  EXPECT_THAT(r.out, HasSubstr("[2/8] COPY quickstart-app /app"));
  EXPECT_THAT(r.out, HasSubstr("RUN ls -l /app"));
  EXPECT_THAT(r.out, HasSubstr("hello.py"));
  EXPECT_THAT(r.out, HasSubstr("naming to daytona-"));
  EXPECT_THAT(r.out, Not(HasSubstr("no build needed")));
  EXPECT_THAT(r.out, HasSubstr("Snapshot \"qs-test\" is active after"));
  // The list printed at the end holds it.
  std::size_t list_at = r.out.find("Snapshots on this server (1):");
  ASSERT_NE(list_at, std::string::npos) << r.out;
  EXPECT_THAT(r.out.substr(list_at), ::testing::ContainsRegex("\n  qs-test +active +"));

  // The server agrees, and kept the image under the build ref the program printed.
  cairn::Json snapshot = snapshotJson("qs-test");
  EXPECT_EQ(snapshot.value("state", ""), "active");
  const std::string ref = snapshot["buildInfo"].value("snapshotRef", "");
  ASSERT_THAT(ref, ::testing::StartsWith("daytona-"));
  EXPECT_THAT(r.out, HasSubstr("  image  " + ref + "\n"));
  EXPECT_EQ(snapshot["entrypoint"], cairn::Json::array({"/bin/sh", "/app/entrypoint.sh"}));

  // A sandbox from it has the app, the RUN step's file, the env and the workdir; a command goes
  // through the entrypoint script.
  auto run = cairn::testing::runCairn(
      tmp_->path(), {"--data-dir", data_.string(), "run", "--network", "none", ref, "--", "sh",
                     "-c", "echo \"$GREETING|$APP_ENV|$(pwd)\"; cat BUILD_INFO; ls"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("Hello from a Cairn sandbox|quickstart|/app\n"));
  EXPECT_THAT(run.out, ::testing::ContainsRegex("built 20[0-9-]+T[0-9:]+Z on [a-z0-9_]+\n"));
  EXPECT_THAT(run.out, HasSubstr("entrypoint.sh\nhello.py\n"));
}

TEST_F(QuickstartTest, RunningAgainReplacesTheSnapshotOfThatName) {
  auto first = quickstartOnBusybox("qs-again");
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  const std::string first_id = snapshotJson("qs-again").value("id", "");
  ASSERT_FALSE(first_id.empty());

  auto second = quickstartOnBusybox("qs-again");
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_THAT(second.out, HasSubstr("Deleted the previous snapshot \"qs-again\" (" + first_id));
  // The same Image: still in the store (active at once, or checked again by a job whose log
  // says so) or built again from the cache; the output says which.
  EXPECT_THAT(second.out, ::testing::AnyOf(HasSubstr("(no build needed: the server had built"),
                                           HasSubstr("was built before from this definition"),
                                           HasSubstr("naming to daytona-")));
  cairn::Json again = snapshotJson("qs-again");
  EXPECT_EQ(again.value("state", ""), "active");
  EXPECT_NE(again.value("id", ""), first_id);
  EXPECT_THAT(second.out, HasSubstr("Snapshots on this server (1):"));
}

TEST_F(QuickstartTest, AMissingBaseImageFailsWithTheServersReason) {
  auto r = quickstart(
      {"--name", "qs-nobase", "--base", "cairn.local/missing:1", "--app", CAIRN_QUICKSTART_APP});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.err, HasSubstr("quickstart: Failed to create snapshot. Name: qs-nobase"));
  EXPECT_THAT(r.err, HasSubstr("cairn.local/missing:1"));
  EXPECT_THAT(r.err, HasSubstr("is not in the local store"));
}

TEST_F(QuickstartTest, BadUsageAndMissingSettingsAreClearErrors) {
  auto unknown = quickstart({"--bogus", "x"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("unknown argument \"--bogus\""));
  EXPECT_THAT(unknown.err, HasSubstr("usage: quickstart"));

  auto no_value = quickstart({"--name"});
  EXPECT_EQ(no_value.exit_code, 2);
  EXPECT_THAT(no_value.err, HasSubstr("--name needs a value"));

  auto bad_timeout = quickstart({"--timeout", "soon"});
  EXPECT_EQ(bad_timeout.exit_code, 2);
  EXPECT_THAT(bad_timeout.err, HasSubstr("--timeout must be a number of seconds, got \"soon\""));

  auto no_app = quickstart({"--app", (tmp_->path() / "nowhere").string()});
  EXPECT_EQ(no_app.exit_code, 2);
  EXPECT_THAT(no_app.err, HasSubstr("nowhere\" is not a directory (pass --app DIR)"));

  auto no_key = cairn::testing::runProgram(CAIRN_QUICKSTART_BINARY, tmp_->path(), {"--base", kBase},
                                           {{"DAYTONA_API_URL", url_ + "/api"}});
  EXPECT_EQ(no_key.exit_code, 1);
  EXPECT_THAT(no_key.err, HasSubstr("quickstart: "));
  EXPECT_THAT(no_key.err, HasSubstr("API key"));
}

}  // namespace
