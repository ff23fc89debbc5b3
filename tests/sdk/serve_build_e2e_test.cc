// The C++ SDK against a real `cairn serve` that builds and pulls for real: create from an Image
// and from a Dockerfile with the build log streamed to onLogs, context upload (single part,
// multipart, and skipped when the object exists, observed through the server's /metrics and
// the object's ETag and LastModified in a signed ListObjectsV2), create from an image name
// pulled from a registry, the whole-operation timeout of spec §0.1 during a slow RUN, failing
// builds, concurrent creates, restarts, quotas, and activate after deactivate.
//
// Each test puts a one-layer busybox-static image, "busybox:e2e", into the data directory's
// catalog before the server starts. Builds mount overlayfs and run crun: root (CI is root),
// label `integration`.
#include <sqlite3.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/common/sigv4.h"
#include "cairn/common/time.h"
#include "cairn/common/xml.h"
#include "cairn/oci/image.h"
#include "cairn/sdk/daytona.h"
#include "cairn/sdk/errors.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/testing/busybox_image.h"
#include "cairn/testing/status_matchers.h"
#include "fake_registry.h"
#include "serve_fixture.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::CairnServe;
using ::cairn::testing::LogCollector;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kBase = "busybox:e2e";
// The S3 routes of `cairn serve` as /metrics labels them.
constexpr const char* kObjectPuts =
    "cairn_http_requests_total{method=\"PUT\",route=\"/s3/{bucket}/{key+}\",status=\"200\"}";
constexpr const char* kObjectPosts =
    "cairn_http_requests_total{method=\"POST\",route=\"/s3/{bucket}/{key+}\",status=\"200\"}";
constexpr const char* kBucketLists =
    "cairn_http_requests_total{method=\"GET\",route=\"/s3/{bucket}/\",status=\"200\"}";

//! The one-layer busybox image: its blobs, as stored in the data dir and served by registries.
struct BaseImage {
  std::string layer;
  std::string layer_media_type;
  std::string config;
  std::string manifest;
};

