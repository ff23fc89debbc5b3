// /metrics over real HTTP: the snapshot service's series (exportSnapshotMetrics) on a Server on
// 127.0.0.1:0, with the real SnapshotService on an in-memory MetaStore and a scripted builder.
// Builds and pulls are driven through the Daytona routes, as a client would.
#include "cairn/api/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "cairn/api/server.h"
#include "cairn/api/snapshot_routes.h"
#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/common/time.h"
#include "cairn/meta/api_key.h"
#include "cairn/meta/memory_meta_store.h"
#include "cairn/testing/status_matchers.h"
#include "test_client.h"

namespace cairn::api {
namespace {

using ::testing::HasSubstr;
using testing::TestClient;
using testing::TestResponse;

const std::string kDigest = "sha256:" + std::string(64, 'e');

//! What a build does is written in its Dockerfile: "RUN fail" fails, "RUN hang" waits until it
//! is cancelled (or 20 s), anything else succeeds. Pulls of "missing*" fail to resolve, pulls of
//! "slow*" wait for release(); the rest succeed.
class ScriptedBuilder final : public service::SnapshotBuilder {
 public:
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  Result<std::optional<service::BuiltImage>> findBuilt(const std::string&) override {
    return std::optional<service::BuiltImage>();
  }
  Result<service::BuiltImage> build(const service::SnapshotBuildJob& job,
                                    build::LogSink& log) override {
    log.write("#1 " + job.dockerfile + "\n");
    if (job.dockerfile.find("RUN fail") != std::string::npos) {
      return invalidArgument("step 2/2 RUN fail: exit code 1");
    }
    if (job.dockerfile.find("RUN hang") != std::string::npos) {
      for (int i = 0; i < 2000 && !(job.cancel && job.cancel->cancelled()); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      return cancelled("build cancelled");
    }
    return service::BuiltImage{kDigest, 1 << 20, {"/bin/sh"}};
  }
  Result<std::string> resolveDigest(const std::string& image_name) override {
    if (image_name.rfind("missing", 0) == 0) return notFound("manifest unknown: " + image_name);
    return kDigest;
  }
  Result<service::BuiltImage> pull(const std::string& image_name, const std::string& digest,
                                   const std::string&, build::LogSink&) override {
    if (image_name.rfind("slow", 0) == 0) {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(20), [&] { return released_; });
    }
    return service::BuiltImage{digest, 3u << 20, {"/bin/sh"}};
  }
  Status removeImage(const std::string&) override { return okStatus(); }
  Status collectGarbage() override { return okStatus(); }
  Status recover() override { return okStatus(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

//! The value of one series line ("name{labels} value") in a /metrics body; NaN if absent.
double seriesValue(const std::string& text, const std::string& series) {
  std::size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n')
      return std::strtod(text.c_str() + at + series.size(), nullptr);
    at += series.size();
  }
  return std::nan("");
}

std::string buildsSeries(const std::string& kind, const std::string& outcome) {
  return "cairn_builds_total{kind=\"" + kind + "\",outcome=\"" + outcome + "\"}";
}

struct Reply {
  int status = 0;
  std::string body;
  Json json() const {
    Result<Json> j = parseJson(body);
    return j.ok() ? *j : Json();
  }
};

class SnapshotMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("cairn-api-metrics"));
    dir_.emplace(std::move(dir));
    store_ = std::make_unique<meta::MemoryMetaStore>(RealClock::instance());
    meta::Organization org;
    org.name = "metrics";
    ASSERT_OK_AND_ASSIGN(org, store_->createOrganization(org));
    ASSERT_OK_AND_ASSIGN(meta::IssuedApiKey key,
                         meta::issueApiKey(*store_, org.id, "k", meta::allPermissions(), {}));
    key_ = key.key;
  }

  //! Starts the service (with `options` over the defaults below) and the server.
  void start(service::ServiceOptions options, bool start_workers = true,
             std::chrono::milliseconds store_size_max_age = std::chrono::milliseconds(0)) {
    metrics_ = std::make_shared<MetricsRegistry>();
    options.data_dir = dir_->path();
    options.tick_interval = std::chrono::milliseconds(50);
    SnapshotMetricsOptions mo;
    mo.data_dir = dir_->path();
    mo.store_size_max_age = store_size_max_age;
    options.on_build_finished = exportSnapshotMetrics(metrics_, *store_, mo);
    service_ = std::make_unique<service::SnapshotService>(options, *store_, builder_, nullptr,
                                                          RealClock::instance());
    if (start_workers) {
      ASSERT_OK(service_->start());
    }
    Router router;
    auto minter = std::make_shared<CredentialMinter>();
    ASSERT_OK(mountSnapshotRoutes(router, {*store_, *service_, minter, RealClock::instance()}));
    ASSERT_OK_AND_ASSIGN(server_, Server::start(ServerOptions{}, std::move(router), metrics_));
  }

