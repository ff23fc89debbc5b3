// LocalBlobStore specifics: the on-disk layout, durability, fsck and ingest cleanup.
#include "cairn/store/local_blob_store.h"

#include <sys/stat.h>
#include <utime.h>

#include <filesystem>

#include "cairn/common/fs.h"
#include "cairn/layer/diff.h"
#include "cairn/layer/stream.h"
#include "cairn/store/memory_blob_store.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::store {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::AllOf;
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

// ---- layer-tar blobs: a layer directory published as its uncompressed tar, made on read ----

namespace cairn::store {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

// A small tree and the tar (bytes, digest) layer::createLayerTar makes of it.
struct Tree {
  fs::path dir;
  std::string tar;
  Digest digest;
};

Tree makeTree(const fs::path& dir, const std::string& content) {
  fs::create_directories(dir / "etc");
  EXPECT_OK(writeFileDurable(dir / "etc" / "motd", content));
  EXPECT_OK(writeFileDurable(dir / "hello.txt", "hello\n"));
  Tree t;
  t.dir = dir;
  layer::StringSink sink(&t.tar);
  EXPECT_OK(layer::createLayerTar(dir, sink).status());
  t.digest = Digest::ofBytes(t.tar);
  return t;
}

std::string readAllOf(BlobStore& store, const Digest& d) {
  auto stream = store.openRead(d);
  EXPECT_OK(stream.status());
  if (!stream.ok()) return {};
  std::string out;
  std::string buf(4096, '\0');
  for (;;) {
    auto n = (*stream)->read(buf.data(), buf.size());
    EXPECT_OK(n.status());
    if (!n.ok() || *n == 0) break;
    out.append(buf.data(), *n);
  }
  return out;
}

TEST(LocalBlobStoreLayerTarTest, IsReadAsTheDirectorysTarWithoutACopy) {
  ASSERT_OK_AND_ASSIGN(TempDir root, TempDir::create("local-store"));
  ASSERT_OK_AND_ASSIGN(auto store, LocalBlobStore::open(root.path()));
  Tree t = makeTree(root.path() / "layers" / "aaa" / "fs", "one\n");
  ASSERT_OK_AND_ASSIGN(BlobInfo info, store->putLayerTar(t.dir, t.digest, t.tar.size()));
  EXPECT_EQ(info.digest, t.digest);
  EXPECT_EQ(info.size, t.tar.size());
  // Only a note: no blob file, nothing in ingest.
  EXPECT_FALSE(fs::exists(store->blobPath(t.digest)));
  EXPECT_TRUE(fs::exists(root.path() / "blobs" / "layer-tars" / t.digest.hex()));
  EXPECT_TRUE(store->exists(t.digest));
  ASSERT_OK_AND_ASSIGN(BlobInfo again, store->info(t.digest));
  EXPECT_EQ(again.size, t.tar.size());
  EXPECT_EQ(readAllOf(*store, t.digest), t.tar);
  EXPECT_EQ(countFiles(root.path() / "ingest"), 0u);  // the made tar was never linked

  // Random access works as on any blob (chunked pushes read at offsets).
  ASSERT_OK_AND_ASSIGN(auto stream, store->openRead(t.digest));
  EXPECT_EQ(stream->size(), t.tar.size());
  std::string tail(10, '\0');
  ASSERT_OK_AND_ASSIGN(std::size_t n, stream->readAt(512, tail.data(), tail.size()));
  EXPECT_EQ(tail.substr(0, n), t.tar.substr(512, n));

  // Listed, removable, and gone with its note.
  ASSERT_OK_AND_ASSIGN(auto all, store->list());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].digest, t.digest);
  EXPECT_EQ(all[0].size, t.tar.size());
  ASSERT_OK(store->remove(t.digest));
  EXPECT_FALSE(store->exists(t.digest));
  EXPECT_THAT(store->openRead(t.digest), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store->remove(t.digest), StatusIs(StatusCode::kNotFound));
}