class ServeBuildE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0)
      GTEST_SKIP() << "builds mount overlayfs and run crun: needs root (CI is root)";
    if (::cairn::testing::busyboxPath() == nullptr) {
      GTEST_SKIP() << "busybox-static is not installed (scripts/install-deps installs it)";
    }
    ASSERT_OK_AND_ASSIGN(TempDir d, TempDir::create("sdk-serve-build-e2e"));
    dir_.emplace(std::move(d));
    data_ = dir_->path() / "data";
    ASSERT_NO_FATAL_FAILURE(storeBaseImage());
    ASSERT_OK_AND_ASSIGN(serve_, CairnServe::start(data_, dir_->path() / "serve.log"));
    daytona_ = serve_->client();
  }
  void TearDown() override {
    if (serve_ != nullptr) expectStopsCleanly(*serve_);
  }

  // busybox-static as one zstd layer, tagged kBase in the catalog the server will open.
  void storeBaseImage() {
    ASSERT_OK(
        ::cairn::testing::storeBusyboxImage(data_, dir_->path() / "rootfs-busybox", {.name = kBase})
            .status());
  }

  // A one-layer busybox image written into the blob store under `store_dir` (not tagged);
  // `marker` is written to /etc/marker, so the layer differs from the base's.
  void makeImage(const fs::path& store_dir, const std::string& name, const std::string& marker,
                 BaseImage* out) {
    ASSERT_OK_AND_ASSIGN(::cairn::testing::OneLayerImage image,
                         ::cairn::testing::storeBusyboxImage(
                             store_dir, dir_->path() / ("rootfs-" + name),
                             {.name = "", .customize = [&marker](const fs::path& root) {
                                return writeFileDurable(root / "etc/marker", marker);
                              }}));
    ASSERT_OK_AND_ASSIGN(auto blobs, store::LocalBlobStore::open(store_dir));
    ASSERT_OK_AND_ASSIGN(out->layer, blobs->readAll(image.layer.digest, 1u << 30));
    out->layer_media_type = image.layer.media_type;
    out->config = image.config_json;
    out->manifest = image.manifest_json;
  }

  fs::path writeFile(const std::string& relative, const std::string& content) {
    fs::path p = dir_->path() / relative;
    fs::create_directories(p.parent_path());
    EXPECT_OK(writeFileDurable(p, content));
    return p;
  }

  double counter(const char* series) {
    Result<double> v = serve_->counter(series);
    EXPECT_OK(v.status());
    return v.ok() ? *v : -1;
  }

  //! An object of the caller's prefix as the server's S3 endpoint lists it.
  struct ListedObject {
    std::string key;
    std::string etag;
    std::string last_modified;
    std::uint64_t size = 0;
  };

  //! ListObjectsV2 over the organization's prefix, signed with fresh push-access credentials
  //! (the same way to the objects as the SDK's, independent of how the server stores them).
  std::vector<ListedObject> contextObjects() {
    auto http = std::make_shared<sdk::HttpClient>();
    ObjectStorageApi api(makeApiConnection(serve_->apiUrl(), serve_->apiKey(), "", "", http));
    StorageAccess access = api.getPushAccess();
    std::string host = serve_->baseUrl().substr(7);  // after "http://"
    std::string path =
        access.storageUrl.substr(serve_->baseUrl().size()) + "/" + access.bucket + "/";
    std::string query =
        "list-type=2&max-keys=1000&prefix=" + sigv4::uriEncode(access.organizationId + "/", true);
    sigv4::RequestView req{
        "GET", path, query, {{"host", host}}, std::string(sigv4::kEmptyPayloadSha256)};
    Result<sigv4::SignedRequest> signed_req =
        sigv4::signRequest(req, {access.accessKey, access.secret, access.sessionToken},
                           {.region = access.region}, RealClock::instance().now());
    EXPECT_OK(signed_req.status());
    if (!signed_req.ok()) return {};
    sdk::HttpRequest list{.method = "GET",
                          .url = serve_->baseUrl() + path + "?" + query,
                          .headers = signed_req->headers,
                          .timeout = std::chrono::seconds(30)};
    Result<sdk::HttpResponse> resp = http->send(list);
    EXPECT_OK(resp.status());
    if (!resp.ok()) return {};
    EXPECT_EQ(resp->status, 200) << resp->body;
    std::vector<ListedObject> out;
    for (std::string_view contents : xmlElements(resp->body, "Contents")) {
      ListedObject o;
      o.key = xmlElementText(contents, "Key").value_or("");
      o.etag = xmlElementText(contents, "ETag").value_or("");
      o.last_modified = xmlElementText(contents, "LastModified").value_or("");
      o.size = std::stoull(xmlElementText(contents, "Size").value_or("0"));
      out.push_back(std::move(o));
    }
    return out;
  }

  std::string contextKey(const std::string& hash) {
    ObjectStorageApi api(makeApiConnection(serve_->apiUrl(), serve_->apiKey(), "", "",
                                           std::make_shared<sdk::HttpClient>()));
    return api.getPushAccess().organizationId + "/" + hash + "/context.tar";
  }

  //! Polls get() until the snapshot reaches `state` (bounded).
  Snapshot waitForState(const std::string& name, const std::string& state) {
    Snapshot s = daytona_->snapshot.get(name);
    for (int i = 0; i < 1200 && s.state.str() != state; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      s = daytona_->snapshot.get(name);
    }
    return s;
  }

  std::optional<TempDir> dir_;
  fs::path data_;
  std::unique_ptr<CairnServe> serve_;
  std::unique_ptr<Daytona> daytona_;
};

