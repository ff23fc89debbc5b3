// `cairn build` (and the other commands that write blobs no tag reaches yet) hold the data
// dir's GC lock shared for their whole run, so a `cairn serve` on the same data dir defers its
// garbage collection; while a GC pass holds the lock, the command waits and says why.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <optional>
#include <thread>

#include "cairn/common/fs.h"
#include "cairn/oci/catalog.h"
#include "cairn/oci/image.h"
#include "cairn/service/store_gc.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/testing/status_matchers.h"
#include "run_cairn.h"

namespace cairn::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string toLower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

TEST(GcGuardTest, BuildWaitsForARunningGcPassAndThenBuilds) {
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("cairn-gc-guard"));
  const fs::path data = tmp.path() / "data";
  fs::create_directories(data);
  const fs::path ctx = tmp.path() / "ctx";
  fs::create_directories(ctx);
  ASSERT_OK(writeFileDurable(ctx / "a.txt", "a\n"));
  ASSERT_OK(writeFileDurable(ctx / "Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\n"));

  // A GC pass in progress (the server's lock, held exclusively), released a second later.
  ASSERT_OK_AND_ASSIGN(service::StoreGcLock pass, service::StoreGcLock::tryExclusive(data));
  std::optional<service::StoreGcLock> held(std::move(pass));
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    held.reset();
  });
  auto r = testing::runCairn(tmp.path(), {"--data-dir", data.string(), "build", "--progress",
                                          "plain", "-t", "guarded:1", ctx.string()});
  release.join();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("waiting for garbage collection on this data directory"));

  // No build is running now: a GC pass gets the lock at once.
  EXPECT_OK(service::StoreGcLock::tryExclusive(data).status());
}

// `cairn image prune` frees what no tag reaches (an untagged image's manifest, config and own
// layer) and keeps what a tagged image uses; it refuses while a build holds the data dir or a
// `cairn serve` runs on it (the server collects garbage itself).
TEST(GcGuardTest, ImagePruneFreesUntaggedImagesAndRefusesWhileTheDataDirIsInUse) {
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("cairn-prune"));
  const fs::path data = tmp.path() / "data";
  const fs::path ctx = tmp.path() / "ctx";
  fs::create_directories(ctx);
  ASSERT_OK(writeFileDurable(ctx / "a.txt", "a\n"));
  ASSERT_OK(writeFileDurable(ctx / "b.txt", "b\n"));
  ASSERT_OK(writeFileDurable(ctx / "A.Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\n"));
  ASSERT_OK(writeFileDurable(ctx / "B.Dockerfile", "FROM scratch\nCOPY b.txt /b.txt\n"));
  auto cairn = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--data-dir", data.string()});
    return testing::runCairn(tmp.path(), args);
  };
  for (const char* name : {"A", "B"}) {
    auto built = cairn({"build", "--progress", "plain", "-f",
                        (ctx / (std::string(name) + ".Dockerfile")).string(), "-t",
                        toLower(name) + ":1", ctx.string()});
    ASSERT_EQ(built.exit_code, 0) << built.err;
  }
  auto digestsOf = [&](const std::string& name) {
    std::vector<Digest> out;
    auto blobs = store::LocalBlobStore::open(data);
    auto catalog = oci::ImageCatalog::open(data);
    EXPECT_TRUE(blobs.ok() && catalog.ok());
    auto entry = (*catalog)->get(name);
    EXPECT_TRUE(entry.ok()) << entry.status();
    auto image = oci::loadImage(**blobs, entry->descriptor);
    EXPECT_TRUE(image.ok()) << image.status();
    out.push_back(entry->descriptor.digest);
    out.push_back(image->manifest.config.digest);
    for (const auto& l : image->manifest.layers)
      out.push_back(l.digest);
    return out;
  };
  const std::vector<Digest> a = digestsOf("docker.io/library/a:1");
  const std::vector<Digest> b = digestsOf("docker.io/library/b:1");
  auto rm = cairn({"image", "rm", "a:1"});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;

  {  // a build on the data dir (it holds gc.lock shared): prune refuses and removes nothing
    ASSERT_OK_AND_ASSIGN(service::StoreGcLock build, service::StoreGcLock::shared(data));
    auto busy = cairn({"image", "prune", "--keep-cache-gb", "0"});
    EXPECT_NE(busy.exit_code, 0);
    EXPECT_THAT(busy.err, HasSubstr("prune again when it has finished"));
  }
  {  // a running server (its worker lock is held): prune refuses
    fs::create_directories(data / "work" / "workers");
    UniqueFd worker(::open((data / "work" / "workers" / "w1.lock").c_str(),
                           O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(worker.valid());
    ASSERT_EQ(::flock(worker.get(), LOCK_EX), 0);
    auto serving = cairn({"image", "prune"});
    EXPECT_NE(serving.exit_code, 0);
    EXPECT_THAT(serving.err, HasSubstr("cairn serve is running"));
  }
  ASSERT_OK_AND_ASSIGN(auto blobs, store::LocalBlobStore::open(data));
  for (const Digest& d : a)
    EXPECT_TRUE(blobs->exists(d)) << d.str() << " removed by a refused prune";

  // Blobs younger than the GC's grace period stay: age them.
  for (const auto& e : fs::recursive_directory_iterator(data / "blobs")) {
    if (e.is_regular_file()) {
      struct timespec old[2] = {{1, 0}, {1, 0}};
      ::utimensat(AT_FDCWD, e.path().c_str(), old, AT_SYMLINK_NOFOLLOW);
    }
  }
  auto negative = cairn({"image", "prune", "--keep-cache-gb", "-1"});
  EXPECT_NE(negative.exit_code, 0);
  EXPECT_THAT(negative.err, HasSubstr("--keep-cache-gb must be >= 0"));
  auto pruned = cairn({"image", "prune", "--keep-cache-gb", "0"});
  ASSERT_EQ(pruned.exit_code, 0) << pruned.err;
  EXPECT_THAT(pruned.out, HasSubstr("Removed "));
  for (const Digest& d : a)
    EXPECT_FALSE(blobs->exists(d)) << d.str() << " of the untagged image stayed";
  for (const Digest& d : b)
    EXPECT_TRUE(blobs->exists(d)) << d.str() << " of the tagged image went";
  auto exported = cairn({"image", "export", "b:1", "oci:" + (tmp.path() / "layout").string()});
  EXPECT_EQ(exported.exit_code, 0) << exported.err;
}

}  // namespace
}  // namespace cairn::cli
