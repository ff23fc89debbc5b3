// LocalBlobStore specifics: the on-disk layout, durability, fsck and ingest cleanup.
#include "cairn/store/local_blob_store.h"

#include <sys/stat.h>
#include <utime.h>

#include <filesystem>

#include "cairn/common/fs.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::store {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::size_t countFiles(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir))
    ++n;
  return n;
}

TEST(LocalBlobStoreTest, LayoutAndReadOnlyMode) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("local-store"));
  ASSERT_OK_AND_ASSIGN(auto store, LocalBlobStore::open(dir.path()));
  ASSERT_OK_AND_ASSIGN(BlobInfo info, writeBlob(*store, "layout"));
  fs::path p = dir.path() / "blobs" / "sha256" / info.digest.hex();
  EXPECT_EQ(store->blobPath(info.digest), p);
  ASSERT_OK_AND_ASSIGN(std::string content, readFile(p));
  EXPECT_EQ(content, "layout");
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_EQ(countFiles(dir.path() / "ingest"), 0u);
}

TEST(LocalBlobStoreTest, PartialWriteIsInvisibleUntilCommit) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("local-store"));
  ASSERT_OK_AND_ASSIGN(auto store, LocalBlobStore::open(dir.path()));
  ASSERT_OK_AND_ASSIGN(auto w, store->writer());
  ASSERT_OK(w->write("partial"));
  EXPECT_FALSE(store->exists(Digest::ofBytes("partial")));
  EXPECT_EQ(countFiles(dir.path() / "blobs" / "sha256"), 0u);
  EXPECT_EQ(countFiles(dir.path() / "ingest"), 1u);
  ASSERT_OK(w->commit());
  EXPECT_TRUE(store->exists(Digest::ofBytes("partial")));
  EXPECT_EQ(countFiles(dir.path() / "ingest"), 0u);
}

TEST(LocalBlobStoreTest, DestroyedWriterLeavesNoIngestFile) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("local-store"));
  ASSERT_OK_AND_ASSIGN(auto store, LocalBlobStore::open(dir.path()));
  {
    ASSERT_OK_AND_ASSIGN(auto w, store->writer());
    ASSERT_OK(w->write("dropped"));
  }
  EXPECT_EQ(countFiles(dir.path() / "ingest"), 0u);
}

TEST(LocalBlobStoreTest, TwoStoreObjectsShareOneRoot) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("local-store"));
  ASSERT_OK_AND_ASSIGN(auto a, LocalBlobStore::open(dir.path()));
  ASSERT_OK_AND_ASSIGN(auto b, LocalBlobStore::open(dir.path()));
  ASSERT_OK_AND_ASSIGN(BlobInfo info, writeBlob(*a, "shared"));
  ASSERT_OK_AND_ASSIGN(BlobInfo again, writeBlob(*b, "shared"));
  EXPECT_EQ(info.digest, again.digest);
  ASSERT_OK_AND_ASSIGN(auto all, b->list());
  EXPECT_EQ(all.size(), 1u);
}

TEST(LocalBlobStoreTest, IgnoresStrayFilesWhenListing) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("local-store"));
  ASSERT_OK_AND_ASSIGN(auto store, LocalBlobStore::open(dir.path()));
  ASSERT_OK(writeFileDurable(dir.path() / "blobs" / "sha256" / "not-a-digest", "x"));
  ASSERT_OK_AND_ASSIGN(BlobInfo info, writeBlob(*store, "real"));
  ASSERT_OK_AND_ASSIGN(auto all, store->list());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].digest, info.digest);
}

TEST(LocalBlobStoreTest, FsckReportsAndQuarantinesCorruptBlobs) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("local-store"));
  ASSERT_OK_AND_ASSIGN(auto store, LocalBlobStore::open(dir.path()));
  ASSERT_OK_AND_ASSIGN(BlobInfo good, writeBlob(*store, "good content"));
  ASSERT_OK_AND_ASSIGN(BlobInfo bad, writeBlob(*store, "bad content"));
  fs::path bad_path = store->blobPath(bad.digest);
  ASSERT_EQ(::chmod(bad_path.c_str(), 0644), 0);
  ASSERT_OK(writeFileDurable(bad_path, "bit rot!!!!"));
  ASSERT_OK(writeFileDurable(dir.path() / "blobs" / "sha256" / "stray", "x"));

  ASSERT_OK_AND_ASSIGN(FsckReport report, store->fsck(LocalBlobStore::FsckMode::kReport));
  EXPECT_EQ(report.checked, 2u);
  ASSERT_EQ(report.corrupt.size(), 2u);
  bool saw_bad = false;
  for (const CorruptBlob& c : report.corrupt) {
    if (c.name == bad.digest.str()) {
      saw_bad = true;
      EXPECT_THAT(c.problem, HasSubstr("hashes to sha256:" + Digest::ofBytes("bit rot!!!!").hex()));
    } else {
      EXPECT_EQ(c.name, "stray");
    }
  }
  EXPECT_TRUE(saw_bad);
  EXPECT_TRUE(store->exists(bad.digest));  // report mode changes nothing

  ASSERT_OK_AND_ASSIGN(report, store->fsck(LocalBlobStore::FsckMode::kQuarantine));
  EXPECT_EQ(report.corrupt.size(), 2u);
  EXPECT_FALSE(store->exists(bad.digest));
  EXPECT_TRUE(store->exists(good.digest));
  EXPECT_TRUE(fs::exists(dir.path() / "quarantine" / bad.digest.hex()));
  EXPECT_TRUE(fs::exists(dir.path() / "quarantine" / "stray"));

  ASSERT_OK_AND_ASSIGN(report, store->fsck());
  EXPECT_TRUE(report.corrupt.empty());
  EXPECT_EQ(report.checked, 1u);
  EXPECT_EQ(report.bytes, 12u);
}

TEST(LocalBlobStoreTest, CleanIngestRemovesOnlyOldFiles) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("local-store"));
  ASSERT_OK_AND_ASSIGN(auto store, LocalBlobStore::open(dir.path()));
  fs::path old_file = dir.path() / "ingest" / "crashed-writer";
  ASSERT_OK(writeFileDurable(old_file, "half"));
  struct utimbuf times {};
  times.actime = times.modtime = ::time(nullptr) - 7200;
  ASSERT_EQ(::utime(old_file.c_str(), &times), 0);
  ASSERT_OK_AND_ASSIGN(auto live, store->writer());
  ASSERT_OK(live->write("in progress"));
  ASSERT_OK_AND_ASSIGN(std::size_t removed, store->cleanIngest(std::chrono::hours(1)));
  EXPECT_EQ(removed, 1u);
  EXPECT_FALSE(fs::exists(old_file));
  ASSERT_OK(live->commit());
}

TEST(LocalBlobStoreTest, EmptyRootIsRejected) {
  EXPECT_THAT(LocalBlobStore::open(""), StatusIs(StatusCode::kInvalidArgument));
}

TEST(LocalBlobStoreTest, UnwritableRootIsAClearError) {
  auto r = LocalBlobStore::open("/proc/cairn-no-such-dir");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("/proc/cairn-no-such-dir"));
}

}  // namespace
}  // namespace cairn::store