TEST_F(ServeBuildE2eTest, CreateFromImageStreamsTheRealBuildLogBeforeReturning) {
  // $((…)) makes each step's output differ from its command line in the log.
  Image image = Image::base(kBase).runCommands("echo first-$((20+1))", "echo second-$((40+2))");
  LogCollector logs;
  Snapshot s = daytona_->snapshot.create({.name = "streamed", .image = image}, logs.options(300));
  EXPECT_EQ(s.state.str(), "active");
  EXPECT_EQ(s.name, "streamed");
  EXPECT_EQ(s.imageName, "");
  ASSERT_TRUE(s.buildInfo.has_value());
  EXPECT_EQ(s.buildInfo->dockerfileContent, image.dockerfile());
  EXPECT_THAT(s.buildInfo->contextHashes, ::testing::IsEmpty());
  ASSERT_TRUE(s.entrypoint.has_value());
  EXPECT_THAT(*s.entrypoint, ElementsAre("sleep", "infinity"));  // §5.5 default
  ASSERT_TRUE(s.size.has_value());
  EXPECT_GT(*s.size, 0);
  EXPECT_FALSE(s.errorReason.has_value());

  // Everything below arrived through onLogs before create returned, in the build's order.
  std::vector<std::string> lines = logs.lines();
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines.front(), "Creating snapshot streamed (pending)");
  EXPECT_EQ(lines.back(), "Created snapshot streamed (active)");
  std::string text = logs.text();
  std::size_t first = text.find("first-21");
  std::size_t second = text.find("second-42");
  ASSERT_NE(first, std::string::npos) << text;
  ASSERT_NE(second, std::string::npos) << text;
  EXPECT_LT(first, second) << text;
  EXPECT_LT(second, text.find("Created snapshot streamed (active)")) << text;

  // The persisted log (SnapshotService::logs, not following) holds the same output.
  std::string persisted;
  daytona_->snapshot.logs("streamed", false, [&](std::string_view c) { persisted += c; });
  EXPECT_THAT(persisted, HasSubstr("first-21"));
  EXPECT_THAT(persisted, HasSubstr("second-42"));

  // get by name and by id agree with what create returned.
  Snapshot by_name = daytona_->snapshot.get("streamed");
  EXPECT_EQ(by_name.id, s.id);
  EXPECT_EQ(by_name.state.str(), "active");
  EXPECT_EQ(daytona_->snapshot.get(s.id).name, "streamed");

  // Removing it by the Snapshot object frees the name.
  daytona_->snapshot.remove(s);
  EXPECT_THROW(daytona_->snapshot.get("streamed"), DaytonaNotFoundError);
}

TEST_F(ServeBuildE2eTest, ImageDslContextEnvAndWorkdirReachTheBuild) {
  writeFile("app/a.txt", "alpha-file\n");
  writeFile("app/sub/b.txt", "beta-file\n");
  Image image =
      Image::base(kBase)
          .addLocalDir((dir_->path() / "app").string(), "/srv/app")
          .env(std::vector<std::pair<std::string, std::string>>{{"GREETING", "greetings"}})
          .workdir("/srv/app")
          .runCommands("echo \"$GREETING from $(pwd)\" && cat a.txt sub/b.txt");
  LogCollector logs;
  Snapshot s = daytona_->snapshot.create({.name = "dsl", .image = image}, logs.options(300));
  EXPECT_EQ(s.state.str(), "active");
  std::string text = logs.text();
  EXPECT_THAT(text, HasSubstr("greetings from /srv/app"));
  std::size_t a = text.find("alpha-file");
  ASSERT_NE(a, std::string::npos) << text;
  EXPECT_LT(a, text.find("beta-file")) << text;
  ASSERT_TRUE(s.buildInfo.has_value());
  EXPECT_EQ(s.buildInfo->contextHashes.size(), 1u);

  // The persisted log: whole, followed (ends because the build is over), and from an offset.
  std::string whole;
  daytona_->snapshot.logs("dsl", false, [&](std::string_view c) { whole += c; });
  ASSERT_THAT(whole, HasSubstr("greetings from /srv/app"));
  std::string followed;
  daytona_->snapshot.logs("dsl", true, [&](std::string_view c) { followed += c; });
  EXPECT_EQ(followed, whole);
  std::size_t from = whole.find("greetings from");
  std::string tail;
  daytona_->snapshot.logs(
      "dsl", false, [&](std::string_view c) { tail += c; }, from);
  EXPECT_EQ(tail, whole.substr(from));
}

TEST_F(ServeBuildE2eTest, FailingRunStepEndsCreateWithTheStepAndItsOutput) {
  Image image =
      Image::base(kBase).runCommands("echo partial-$((3*3)) && echo to-stderr >&2 && exit 3");
  LogCollector logs;
  std::string message;
  try {
    daytona_->snapshot.create({.name = "broken-build", .image = image}, logs.options(300));
    ADD_FAILURE() << "a RUN exiting with 3 built";
  } catch (const DaytonaError& e) {
    EXPECT_EQ(typeid(e), typeid(DaytonaError));  // the base class, as the TS SDK (§3.3)
    message = e.what();
  }
  EXPECT_THAT(message,
              ::testing::StartsWith("Failed to create snapshot. Name: broken-build Reason: "));
  // §0.4: the reason names the failing Dockerfile line and the exit code. (It does not carry
  // the step's last output lines, which §0.4 gives as an example; the log below has them.)
  EXPECT_THAT(message, HasSubstr("line 2: RUN"));
  EXPECT_THAT(message, HasSubstr("exit code 3"));
  Snapshot s = daytona_->snapshot.get("broken-build");
  EXPECT_THAT(s.state.str(), ::testing::AnyOf("error", "build_failed"));
  ASSERT_TRUE(s.errorReason.has_value());
  EXPECT_THAT(message, HasSubstr(*s.errorReason));
  // The streamed log showed the output and the error before create gave up.
  std::string text = logs.text();
  EXPECT_THAT(text, HasSubstr("partial-9"));
  EXPECT_THAT(text, HasSubstr("to-stderr"));
  EXPECT_THAT(text, HasSubstr("ERROR"));
  EXPECT_THAT(logs.lines().back(), ::testing::Not(HasSubstr("Created snapshot")));
}