TEST(LocalBlobStoreLayerTarTest, AnyOfSeveralDirectoriesMakesTheBlob) {
  ASSERT_OK_AND_ASSIGN(TempDir root, TempDir::create("local-store"));
  ASSERT_OK_AND_ASSIGN(auto store, LocalBlobStore::open(root.path()));
  // The same layer content on two parents: two layer dirs, one diff id.
  Tree a = makeTree(root.path() / "layers" / "a" / "fs", "same\n");
  Tree b = makeTree(root.path() / "layers" / "b" / "fs", "same\n");
  ASSERT_EQ(a.digest, b.digest);
  ASSERT_OK(store->putLayerTar(a.dir, a.digest, a.tar.size()).status());
  ASSERT_OK(store->putLayerTar(b.dir, b.digest, b.tar.size()).status());
  fs::remove_all(a.dir);  // the first layer is collected
  EXPECT_EQ(readAllOf(*store, a.digest), a.tar);
  fs::remove_all(b.dir);
  EXPECT_THAT(store->info(a.digest),
              StatusIs(StatusCode::kNotFound, HasSubstr("layer directories")));
  EXPECT_FALSE(store->exists(a.digest));
  // Still listed, so that the GC removes the dangling note.
  ASSERT_OK_AND_ASSIGN(GcReport gc, collectGarbage(*store, {}));
  EXPECT_EQ(gc.removed.size(), 1u);
  EXPECT_FALSE(fs::exists(root.path() / "blobs" / "layer-tars" / a.digest.hex()));
}

TEST(LocalBlobStoreLayerTarTest, GarbageCollectionKeepsLiveNotes) {
  ASSERT_OK_AND_ASSIGN(TempDir root, TempDir::create("local-store"));
  ASSERT_OK_AND_ASSIGN(auto store, LocalBlobStore::open(root.path()));
  Tree live = makeTree(root.path() / "layers" / "live" / "fs", "live\n");
  Tree dead = makeTree(root.path() / "layers" / "dead" / "fs", "dead\n");
  ASSERT_OK(store->putLayerTar(live.dir, live.digest, live.tar.size()).status());
  ASSERT_OK(store->putLayerTar(dead.dir, dead.digest, dead.tar.size()).status());
  ASSERT_OK_AND_ASSIGN(GcReport gc, collectGarbage(*store, {live.digest}));
  ASSERT_EQ(gc.removed.size(), 1u);
  EXPECT_EQ(gc.removed[0], dead.digest);
  EXPECT_TRUE(store->exists(live.digest));
  EXPECT_FALSE(store->exists(dead.digest));
}

TEST(LocalBlobStoreLayerTarTest, ADirectoryThatChangedIsAReadErrorNotWrongBytes) {
  ASSERT_OK_AND_ASSIGN(TempDir root, TempDir::create("local-store"));
  ASSERT_OK_AND_ASSIGN(auto store, LocalBlobStore::open(root.path()));
  Tree t = makeTree(root.path() / "layers" / "x" / "fs", "original\n");
  ASSERT_OK(store->putLayerTar(t.dir, t.digest, t.tar.size()).status());
  ASSERT_OK(writeFileDurable(t.dir / "etc" / "motd", "tampered\n"));
  EXPECT_THAT(store->openRead(t.digest),
              StatusIs(StatusCode::kInternal,
                       AllOf(HasSubstr(t.digest.str()), HasSubstr("the directory changed"))));
  EXPECT_EQ(countFiles(root.path() / "ingest"), 0u);
  // fsck finds it too, and quarantine drops the note (there are no bytes to move).
  ASSERT_OK_AND_ASSIGN(FsckReport report, store->fsck());
  ASSERT_EQ(report.corrupt.size(), 1u);
  EXPECT_EQ(report.corrupt[0].name, t.digest.str());
  EXPECT_THAT(report.corrupt[0].problem, HasSubstr("the directory changed"));
  ASSERT_OK(store->fsck(LocalBlobStore::FsckMode::kQuarantine).status());
  EXPECT_FALSE(fs::exists(root.path() / "blobs" / "layer-tars" / t.digest.hex()));
  // An intact one passes fsck, counted with its tar's size.
  Tree ok = makeTree(root.path() / "layers" / "y" / "fs", "fine\n");
  ASSERT_OK(store->putLayerTar(ok.dir, ok.digest, ok.tar.size()).status());
  ASSERT_OK_AND_ASSIGN(report, store->fsck());
  EXPECT_TRUE(report.corrupt.empty());
  EXPECT_EQ(report.checked, 1u);
  EXPECT_EQ(report.bytes, ok.tar.size());
}