  void TearDown() override {
    builder_.release();
    if (server_) server_->stop();
    server_.reset();
    if (service_) service_->stop();
  }

  Reply call(const std::string& method, const std::string& target, const std::string& body = "") {
    TestClient client(server_->port());
    std::string request = method + " " + target + " HTTP/1.1\r\nHost: cairn.test\r\n";
    request += "Authorization: Bearer " + key_ + "\r\n";
    if (method == "POST") {
      request +=
          "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n";
    }
    request += "\r\n" + body;
    std::optional<TestResponse> r = client.roundTrip(request);
    if (!r) return Reply{-1, ""};
    return Reply{static_cast<int>(r->result_int()), r->body()};
  }

  std::string scrape() {
    TestClient client(server_->port());
    std::optional<TestResponse> r = client.roundTrip("GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_TRUE(r.has_value());
    if (!r) return "";
    EXPECT_EQ(r->result_int(), 200u);
    EXPECT_THAT(std::string(r->base()[boost::beast::http::field::content_type]),
                HasSubstr("text/plain"));
    return r->body();
  }

  //! Scrapes until `series` reads `want` (bounded: 20 s); returns the last body.
  std::string scrapeUntil(const std::string& series, double want) {
    std::string body;
    for (int i = 0; i < 400; ++i) {
      body = scrape();
      if (seriesValue(body, series) == want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return body;
  }

  std::string createBuild(const std::string& name, const std::string& dockerfile) {
    Json body = {
        {"name", name},
        {"buildInfo", {{"dockerfileContent", dockerfile}, {"contextHashes", Json::array()}}}};
    Reply r = call("POST", "/api/snapshots", body.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json().value("id", "");
  }

  std::string createPull(const std::string& name, const std::string& image) {
    Json body = {{"name", name}, {"imageName", image}};
    Reply r = call("POST", "/api/snapshots", body.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json().value("id", "");
  }

  //! Polls GET until the snapshot is in `state` (bounded: 20 s).
  bool waitForState(const std::string& id, const std::string& state) {
    for (int i = 0; i < 400; ++i) {
      if (call("GET", "/api/snapshots/" + id).json().value("state", "") == state) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  std::optional<TempDir> dir_;
  std::unique_ptr<meta::MemoryMetaStore> store_;
  ScriptedBuilder builder_;
  std::shared_ptr<MetricsRegistry> metrics_;
  std::unique_ptr<service::SnapshotService> service_;
  std::unique_ptr<Server> server_;
  std::string key_;
};

TEST_F(SnapshotMetricsTest, BuildsByOutcomeStartAtZeroAndCountSucceededFailedCancelled) {
  start({});
  std::string first = scrape();
  EXPECT_THAT(first, HasSubstr("# TYPE cairn_builds_total counter\n"));
  for (const char* kind : {"build", "pull"}) {
    for (const char* outcome : {"succeeded", "failed", "timed_out", "cancelled"}) {
      EXPECT_EQ(seriesValue(first, buildsSeries(kind, outcome)), 0) << kind << " " << outcome;
    }
  }

  createBuild("ok-1", "FROM base\nRUN true\n");
  createBuild("ok-2", "FROM base\nRUN true 2\n");
  createBuild("broken", "FROM base\nRUN fail\n");
  createPull("pulled", "alpine:3.19");
  createPull("unresolvable", "missing/image:1");
  std::string body = scrapeUntil(buildsSeries("build", "succeeded"), 2);
  EXPECT_EQ(seriesValue(body, buildsSeries("build", "succeeded")), 2) << body;
  body = scrapeUntil(buildsSeries("pull", "failed"), 1);
  EXPECT_EQ(seriesValue(body, buildsSeries("build", "failed")), 1) << body;
  EXPECT_EQ(seriesValue(body, buildsSeries("pull", "succeeded")), 1) << body;
  EXPECT_EQ(seriesValue(body, buildsSeries("pull", "failed")), 1) << body;
  EXPECT_EQ(seriesValue(body, "cairn_snapshots_in_error"), 2) << body;

  // Deleted while it runs: a build (its cancel token fires) and a pull (it finishes later, and
  // that late end is not counted a second time).
  std::string hanging = createBuild("hanging", "FROM base\nRUN hang\n");
  std::string slow = createPull("slow", "slow/image:1");
  ASSERT_TRUE(waitForState(hanging, "building"));
  ASSERT_TRUE(waitForState(slow, "pulling"));
  EXPECT_EQ(call("DELETE", "/api/snapshots/" + hanging).status, 200);
  EXPECT_EQ(call("DELETE", "/api/snapshots/" + slow).status, 200);
  builder_.release();
  body = scrapeUntil(buildsSeries("pull", "cancelled"), 1);
  EXPECT_EQ(seriesValue(body, buildsSeries("build", "cancelled")), 1) << body;
  EXPECT_EQ(seriesValue(body, buildsSeries("pull", "cancelled")), 1) << body;
  // Both jobs end (the deleted snapshots' rows go); nothing more is counted.
  body = scrapeUntil("cairn_jobs_running", 0);
  EXPECT_EQ(seriesValue(body, "cairn_jobs_running"), 0) << body;
  EXPECT_EQ(seriesValue(body, buildsSeries("build", "succeeded")), 2) << body;
  EXPECT_EQ(seriesValue(body, buildsSeries("pull", "succeeded")), 1) << body;
  EXPECT_EQ(seriesValue(body, buildsSeries("build", "failed")), 1) << body;
  EXPECT_EQ(seriesValue(body, buildsSeries("pull", "failed")), 1) << body;
  EXPECT_EQ(seriesValue(body, buildsSeries("build", "timed_out")), 0) << body;
}

TEST_F(SnapshotMetricsTest, ABuildPastItsDeadlineCountsAsTimedOut) {
  service::ServiceOptions options;
  options.deadlines.building = std::chrono::milliseconds(200);
  start(options);
  std::string id = createBuild("slow-build", "FROM base\nRUN hang\n");
  std::string body = scrapeUntil(buildsSeries("build", "timed_out"), 1);
  EXPECT_EQ(seriesValue(body, buildsSeries("build", "timed_out")), 1) << body;
  EXPECT_EQ(seriesValue(body, buildsSeries("build", "failed")), 0) << body;
  Json s = call("GET", "/api/snapshots/" + id).json();
  EXPECT_EQ(s.value("state", ""), "error") << s.dump();
  EXPECT_THAT(s.value("errorReason", ""), HasSubstr("Timeout"));
  // The cancelled build then ends; it is not counted again.
  body = scrapeUntil("cairn_jobs_running", 0);
  EXPECT_EQ(seriesValue(body, buildsSeries("build", "timed_out")), 1) << body;
  EXPECT_EQ(seriesValue(body, buildsSeries("build", "failed")), 0) << body;
}

TEST_F(SnapshotMetricsTest, QueueDepthCountsJobsWaitingForAWorker) {
  start({}, /*start_workers=*/false);
  EXPECT_EQ(seriesValue(scrape(), "cairn_queue_depth"), 0);
  createBuild("queued-1", "FROM base\nRUN true 1\n");
  createBuild("queued-2", "FROM base\nRUN true 2\n");
  createPull("queued-3", "alpine:3.19");
  std::string body = scrape();
  EXPECT_EQ(seriesValue(body, "cairn_queue_depth"), 3) << body;
  EXPECT_EQ(seriesValue(body, "cairn_jobs_running"), 0) << body;
  EXPECT_THAT(body, HasSubstr("# TYPE cairn_queue_depth gauge\n"));

  // One job on this thread: the queue shrinks by one.
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob({"build"}));
  EXPECT_TRUE(ran);
  body = scrape();
  EXPECT_EQ(seriesValue(body, "cairn_queue_depth"), 2) << body;
  EXPECT_EQ(seriesValue(body, buildsSeries("build", "succeeded")), 1) << body;

  // Workers drain the rest.
  ASSERT_OK(service_->start());
  body = scrapeUntil("cairn_queue_depth", 0);
  EXPECT_EQ(seriesValue(body, "cairn_queue_depth"), 0) << body;
}

TEST_F(SnapshotMetricsTest, StoreBytesSumsBlobsAndObjectsOnly) {
  std::filesystem::create_directories(dir_->path() / "blobs/sha256");
  std::filesystem::create_directories(dir_->path() / "objects/bucket/org/ctx");
  std::filesystem::create_directories(dir_->path() / "layers/abc/fs");
  ASSERT_OK(writeFileDurable(dir_->path() / "blobs/sha256/aa", std::string(1000, 'a')));
  ASSERT_OK(
      writeFileDurable(dir_->path() / "objects/bucket/org/ctx/context.tar", std::string(234, 'b')));
  ASSERT_OK(writeFileDurable(dir_->path() / "layers/abc/fs/big", std::string(5000, 'c')));
  std::filesystem::create_symlink(dir_->path() / "layers", dir_->path() / "blobs/link");
  start({});  // max age 0: every scrape walks
  std::string body = scrape();
  EXPECT_EQ(seriesValue(body, "cairn_store_bytes"), 1234) << body;
  ASSERT_OK(writeFileDurable(dir_->path() / "blobs/sha256/bb", std::string(66, 'd')));
  EXPECT_EQ(seriesValue(scrape(), "cairn_store_bytes"), 1300);
}

TEST_F(SnapshotMetricsTest, StoreBytesIsCachedForItsMaxAge) {
  std::filesystem::create_directories(dir_->path() / "blobs/sha256");
  ASSERT_OK(writeFileDurable(dir_->path() / "blobs/sha256/aa", std::string(100, 'a')));
  start({}, true, std::chrono::hours(1));
  EXPECT_EQ(seriesValue(scrape(), "cairn_store_bytes"), 100);
  ASSERT_OK(writeFileDurable(dir_->path() / "blobs/sha256/bb", std::string(50, 'b')));
  // Within the hour the walk is not repeated: the scrape reports the cached value.
  EXPECT_EQ(seriesValue(scrape(), "cairn_store_bytes"), 100);
  EXPECT_EQ(directoryBytes({dir_->path() / "blobs"}), 150u);
}

TEST(CachedReadingTest, ReadsAtMostOncePerMaxAgeAndAlwaysWithZero) {
  std::atomic<int> calls{0};
  auto counting = [&] { return static_cast<double>(++calls); };
  auto cached = cachedReading(counting, std::chrono::hours(1));
  EXPECT_EQ(cached(), 1);
  EXPECT_EQ(cached(), 1);
  EXPECT_EQ(calls.load(), 1);
  auto uncached = cachedReading(counting, std::chrono::milliseconds(0));
  EXPECT_EQ(uncached(), 2);
  EXPECT_EQ(uncached(), 3);
}

TEST(CachedReadingTest, ConcurrentScrapesDoNotWaitForARunningReading) {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool finish = false;
  auto slow = [&] {
    std::unique_lock lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(20), [&] { return finish; });
    return 42.0;
  };
  auto cached = cachedReading(slow, std::chrono::milliseconds(0));
  std::thread first([&] { EXPECT_EQ(cached(), 42); });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return entered; }));
  }
  EXPECT_EQ(cached(), 0);  // the reading in progress is not waited for: the last value (none)
  {
    std::lock_guard lock(mu);
    finish = true;
    cv.notify_all();
  }
  first.join();
}

TEST(DirectoryBytesTest, DeepTreesAndSymlinkedRoots) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("cairn-dir-bytes"));
  // Object keys nest as deep as clients like; the walk keeps one directory open at a time.
  std::filesystem::path deep = dir.path() / "objects";
  for (int i = 0; i < 300; ++i)
    deep /= "d";
  std::filesystem::create_directories(deep);
  ASSERT_OK(writeFileDurable(deep / "context.tar", std::string(7, 'x')));
  ASSERT_OK(writeFileDurable(dir.path() / "objects/top", std::string(3, 'y')));
  EXPECT_EQ(directoryBytes({dir.path() / "objects"}), 10u);
  // A root that is itself a symlink (blobs/ moved to another disk) is followed; links below
  // it are not.
  std::filesystem::create_directory_symlink(dir.path() / "objects", dir.path() / "blobs");
  std::filesystem::create_directory_symlink(dir.path() / "objects", dir.path() / "objects/loop");
  EXPECT_EQ(directoryBytes({dir.path() / "blobs"}), 10u);
}

TEST(DirectoryBytesTest, MissingDirectoriesCountZero) {
  EXPECT_EQ(directoryBytes({"/nonexistent/cairn-metrics-test"}), 0u);
  EXPECT_EQ(directoryBytes({}), 0u);
}

}  // namespace
}  // namespace cairn::api