TEST_F(ServeBuildE2eTest, ConcurrentCreatesOnOneClientKeepTheirLogsApart) {
  // Three different builds and a fourth identical to the first, all at once from one Daytona
  // (its methods are thread-safe): each create sees only its own snapshot's log.
  const std::vector<std::string> markers = {"red", "green", "blue", "red"};
  std::vector<LogCollector> logs(markers.size());
  std::vector<std::optional<Snapshot>> results(markers.size());
  std::vector<std::string> errors(markers.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < markers.size(); ++i) {
    threads.emplace_back([&, i] {
      try {
        results[i] =
            daytona_->snapshot.create({.name = "parallel-" + std::to_string(i),
                                       .image = Image::base(kBase).runCommands(
                                           "echo colour-" + markers[i] + "-$((1+1))", "sleep 1")},
                                      logs[i].options(300));
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads)
    t.join();
  for (std::size_t i = 0; i < markers.size(); ++i) {
    SCOPED_TRACE("parallel-" + std::to_string(i));
    EXPECT_EQ(errors[i], "");
    ASSERT_TRUE(results[i].has_value());
    EXPECT_EQ(results[i]->state.str(), "active");
    EXPECT_EQ(logs[i].lines().back(),
              "Created snapshot parallel-" + std::to_string(i) + " (active)");
    for (std::string other : {"red", "green", "blue"}) {
      bool found = logs[i].text().find("colour-" + other + "-2") != std::string::npos;
      // Of the two identical definitions (0 and 3) one may wait for the other's build instead
      // of running its own; its log then has no step output: each snapshot keeps its own log
      // (§1.8).
      if (other != markers[i]) {
        EXPECT_FALSE(found) << other << " in " << logs[i].text();
      } else if (i != 0 && i != 3) {
        EXPECT_TRUE(found) << other << " missing from " << logs[i].text();
      }
    }
  }
  // The identical definitions share the build ref (§5.3), and one of them ran the build.
  EXPECT_TRUE(logs[0].text().find("colour-red-2") != std::string::npos ||
              logs[3].text().find("colour-red-2") != std::string::npos);
  ASSERT_TRUE(results[0]->buildInfo.has_value() && results[3]->buildInfo.has_value());
  EXPECT_EQ(results[0]->buildInfo->snapshotRef, results[3]->buildInfo->snapshotRef);
  EXPECT_EQ(daytona_->snapshot.list().total, 4);
}

TEST_F(ServeBuildE2eTest, DockerfileContextIsUploadedOnceAndSkippedWhenItExists) {
  writeFile("ctx/greeting.txt", "hello from the context\n");
  fs::path dockerfile =
      writeFile("ctx/Dockerfile", std::string("FROM ") + kBase +
                                      "\nCOPY greeting.txt /greeting.txt\nRUN cat /greeting.txt\n");
  const double puts_before = counter(kObjectPuts);
  const double lists_before = counter(kBucketLists);
  LogCollector logs;
  Snapshot first = daytona_->snapshot.create(
      {.name = "from-dockerfile", .image = Image::fromDockerfile(dockerfile.string())},
      logs.options(300));
  EXPECT_EQ(first.state.str(), "active");
  ASSERT_TRUE(first.buildInfo.has_value());
  ASSERT_EQ(first.buildInfo->contextHashes.size(), 1u);
  EXPECT_THAT(logs.text(), HasSubstr("hello from the context"));
  // One existence check, one PutObject: the context went up as a single part.
  EXPECT_EQ(counter(kBucketLists), lists_before + 1);
  EXPECT_EQ(counter(kObjectPuts), puts_before + 1);
  EXPECT_EQ(counter(kObjectPosts), 0);  // no multipart
  std::vector<ListedObject> objects = contextObjects();
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0].key, contextKey(first.buildInfo->contextHashes[0]));
  EXPECT_GT(objects[0].size, 0u);

  // An identical context: the SDK finds the object (ListObjectsV2) and skips the upload; the
  // build ref is the same, so the snapshot is active at once (§5.3).
  const double lists_mid = counter(kBucketLists);  // contextObjects() lists too
  Snapshot second = daytona_->snapshot.create(
      {.name = "same-context", .image = Image::fromDockerfile(dockerfile.string())});
  EXPECT_EQ(second.state.str(), "active");
  ASSERT_TRUE(second.buildInfo.has_value());
  EXPECT_EQ(second.buildInfo->contextHashes, first.buildInfo->contextHashes);
  EXPECT_EQ(second.buildInfo->snapshotRef, first.buildInfo->snapshotRef);
  EXPECT_EQ(counter(kBucketLists), lists_mid + 1);
  EXPECT_EQ(counter(kObjectPuts), puts_before + 1);  // unchanged: skipped
  // The object is the one the first create wrote: same ETag, same LastModified.
  std::vector<ListedObject> after = contextObjects();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].key, objects[0].key);
  EXPECT_EQ(after[0].etag, objects[0].etag);
  EXPECT_EQ(after[0].last_modified, objects[0].last_modified);

  // A changed file is a new context: uploaded again, built again.
  writeFile("ctx/greeting.txt", "hello again\n");
  LogCollector changed_logs;
  Snapshot third = daytona_->snapshot.create(
      {.name = "changed-context", .image = Image::fromDockerfile(dockerfile.string())},
      changed_logs.options(300));
  EXPECT_EQ(third.state.str(), "active");
  EXPECT_EQ(counter(kObjectPuts), puts_before + 2);
  EXPECT_THAT(changed_logs.text(), HasSubstr("hello again"));
  EXPECT_EQ(contextObjects().size(), 2u);
}

