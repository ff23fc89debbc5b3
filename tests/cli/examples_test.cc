// The four snapshot examples in examples/ (built from the build tree) run against the SDK's fake
// Daytona server: create (a debianSlim + numpy Image, logs shown), get, list, delete.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/testing/status_matchers.h"
#include "fake_daytona.h"
#include "run_cairn.h"

namespace {

using ::testing::HasSubstr;

class ExamplesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(auto dir, cairn::TempDir::create("cli-examples"));
    tmp_ = std::make_unique<cairn::TempDir>(std::move(dir));
  }

  cairn::testing::CairnRun example(const std::string& name, std::vector<std::string> args = {}) {
    return cairn::testing::runProgram(std::string(CAIRN_EXAMPLES_DIR) + "/" + name, tmp_->path(),
                                      args,
                                      {{"DAYTONA_API_URL", fake_.apiUrl()},
                                       {"DAYTONA_API_KEY", cairn::testing::FakeDaytona::kApiKey}});
  }

  cairn::testing::FakeDaytona fake_;
  std::unique_ptr<cairn::TempDir> tmp_;
};

TEST_F(ExamplesTest, CreateGetListDelete) {
  fake_.setLogChunks({"Step 1/6 : FROM python:3.12\n"});
  auto created = example("create_snapshot", {"numpy-demo"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_THAT(created.out, HasSubstr("Step 1/6 : FROM python:3.12"));
  EXPECT_THAT(created.out, HasSubstr("snapshot numpy-demo is active"));
  auto posts = fake_.requests("POST", "/api/snapshots");
  ASSERT_EQ(posts.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto body, cairn::parseJson(posts[0].body));
  EXPECT_THAT(body["buildInfo"]["dockerfileContent"].get<std::string>(),
              HasSubstr("RUN python -m pip install numpy"));

  auto got = example("get_snapshot", {"numpy-demo"});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_THAT(got.out, HasSubstr("numpy-demo ("));
  EXPECT_THAT(got.out, HasSubstr("active"));

  auto listed = example("list_snapshots", {"1", "10"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_THAT(listed.out, HasSubstr("page 1 of 1, 1 snapshots"));
  EXPECT_THAT(listed.out, HasSubstr("numpy-demo  active"));

  auto deleted = example("delete_snapshot", {"numpy-demo"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(deleted.out, "deleted numpy-demo\n");
  EXPECT_FALSE(fake_.snapshotByName("numpy-demo").has_value());
}

TEST_F(ExamplesTest, ErrorsAreReportedNotThrown) {
  auto missing = example("get_snapshot", {"nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("no such snapshot"));
  EXPECT_EQ(example("delete_snapshot").exit_code, 2);
  EXPECT_EQ(example("list_snapshots", {"x"}).exit_code, 2);
}

}  // namespace