TEST(LocalBlobStoreLayerTarTest, ADirectoryOutsideTheRootIsWrittenAndWrongSizesAreRefused) {
  ASSERT_OK_AND_ASSIGN(TempDir root, TempDir::create("local-store"));
  ASSERT_OK_AND_ASSIGN(TempDir elsewhere, TempDir::create("elsewhere"));
  ASSERT_OK_AND_ASSIGN(auto store, LocalBlobStore::open(root.path()));
  // Outside the root the store cannot answer for the directory: the tar is written now.
  Tree out = makeTree(elsewhere.path() / "fs", "outside\n");
  ASSERT_OK(store->putLayerTar(out.dir, out.digest, out.tar.size()).status());
  EXPECT_TRUE(fs::exists(store->blobPath(out.digest)));
  EXPECT_FALSE(fs::exists(root.path() / "blobs" / "layer-tars" / out.digest.hex()));
  fs::remove_all(out.dir);
  EXPECT_EQ(readAllOf(*store, out.digest), out.tar);
  // Escaping with "..": the same, and a directory that does not exist is an error.
  EXPECT_THAT(
      store->putLayerTar(root.path() / "layers" / ".." / ".." / "missing", Digest::ofBytes("x"), 1),
      StatusIs(StatusCode::kNotFound));
  Tree t = makeTree(root.path() / "layers" / "z" / "fs", "z\n");
  ASSERT_OK(store->putLayerTar(t.dir, t.digest, t.tar.size()).status());
  Tree t2 = makeTree(root.path() / "layers" / "z2" / "fs", "z\n");
  EXPECT_THAT(store->putLayerTar(t2.dir, t.digest, t.tar.size() + 1),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("bytes, not")));
  // A committed blob wins: nothing is recorded for it.
  ASSERT_OK(writeBlob(*store, t2.tar).status());
  ASSERT_OK_AND_ASSIGN(BlobInfo info, store->putLayerTar(t2.dir, t2.digest, t2.tar.size()));
  EXPECT_EQ(info.size, t2.tar.size());
  EXPECT_EQ(readAllOf(*store, t2.digest), t2.tar);
}

TEST(LocalBlobStoreLayerTarTest, ABrokenNoteIsListedForTheGcAndReportedByFsck) {
  ASSERT_OK_AND_ASSIGN(TempDir root, TempDir::create("local-store"));
  ASSERT_OK_AND_ASSIGN(auto store, LocalBlobStore::open(root.path()));
  Digest d = Digest::ofBytes("broken");
  fs::path note = root.path() / "blobs" / "layer-tars" / d.hex();
  ASSERT_OK(writeFileDurable(note, "{not json"));
  EXPECT_FALSE(store->exists(d));
  EXPECT_THAT(store->openRead(d), StatusIs(StatusCode::kInternal, HasSubstr("not a JSON object")));
  ASSERT_OK_AND_ASSIGN(FsckReport report, store->fsck());
  ASSERT_EQ(report.corrupt.size(), 1u);
  EXPECT_EQ(report.corrupt[0].name, d.str());
  ASSERT_OK_AND_ASSIGN(auto all, store->list());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].size, 0u);
  ASSERT_OK_AND_ASSIGN(GcReport gc, collectGarbage(*store, {}));
  EXPECT_EQ(gc.removed.size(), 1u);
  EXPECT_FALSE(fs::exists(note));
}

TEST(LocalBlobStoreLayerTarTest, AStoreThatCannotLinkWritesTheTar) {
  // BlobIngester's default, used by stores that cannot read the directory later.
  ASSERT_OK_AND_ASSIGN(TempDir root, TempDir::create("memory-store"));
  Tree t = makeTree(root.path() / "fs", "memory\n");
  MemoryBlobStore memory;
  ASSERT_OK_AND_ASSIGN(BlobInfo info, memory.putLayerTar(t.dir, t.digest, t.tar.size()));
  EXPECT_EQ(info.digest, t.digest);
  fs::remove_all(t.dir);  // the bytes were copied
  EXPECT_EQ(readAllOf(memory, t.digest), t.tar);
  // A wrong digest is refused and leaves nothing.
  Tree u = makeTree(root.path() / "fs2", "other\n");
  EXPECT_THAT(memory.putLayerTar(u.dir, t.digest, u.tar.size()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("digest mismatch")));
  EXPECT_FALSE(memory.exists(u.digest));
}

}  // namespace
}  // namespace cairn::store