TEST_F(ServeBuildE2eTest, LargeContextGoesUpInParts) {
  // 6 MiB of incompressible bytes: over the 5 MiB PutObject limit of §2.2, so two parts.
  std::string big(6u << 20, '\0');
  std::mt19937 rng(42);
  for (char& c : big)
    c = static_cast<char>(rng());
  fs::path file = writeFile("big/big.bin", big);
  Image image = Image::base(kBase)
                    .addLocalFile(file.string(), "/data/big.bin")
                    .runCommands("stat -c size=%s /data/big.bin");
  LogCollector logs;
  Snapshot s = daytona_->snapshot.create({.name = "multipart", .image = image}, logs.options(300));
  EXPECT_EQ(s.state.str(), "active");
  // The build saw the whole file.
  EXPECT_THAT(logs.text(), HasSubstr("size=6291456"));
  // Initiate + complete are POSTs on the object; each part is a PUT.
  EXPECT_EQ(counter(kObjectPosts), 2);
  EXPECT_EQ(counter(kObjectPuts), 2);
  ASSERT_TRUE(s.buildInfo.has_value());
  ASSERT_EQ(s.buildInfo->contextHashes.size(), 1u);
  std::vector<ListedObject> objects = contextObjects();
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0].key, contextKey(s.buildInfo->contextHashes[0]));
  EXPECT_GT(objects[0].size, big.size());  // the tar: file plus headers
}

