// The official Daytona TypeScript SDK (@daytonaio/sdk 0.218.0, tests/node/compat/) against the
// snapshot routes and the S3 endpoint over real HTTP. The build engine is replaced by a fake
// that lists the context it was given into the build log (so the upload → context assembly →
// log stream path is checked end to end) and then succeeds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "cairn/api/s3.h"
#include "cairn/api/server.h"
#include "cairn/api/snapshot_routes.h"
#include "cairn/common/fs.h"
#include "cairn/meta/api_key.h"
#include "cairn/meta/sqlite_meta_store.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::api {
namespace {

const std::string kSourceDir = CAIRN_SOURCE_DIR;
const std::string kNodeModules = kSourceDir + "/tests/node/node_modules";

std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

class ListingBuilder final : public service::SnapshotBuilder {
 public:
  Result<std::optional<service::BuiltImage>> findBuilt(const std::string& ref) override {
    std::lock_guard lock(mu_);
    auto it = built_.find(ref);
    if (it == built_.end()) return std::optional<service::BuiltImage>();
    return std::optional<service::BuiltImage>(it->second);
  }
  Result<service::BuiltImage> build(const service::SnapshotBuildJob& job,
                                    build::LogSink& log) override {
    log.write("#1 [1/3] FROM alpine:3.19\n");
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(job.context_dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file()) {
        log.write("context file " + it->path().filename().string() + " " +
                  std::to_string(it->file_size()) + "\n");
      }
    }
    // Long enough for the SDK to see `building` and open the log stream.
    std::this_thread::sleep_for(std::chrono::seconds(3));
    log.write("#3 DONE 0.1s\n");
    service::BuiltImage image{"sha256:" + std::string(64, 'c'), 5 << 20, {"/bin/sh"}};
    std::lock_guard lock(mu_);
    built_[job.snapshot_ref] = image;
    return image;
  }
  Result<std::string> resolveDigest(const std::string&) override {
    return "sha256:" + std::string(64, 'd');
  }
  Result<service::BuiltImage> pull(const std::string&, const std::string& digest,
                                   const std::string& tag, build::LogSink&) override {
    service::BuiltImage image{digest, 3 << 20, {"/bin/sh"}};
    std::lock_guard lock(mu_);
    built_[tag] = image;
    return image;
  }
  Status removeImage(const std::string&) override { return okStatus(); }
  Status collectGarbage() override { return okStatus(); }
  Status recover() override { return okStatus(); }

 private:
  std::mutex mu_;
  std::map<std::string, service::BuiltImage> built_;
};

TEST(DaytonaSdkCompatTest, CreateGetListDeleteWithUploadsAndLogs) {
  ASSERT_TRUE(std::filesystem::is_directory(kNodeModules + "/@daytonaio/sdk"))
      << kNodeModules << " lacks @daytonaio/sdk: run scripts/install-deps (npm ci in tests/node)";
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("cairn-compat"));
  const Clock& clock = RealClock::instance();
  ASSERT_OK_AND_ASSIGN(auto store, meta::SqliteMetaStore::open(dir.path() / "meta.db", clock));
  ASSERT_OK_AND_ASSIGN(std::optional<meta::IssuedApiKey> key,
                       meta::bootstrapInitialApiKey(*store, "compat"));
  ASSERT_TRUE(key.has_value());
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<ObjectStore> objects,
                       openFsObjectStore(dir.path() / "objects"));
  ObjectStoreContextReader contexts(objects, "daytona-volume-builds");
  ListingBuilder builder;
  service::ServiceOptions options;
  options.data_dir = dir.path();
  options.tick_interval = std::chrono::milliseconds(100);
  service::SnapshotService service(options, *store, builder, &contexts, clock);
  ASSERT_OK(service.start());

  auto minter = std::make_shared<CredentialMinter>(clock);
  Router router;
  ASSERT_OK(mountSnapshotRoutes(router, {*store, service, minter, clock}));
  ASSERT_OK(mountS3(router, S3Options{}, objects, minter));
  ServerOptions server_options;
  server_options.io_threads = 4;
  ASSERT_OK_AND_ASSIGN(auto server, Server::start(server_options, std::move(router)));

  std::string cmd = "CAIRN_API_URL=" + shellQuote("http://" + server->address() + "/api") +
                    " CAIRN_API_KEY=" + shellQuote(key->key) +
                    " NODE_MODULES=" + shellQuote(kNodeModules) +
                    " NODE_NO_WARNINGS=1 timeout 240 node " +
                    shellQuote(kSourceDir + "/tests/node/compat/daytona_compat.js") + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe))
    out.append(buf, n);
  int rc = ::pclose(pipe);
  server->stop();
  service.stop();
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("OK create(imageName) | create(Image with local files, "
                                        "onLogs, multipart) | get list | 409 404 | delete"))
      << out;
}

}  // namespace
}  // namespace cairn::api