TEST_F(ServeBuildE2eTest, WholeOperationTimeoutExpiresWhileTheBuildRuns) {
  Image image = Image::base(kBase).runCommands("echo sleeping-$((6*7))", "sleep 300");
  LogCollector logs;
  try {
    daytona_->snapshot.create({.name = "slow", .image = image}, logs.options(5));
    FAIL() << "create returned although the build sleeps for 300 s";
  } catch (const DaytonaTimeoutError& e) {
    EXPECT_STREQ(e.what(),
                 "Failed to create snapshot slow: timed out after 5 s (the server may still be "
                 "building it; check with get)");
  }
  ASSERT_FALSE(logs.lines().empty());
  EXPECT_EQ(logs.lines().front(), "Creating snapshot slow (pending)");
  // The deadline is the client's: the server is still working on it (§0.1), and the build goes
  // on to its sleeping step (on a loaded machine the job may still have been queued at expiry).
  Snapshot s = daytona_->snapshot.get("slow");
  EXPECT_THAT(s.state.str(), ::testing::AnyOf("pending", "building"));
  std::string persisted;
  for (int i = 0; i < 600 && persisted.find("sleeping-42") == std::string::npos; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    persisted.clear();
    daytona_->snapshot.logs("slow", false, [&](std::string_view c) { persisted += c; });
  }
  EXPECT_THAT(persisted, HasSubstr("sleeping-42"));
  EXPECT_EQ(daytona_->snapshot.get("slow").state.str(), "building");
  // Deleting a building snapshot cancels the build and frees the name.
  daytona_->snapshot.remove("slow");
  EXPECT_THROW(daytona_->snapshot.get("slow"), DaytonaNotFoundError);
}

TEST_F(ServeBuildE2eTest, RemovingASnapshotWhileItsCreatePollsIsNotFound) {
  // §3.3: a 404 while polling ends create with DaytonaNotFoundError.
  Image image = Image::base(kBase).runCommands("sleep 300");
  std::string error;
  bool not_found = false;
  std::thread creator([&] {
    try {
      daytona_->snapshot.create({.name = "doomed", .image = image}, {.timeout = 120});
      error = "create returned";
    } catch (const DaytonaNotFoundError& e) {
      not_found = true;
      error = e.what();
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  Snapshot s;
  for (int i = 0; i < 1200; ++i) {
    try {
      s = daytona_->snapshot.get("doomed");
      if (s.state.str() == "building") break;
    } catch (const DaytonaNotFoundError&) {
      // not posted yet
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(s.state.str(), "building");
  daytona_->snapshot.remove("doomed");
  creator.join();
  EXPECT_TRUE(not_found) << error;
  EXPECT_EQ(error, "Snapshot doomed not found");
}

TEST_F(ServeBuildE2eTest, SnapshotsAndLogsOutliveARestart) {
  LogCollector logs;
  Snapshot before = daytona_->snapshot.create(
      {.name = "durable", .image = Image::base(kBase).runCommands("echo kept-$((5+5))")},
      logs.options(300));
  ASSERT_EQ(before.state.str(), "active");
  ASSERT_OK(serve_->stop().status());
  Result<std::unique_ptr<CairnServe>> again =
      CairnServe::start(data_, dir_->path() / "serve-again.log");
  ASSERT_OK(again.status());
  serve_ = std::move(*again);
  // Same key (from the data dir), a new port: a new client.
  daytona_ = serve_->client();
  Snapshot after = daytona_->snapshot.get("durable");
  EXPECT_EQ(after.id, before.id);
  EXPECT_EQ(after.state.str(), "active");
  EXPECT_EQ(after.createdAt, before.createdAt);
  std::string persisted;
  daytona_->snapshot.logs("durable", true, [&](std::string_view c) { persisted += c; });
  EXPECT_THAT(persisted, HasSubstr("kept-10"));
  // And the build is still known: the same definition is active at once.
  Snapshot twin = daytona_->snapshot.create(
      {.name = "durable-twin", .image = Image::base(kBase).runCommands("echo kept-$((5+5))")});
  EXPECT_EQ(twin.state.str(), "active");
  ASSERT_TRUE(twin.buildInfo.has_value() && before.buildInfo.has_value());
  EXPECT_EQ(twin.buildInfo->snapshotRef, before.buildInfo->snapshotRef);
}

TEST_F(ServeBuildE2eTest, CreateFromImageNamePullsFromARegistry) {
  // An image the server does not have locally (its layer differs from busybox:e2e's).
  BaseImage remote;
  ASSERT_NO_FATAL_FAILURE(
      makeImage(dir_->path() / "registry-store", "remote", "pulled\n", &remote));
  registry::testing::FakeRegistry registry;
  registry.putBlob(remote.layer);
  registry.putBlob(remote.config);
  registry.putManifest("tools/busybox", "1.36", std::string(oci::kMediaTypeOciManifest),
                       remote.manifest);
  std::string image_name = registry.host() + "/tools/busybox:1.36";
  LogCollector logs;
  Snapshot s = daytona_->snapshot.create({.name = "pulled",
                                          .image = image_name,
                                          .resources = Resources{.cpu = 2, .memory = 2, .disk = 5},
                                          .entrypoint = {"sh", "-c", "sleep infinity"}},
                                         logs.options(300));
  EXPECT_EQ(s.state.str(), "active");
  EXPECT_EQ(s.imageName, image_name);
  EXPECT_EQ(s.cpu, 2);
  EXPECT_EQ(s.mem, 2);
  EXPECT_EQ(s.disk, 5);
  ASSERT_TRUE(s.entrypoint.has_value());
  EXPECT_THAT(*s.entrypoint, ElementsAre("sh", "-c", "sleep infinity"));
  ASSERT_TRUE(s.size.has_value());
  EXPECT_GT(*s.size, 0);
  EXPECT_FALSE(s.buildInfo.has_value());
  ASSERT_FALSE(logs.lines().empty());
  EXPECT_EQ(logs.lines().front(), "Creating snapshot pulled (pending)");
  EXPECT_EQ(logs.lines().back(), "Created snapshot pulled (active)");
  EXPECT_GE(registry.blob_gets.load(), 2);  // config and layer came from the registry
}

TEST_F(ServeBuildE2eTest, SnapshotQuotaIsAValidationError) {
  ASSERT_OK(serve_->stop().status());
  Result<std::unique_ptr<CairnServe>> s =
      CairnServe::start(data_, dir_->path() / "serve-quota.log", {"--max-snapshots", "1"});
  ASSERT_OK(s.status());
  serve_ = std::move(*s);
  daytona_ = serve_->client();
  Snapshot first = daytona_->snapshot.create(
      {.name = "only", .image = Image::base(kBase).runCommands("echo one")}, {.timeout = 300});
  ASSERT_EQ(first.state.str(), "active");
  try {
    daytona_->snapshot.create(
        {.name = "one-too-many", .image = Image::base(kBase).runCommands("echo two")});
    ADD_FAILURE() << "a second snapshot fit in a quota of 1";
  } catch (const DaytonaValidationError& e) {
    EXPECT_EQ(e.statusCode(), 400);
    EXPECT_STREQ(e.what(), "Snapshot quota exceeded. Maximum allowed: 1");
  }
  EXPECT_THROW(daytona_->snapshot.get("one-too-many"), DaytonaNotFoundError);
  // Removing the first makes room at once.
  daytona_->snapshot.remove("only");
  Snapshot second = daytona_->snapshot.create(
      {.name = "one-too-many", .image = Image::base(kBase).runCommands("echo two")},
      {.timeout = 300});
  EXPECT_EQ(second.state.str(), "active");
}

TEST_F(ServeBuildE2eTest, DeactivateThenActivateAfterTheCooldown) {
  Snapshot s = daytona_->snapshot.create(
      {.name = "toggled", .image = Image::base(kBase).runCommands("echo built")}, {.timeout = 300});
  ASSERT_EQ(s.state.str(), "active");
  try {
    daytona_->snapshot.activate(s);
    ADD_FAILURE() << "activating an active snapshot succeeded";
  } catch (const DaytonaValidationError& e) {
    EXPECT_EQ(std::string(e.what()), "Snapshot " + s.id + " is already active");
  }
  daytona_->snapshot.deactivate("toggled");
  EXPECT_EQ(daytona_->snapshot.get("toggled").state.str(), "inactive");
  EXPECT_THROW(daytona_->snapshot.activate(s), DaytonaValidationError);  // cooldown (§1.9)

  // `cairn serve` has no flag for the 10-minute cooldown: age the row instead, as if the
  // minutes had passed (meta.db is SQLite in WAL mode; the server reads it on every request).
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((data_ / "meta.db").c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  std::string sql =
      "UPDATE snapshots SET updated_at = updated_at - 660000 WHERE id = '" + s.id + "'";
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err != nullptr ? err : "");
  sqlite3_free(err);
  EXPECT_EQ(sqlite3_changes(db), 1);
  sqlite3_close(db);

  Snapshot activated = daytona_->snapshot.activate("toggled");
  EXPECT_EQ(activated.id, s.id);
  EXPECT_EQ(activated.state.str(), "pending");
  // The image is still built, so the pipeline makes it active again without a rebuild.
  EXPECT_EQ(waitForState("toggled", "active").state.str(), "active");
}

}  // namespace
}  // namespace cairn
