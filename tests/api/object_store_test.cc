// The ObjectStore conformance suite, run against every implementation (the filesystem store,
// the blob-backed store over the local blob store and over the in-memory test double), and the
// blob-backed store's own guarantees: deduplication, migration of filesystem objects, frozen GC
// roots.
#include "cairn/api/object_store.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "cairn/common/checksum.h"
#include "cairn/common/crypto.h"
#include "cairn/common/fs.h"
#include "cairn/meta/memory_meta_store.h"
#include "cairn/oci/catalog.h"
#include "cairn/service/store_gc.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/store/memory_blob_store.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::api {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FakeClock final : public Clock {
 public:
  SystemTime now() const override { return now_.load(); }
  std::chrono::steady_clock::time_point steadyNow() const override {
    return std::chrono::steady_clock::now();
  }
  void advance(std::chrono::seconds d) { now_.store(now_.load() + d); }

 private:
  std::atomic<SystemTime> now_{SystemTime(std::chrono::seconds(1'800'000'000))};
};

std::string readAllFd(int fd) {
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

enum class Kind { kFs, kBlobLocal, kBlobMemory };

class ObjectStoreConformance : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::create("cairn-objstore-conf"));
    reopen();
  }

  void reopen() {
    store_.reset();
    switch (GetParam()) {
      case Kind::kFs: {
        ASSERT_OK_AND_ASSIGN(store_, openFsObjectStore(dir_.path() / "objects", clock_));
        break;
      }
      case Kind::kBlobLocal: {
        if (!local_) {
          ASSERT_OK_AND_ASSIGN(local_, store::LocalBlobStore::open(dir_.path()));
        }
        ASSERT_OK_AND_ASSIGN(auto s,
                             BlobObjectStore::open(dir_.path() / "objects", *local_, clock_));
        store_ = std::move(s);
        break;
      }
      case Kind::kBlobMemory: {
        ASSERT_OK_AND_ASSIGN(auto s,
                             BlobObjectStore::open(dir_.path() / "objects", memory_, clock_));
        store_ = std::move(s);
        break;
      }
    }
  }

  std::string body(std::string_view bucket, std::string_view key) {
    auto r = store_->get(bucket, key);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    return readAllFd(r->fd.get());
  }

  std::vector<std::string> keys(std::string_view prefix = "", std::size_t max = 1000,
                                std::string_view after = "") {
    auto r = store_->list("bucket", prefix, max, after);
    EXPECT_TRUE(r.ok()) << r.status();
    std::vector<std::string> out;
    if (r.ok()) {
      for (auto& o : r->objects)
        out.push_back(o.key);
    }
    return out;
  }

  FakeClock clock_;
  TempDir dir_ = *TempDir::create("unused");
  std::unique_ptr<store::LocalBlobStore> local_;
  store::MemoryBlobStore memory_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_P(ObjectStoreConformance, PutGetHeadRemove) {
  PutOptions o;
  o.content_type = "text/plain";
  ASSERT_OK_AND_ASSIGN(ObjectInfo put, store_->put("bucket", "dir/file.txt", "hello", o));
  EXPECT_EQ(put.key, "dir/file.txt");
  EXPECT_EQ(put.size, 5u);
  EXPECT_EQ(put.etag, md5Hex("hello"));
  EXPECT_EQ(put.checksum_crc32, crc32Base64(std::string_view("hello")));
  EXPECT_EQ(put.last_modified, clock_.now());

  ASSERT_OK_AND_ASSIGN(ObjectInfo head, store_->head("bucket", "dir/file.txt"));
  EXPECT_EQ(head.size, 5u);
  EXPECT_EQ(head.etag, put.etag);
  EXPECT_EQ(head.checksum_crc32, put.checksum_crc32);
  EXPECT_EQ(head.content_type, "text/plain");
  EXPECT_EQ(body("bucket", "dir/file.txt"), "hello");

  // Overwrite replaces content and metadata.
  clock_.advance(std::chrono::seconds(5));
  ASSERT_OK(store_->put("bucket", "dir/file.txt", "bye", {}).status());
  ASSERT_OK_AND_ASSIGN(head, store_->head("bucket", "dir/file.txt"));
  EXPECT_EQ(head.size, 3u);
  EXPECT_EQ(head.etag, md5Hex("bye"));
  EXPECT_EQ(head.content_type, "");
  EXPECT_EQ(head.last_modified, clock_.now());
  EXPECT_EQ(body("bucket", "dir/file.txt"), "bye");

  // The empty object is an object.
  ASSERT_OK(store_->put("bucket", "empty", "", {}).status());
  EXPECT_EQ(body("bucket", "empty"), "");

  ASSERT_OK(store_->remove("bucket", "dir/file.txt"));
  EXPECT_THAT(store_->head("bucket", "dir/file.txt"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->get("bucket", "dir/file.txt"), StatusIs(StatusCode::kNotFound));
  EXPECT_OK(store_->remove("bucket", "dir/file.txt"));  // S3: deleting a missing key is fine
  // Buckets are separate namespaces.
  EXPECT_THAT(store_->head("other-bucket", "empty"), StatusIs(StatusCode::kNotFound));
}

TEST_P(ObjectStoreConformance, ListOrderPrefixPaging) {
  for (std::string k : {"a/b", "a/b/c", "a", "b/x", "a-b", "a/b/c/d", "a.b", "\xc3\xa9t\xc3\xa9"}) {
    ASSERT_OK(store_->put("bucket", k, "v:" + k, {}).status());
  }
  // Byte order, as S3: '-' < '.' < '/' and UTF-8 after ASCII.
  EXPECT_THAT(keys(), ElementsAre("a", "a-b", "a.b", "a/b", "a/b/c", "a/b/c/d", "b/x",
                                  "\xc3\xa9t\xc3\xa9"));
  EXPECT_THAT(keys("a/b"), ElementsAre("a/b", "a/b/c", "a/b/c/d"));
  EXPECT_THAT(keys("a/b/"), ElementsAre("a/b/c", "a/b/c/d"));
  EXPECT_THAT(keys("zzz"), ElementsAre());
  ASSERT_OK_AND_ASSIGN(ListResult page, store_->list("bucket", "", 2, "a-b"));
  ASSERT_EQ(page.objects.size(), 2u);
  EXPECT_EQ(page.objects[0].key, "a.b");
  EXPECT_EQ(page.objects[1].key, "a/b");
  EXPECT_TRUE(page.truncated);
  EXPECT_EQ(page.objects[1].size, 5u);
  ASSERT_OK_AND_ASSIGN(page, store_->list("bucket", "a/", 10, "a/b/c"));
  EXPECT_FALSE(page.truncated);
  ASSERT_EQ(page.objects.size(), 1u);
  EXPECT_EQ(page.objects[0].key, "a/b/c/d");
  ASSERT_OK_AND_ASSIGN(page, store_->list("bucket", "a", 3, ""));
  EXPECT_TRUE(page.truncated);
  EXPECT_EQ(page.objects.size(), 3u);
  // Default (null) string views are empty strings, not "no value".
  ASSERT_OK_AND_ASSIGN(page, store_->list("bucket", std::string_view(), 100, std::string_view()));
  EXPECT_EQ(page.objects.size(), 8u);
  // An empty bucket lists as empty.
  ASSERT_OK_AND_ASSIGN(page, store_->list("never-used", "", 10, ""));
  EXPECT_TRUE(page.objects.empty());
}

TEST_P(ObjectStoreConformance, HostileKeysAreJustKeys) {
  const std::vector<std::string> hostile = {"../../escape", "a/../../escape", "./x/./y", "a//b",
                                            "/leading",     "trailing/",      "%2E%2E",  "sp ace"};
  for (const auto& k : hostile) {
    ASSERT_OK(store_->put("bucket", k, "data:" + k, {}).status()) << k;
  }
  for (const auto& k : hostile)
    EXPECT_EQ(body("bucket", k), "data:" + k) << k;
  EXPECT_EQ(keys().size(), hostile.size());
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "escape"));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "objects" / "escape"));
}

TEST_P(ObjectStoreConformance, BadNamesAreInvalidArgument) {
  EXPECT_THAT(store_->put("Bad_Bucket", "k", "", {}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->put("..", "k", "", {}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->list("ab", "", 10, ""), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->put("bucket", "", "", {}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->put("bucket", std::string("a\0b", 3), "", {}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->put("bucket", "tab\there", "", {}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->put("bucket", std::string(2000, 'k'), "", {}),
              StatusIs(StatusCode::kInvalidArgument));
  // One segment too long once escaped: rejected by both stores alike.
  auto too_long = store_->put("bucket", std::string(300, '.'), "", {});
  EXPECT_THAT(too_long, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(too_long.status().message(), HasSubstr("too long"));
  EXPECT_THAT(store_->head("bucket", std::string("x\x7f", 2)),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->head("bucket", "missing"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->uploadPart("bucket", "k", "../../x", 1, "d"),
              StatusIs(StatusCode::kNotFound));
  EXPECT_TRUE(keys().empty());
}

TEST_P(ObjectStoreConformance, MultipartAnyOrderReplaceAndAbort) {
  ASSERT_OK_AND_ASSIGN(std::string id, store_->createMultipart("bucket", "big", {"app/x-tar"}));
  std::string p1(100'000, 'a'), p2(50'000, 'b'), p3 = "tail";
  ASSERT_OK(store_->uploadPart("bucket", "big", id, 3, p3).status());
  ASSERT_OK(store_->uploadPart("bucket", "big", id, 1, "to be replaced").status());
  ASSERT_OK(store_->uploadPart("bucket", "big", id, 2, p2).status());
  ASSERT_OK_AND_ASSIGN(PartInfo part1, store_->uploadPart("bucket", "big", id, 1, p1));
  EXPECT_EQ(part1.etag, md5Hex(p1));
  ASSERT_OK_AND_ASSIGN(std::vector<PartInfo> parts, store_->listParts("bucket", "big", id));
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].size, p1.size());
  // The upload belongs to its key.
  EXPECT_THAT(store_->uploadPart("bucket", "other", id, 1, "x"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->uploadPart("bucket", "big", id, 0, "x"),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->uploadPart("bucket", "big", id, 10001, "x"),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->completeMultipart("bucket", "big", id, {}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->head("bucket", "big"), StatusIs(StatusCode::kNotFound));

  ASSERT_OK_AND_ASSIGN(ObjectInfo info, store_->completeMultipart("bucket", "big", id, {1, 2, 3}));
  std::string whole = p1 + p2 + p3;
  EXPECT_EQ(info.size, whole.size());
  EXPECT_EQ(info.checksum_crc32, crc32Base64(std::string_view(whole)));
  Md5 etag;
  for (const std::string* p : {&p1, &p2, &p3}) {
    Md5Bytes d = md5(*p);
    etag.update(d.data(), d.size());
  }
  EXPECT_EQ(info.etag, etag.finishHex() + "-3");
  EXPECT_EQ(info.content_type, "app/x-tar");
  EXPECT_EQ(body("bucket", "big"), whole);
  ASSERT_OK_AND_ASSIGN(ObjectInfo head, store_->head("bucket", "big"));
  EXPECT_EQ(head.etag, info.etag);
  EXPECT_EQ(head.content_type, "app/x-tar");
  // Completed: the upload is gone.
  EXPECT_THAT(store_->listParts("bucket", "big", id), StatusIs(StatusCode::kNotFound));

  ASSERT_OK_AND_ASSIGN(std::string id2, store_->createMultipart("bucket", "gone", {}));
  ASSERT_OK(store_->uploadPart("bucket", "gone", id2, 1, "x").status());
  ASSERT_OK(store_->abortMultipart("bucket", "gone", id2));
  EXPECT_THAT(store_->uploadPart("bucket", "gone", id2, 1, "x"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->completeMultipart("bucket", "gone", id2, {1}),
              StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->head("bucket", "gone"), StatusIs(StatusCode::kNotFound));
}

TEST_P(ObjectStoreConformance, ConcurrentPutsOfOneKeyLeaveOneWholeObject) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 20; ++i) {
        std::string data(1000 + static_cast<std::size_t>(t), static_cast<char>('a' + t));
        EXPECT_OK(store_->put("bucket", "hot", data, {}).status());
      }
    });
  }
  for (auto& th : threads)
    th.join();
  ASSERT_OK_AND_ASSIGN(ObjectInfo head, store_->head("bucket", "hot"));
  std::string got = body("bucket", "hot");
  ASSERT_EQ(got.size(), head.size);
  EXPECT_EQ(md5Hex(got), head.etag);
  EXPECT_EQ(got, std::string(got.size(), got[0]));
}

TEST_P(ObjectStoreConformance, SurvivesReopen) {
  ASSERT_OK(store_->put("bucket", "k/one", "hello", {"text/plain"}).status());
  ASSERT_OK_AND_ASSIGN(std::string id, store_->createMultipart("bucket", "k/two", {}));
  ASSERT_OK(store_->uploadPart("bucket", "k/two", id, 1, "part").status());
  reopen();
  ASSERT_OK_AND_ASSIGN(ObjectInfo info, store_->head("bucket", "k/one"));
  EXPECT_EQ(info.etag, md5Hex("hello"));
  EXPECT_EQ(info.content_type, "text/plain");
  EXPECT_EQ(body("bucket", "k/one"), "hello");
  // An upload in flight across a restart can still complete.
  ASSERT_OK_AND_ASSIGN(info, store_->completeMultipart("bucket", "k/two", id, {1}));
  EXPECT_EQ(body("bucket", "k/two"), "part");
}

INSTANTIATE_TEST_SUITE_P(Stores, ObjectStoreConformance,
                         ::testing::Values(Kind::kFs, Kind::kBlobLocal, Kind::kBlobMemory),
                         [](const ::testing::TestParamInfo<Kind>& p) {
                           switch (p.param) {
                             case Kind::kFs:
                               return std::string("Fs");
                             case Kind::kBlobLocal:
                               return std::string("BlobLocal");
                             case Kind::kBlobMemory:
                               return std::string("BlobMemory");
                           }
                           return std::string("Unknown");
                         });

// --- the blob-backed store's own guarantees --------------------------------------------------

class BlobObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::create("cairn-blobobj"));
    ASSERT_OK_AND_ASSIGN(blobs_, store::LocalBlobStore::open(dir_.path()));
    ASSERT_OK_AND_ASSIGN(store_, BlobObjectStore::open(dir_.path() / "objects", *blobs_, clock_));
  }

  std::vector<Digest> frozenRoots() {
    std::vector<Digest> out;
    EXPECT_OK(store_->withFrozenRoots([&](const std::vector<Digest>& roots) {
      out = roots;
      return okStatus();
    }));
    std::sort(out.begin(), out.end());
    return out;
  }

  FakeClock clock_;
  TempDir dir_ = *TempDir::create("unused");
  std::unique_ptr<store::LocalBlobStore> blobs_;
  std::unique_ptr<BlobObjectStore> store_;
};

TEST_F(BlobObjectStoreTest, BodiesAreBlobsStoredOnce) {
  std::string context(200'000, 'c');
  ASSERT_OK(store_->put("bucket", "org-a/ctx/1.tar", context, {}).status());
  ASSERT_OK(store_->put("bucket", "org-b/ctx/1.tar", context, {}).status());
  ASSERT_OK(store_->put("other-bucket", "x", context, {}).status());
  // The same bytes through a multipart upload land on the same blob too.
  ASSERT_OK_AND_ASSIGN(std::string id, store_->createMultipart("bucket", "org-c/ctx", {}));
  ASSERT_OK(store_->uploadPart("bucket", "org-c/ctx", id, 1, context.substr(0, 150'000)).status());
  ASSERT_OK(store_->uploadPart("bucket", "org-c/ctx", id, 2, context.substr(150'000)).status());
  ASSERT_OK(store_->completeMultipart("bucket", "org-c/ctx", id, {1, 2}).status());

  ASSERT_OK_AND_ASSIGN(auto all, blobs_->list());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].digest, Digest::ofBytes(context));
  EXPECT_TRUE(std::filesystem::exists(blobs_->blobPath(Digest::ofBytes(context))));
  EXPECT_THAT(frozenRoots(), ElementsAre(Digest::ofBytes(context)));
  // No copy of the body anywhere under the object store's own directory.
  std::uintmax_t bytes = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.path() / "objects")) {
    if (e.is_regular_file() && e.path().filename().string().rfind("index.db", 0) != 0) {
      bytes += e.file_size();
    }
  }
  EXPECT_LT(bytes, 10'000u);
}

TEST_F(BlobObjectStoreTest, RootsFollowOverwritesAndDeletes) {
  ASSERT_OK(store_->put("bucket", "a", "one", {}).status());
  ASSERT_OK(store_->put("bucket", "b", "two", {}).status());
  EXPECT_THAT(frozenRoots(),
              ::testing::UnorderedElementsAre(Digest::ofBytes("one"), Digest::ofBytes("two")));
  ASSERT_OK(store_->put("bucket", "a", "three", {}).status());
  ASSERT_OK(store_->remove("bucket", "b"));
  EXPECT_THAT(frozenRoots(), ElementsAre(Digest::ofBytes("three")));
  // The old bodies stay until GC: removing a key never removes a blob (it may be shared).
  EXPECT_TRUE(blobs_->exists(Digest::ofBytes("one")));
  EXPECT_TRUE(blobs_->exists(Digest::ofBytes("two")));
  // A sweep with these roots keeps the live body and drops the rest.
  ASSERT_OK(store_->withFrozenRoots([&](const std::vector<Digest>& roots) {
    return store::collectGarbage(*blobs_, roots).status();
  }));
  EXPECT_FALSE(blobs_->exists(Digest::ofBytes("one")));
  EXPECT_FALSE(blobs_->exists(Digest::ofBytes("two")));
  ASSERT_OK_AND_ASSIGN(ObjectReader r, store_->get("bucket", "a"));
  EXPECT_EQ(readAllFd(r.fd.get()), "three");
}

TEST_F(BlobObjectStoreTest, PutsWaitWhileRootsAreFrozen) {
  // An old, unreferenced blob with the bytes a client is about to upload: a sweep that read the
  // roots before the put's index row would remove the body the new object points at.
  ASSERT_OK(store::writeBlob(*blobs_, "same bytes").status());
  std::atomic<bool> put_done{false};
  std::thread writer;
  Status swept = store_->withFrozenRoots([&](const std::vector<Digest>& roots) {
    EXPECT_TRUE(roots.empty());
    writer = std::thread([&] {
      EXPECT_OK(store_->put("bucket", "k", "same bytes", {}).status());
      put_done = true;
    });
    // The put cannot finish while the roots are frozen, whatever the timing: its commit waits.
    for (int i = 0; i < 50 && !put_done; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    EXPECT_FALSE(put_done.load());
    return store::collectGarbage(*blobs_, roots).status();
  });
  ASSERT_OK(swept);
  writer.join();
  ASSERT_TRUE(put_done.load());
  // The put recommitted the body after the sweep: the object is whole.
  ASSERT_OK_AND_ASSIGN(ObjectReader r, store_->get("bucket", "k"));
  EXPECT_EQ(readAllFd(r.fd.get()), "same bytes");
}

TEST_F(BlobObjectStoreTest, MissingBodyIsAnInternalErrorNamingTheBlob) {
  ASSERT_OK(store_->put("bucket", "k", "body", {}).status());
  ASSERT_OK(blobs_->remove(Digest::ofBytes("body")));
  auto got = store_->get("bucket", "k");
  EXPECT_THAT(got, StatusIs(StatusCode::kInternal));
  EXPECT_THAT(got.status().message(), HasSubstr(Digest::ofBytes("body").str()));
  // head reads the index only.
  EXPECT_OK(store_->head("bucket", "k").status());
}

TEST_F(BlobObjectStoreTest, MigratesFilesystemObjectsOnOpen) {
  store_.reset();
  std::filesystem::path root = dir_.path() / "old-objects";
  std::string upload_id;
  {
    ASSERT_OK_AND_ASSIGN(auto fs_store, openFsObjectStore(root, clock_));
    ASSERT_OK(fs_store->put("daytona-volume-builds", "org/ctx/a.tar", "tar a", {"x/tar"}).status());
    ASSERT_OK(fs_store->put("daytona-volume-builds", "org/ctx/b.tar", "tar b", {}).status());
    ASSERT_OK(fs_store->put("other-bucket", "../odd key", "odd", {}).status());
    ASSERT_OK_AND_ASSIGN(upload_id, fs_store->createMultipart("other-bucket", "mp", {}));
    ASSERT_OK(fs_store->uploadPart("other-bucket", "mp", upload_id, 1, "in flight").status());
  }
  ASSERT_OK_AND_ASSIGN(auto fs_before, openFsObjectStore(root, clock_));
  ASSERT_OK_AND_ASSIGN(ObjectInfo old_a, fs_before->head("daytona-volume-builds", "org/ctx/a.tar"));
  fs_before.reset();
  clock_.advance(std::chrono::seconds(3600));

  ASSERT_OK_AND_ASSIGN(store_, BlobObjectStore::open(root, *blobs_, clock_));
  ASSERT_OK_AND_ASSIGN(ObjectInfo a, store_->head("daytona-volume-builds", "org/ctx/a.tar"));
  EXPECT_EQ(a.etag, old_a.etag);
  EXPECT_EQ(a.checksum_crc32, old_a.checksum_crc32);
  EXPECT_EQ(a.content_type, "x/tar");
  EXPECT_EQ(a.last_modified, old_a.last_modified);  // not the time of the migration
  ASSERT_OK_AND_ASSIGN(ObjectReader r, store_->get("other-bucket", "../odd key"));
  EXPECT_EQ(readAllFd(r.fd.get()), "odd");
  ASSERT_OK_AND_ASSIGN(ListResult l, store_->list("daytona-volume-builds", "org/", 10, ""));
  EXPECT_EQ(l.objects.size(), 2u);
  EXPECT_TRUE(blobs_->exists(Digest::ofBytes("tar b")));
  // The files are gone; the multipart upload in flight is untouched and completes.
  EXPECT_FALSE(std::filesystem::exists(root / "buckets/daytona-volume-builds/objects"));
  EXPECT_FALSE(std::filesystem::exists(root / "buckets/other-bucket/objects"));
  ASSERT_OK(store_->completeMultipart("other-bucket", "mp", upload_id, {1}).status());
  ASSERT_OK_AND_ASSIGN(r, store_->get("other-bucket", "mp"));
  EXPECT_EQ(readAllFd(r.fd.get()), "in flight");
  // Opening again finds nothing left to move and changes nothing.
  store_.reset();
  ASSERT_OK_AND_ASSIGN(store_, BlobObjectStore::open(root, *blobs_, clock_));
  ASSERT_OK_AND_ASSIGN(l, store_->list("daytona-volume-builds", "", 10, ""));
  EXPECT_EQ(l.objects.size(), 2u);
}

TEST_F(BlobObjectStoreTest, UploadedContextsSurviveStoreGc) {
  ASSERT_OK_AND_ASSIGN(auto catalog, oci::ImageCatalog::open(dir_.path()));
  std::string context(300'000, 'x');
  ASSERT_OK(store_->put("daytona-volume-builds", "org/h1/context.tar", context, {}).status());
  ASSERT_OK_AND_ASSIGN(std::string id,
                       store_->createMultipart("daytona-volume-builds", "org/h2/context.tar", {}));
  ASSERT_OK(
      store_->uploadPart("daytona-volume-builds", "org/h2/context.tar", id, 1, "mp").status());
  ASSERT_OK(
      store_->completeMultipart("daytona-volume-builds", "org/h2/context.tar", id, {1}).status());
  ASSERT_OK(store_->put("daytona-volume-builds", "org/h3/context.tar", "old body", {}).status());
  ASSERT_OK(store_->put("daytona-volume-builds", "org/h3/context.tar", "new body", {}).status());
  ASSERT_OK(store::writeBlob(*blobs_, "nobody's blob").status());

  service::StoreGcOptions o;
  o.blobs = blobs_.get();
  o.catalog = catalog.get();
  o.roots = {store_.get()};
  o.grace = std::chrono::milliseconds(0);
  // Everything above was committed before this clock's "now": all of it is a candidate.
  class Later final : public Clock {
   public:
    SystemTime now() const override {
      return std::chrono::system_clock::now() + std::chrono::hours(1);
    }
    std::chrono::steady_clock::time_point steadyNow() const override {
      return std::chrono::steady_clock::now();
    }
  } later;
  o.clock = &later;
  ASSERT_OK_AND_ASSIGN(service::StoreGcReport report, service::collectStoreGarbage(o));
  EXPECT_EQ(report.blobs.removed.size(), 2u);  // the overwritten body and the stray blob
  EXPECT_FALSE(blobs_->exists(Digest::ofBytes("old body")));
  EXPECT_FALSE(blobs_->exists(Digest::ofBytes("nobody's blob")));
  for (const auto& [key, want] :
       std::vector<std::pair<std::string, std::string>>{{"org/h1/context.tar", context},
                                                        {"org/h2/context.tar", "mp"},
                                                        {"org/h3/context.tar", "new body"}}) {
    ASSERT_OK_AND_ASSIGN(ObjectReader r, store_->get("daytona-volume-builds", key));
    EXPECT_EQ(readAllFd(r.fd.get()), want) << key;
  }
}

TEST_F(BlobObjectStoreTest, ExpireSkipsKeptAndRewrittenObjects) {
  ASSERT_OK(store_->put("bucket", "old-keep", "1", {}).status());
  ASSERT_OK(store_->put("bucket", "old-drop", "2", {}).status());
  ASSERT_OK(store_->put("bucket", "old-rewritten", "3", {}).status());
  clock_.advance(std::chrono::seconds(100));
  const SystemTime cutoff = clock_.now();
  ASSERT_OK(store_->put("bucket", "new", "4", {}).status());
  ASSERT_OK_AND_ASSIGN(auto removed, store_->expire("bucket", cutoff, [&](const ObjectInfo& o) {
    if (o.key == "old-rewritten") {
      // Rewritten between the listing and its removal: the fresh object must stay.
      EXPECT_OK(store_->put("bucket", "old-rewritten", "fresh", {}).status());
      return false;
    }
    return o.key == "old-keep";
  }));
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].key, "old-drop");
  EXPECT_THAT(store_->head("bucket", "old-drop"), StatusIs(StatusCode::kNotFound));
  EXPECT_OK(store_->head("bucket", "old-keep").status());
  EXPECT_OK(store_->head("bucket", "new").status());
  ASSERT_OK_AND_ASSIGN(ObjectReader r, store_->get("bucket", "old-rewritten"));
  EXPECT_EQ(readAllFd(r.fd.get()), "fresh");
}

TEST_F(BlobObjectStoreTest, ExpireBuildContextsKeepsWhatWaitingSnapshotsNeed) {
  meta::MemoryMetaStore meta(clock_);
  ASSERT_OK_AND_ASSIGN(meta::Organization org, meta.createOrganization({.name = "acme"}));
  auto snapshot = [&](const std::string& name, meta::SnapshotState state,
                      std::vector<std::string> hashes) {
    meta::Snapshot s;
    s.organization_id = org.id;
    s.name = name;
    s.state = state;
    meta::BuildInfo bi;
    bi.dockerfile_content = "FROM scratch";
    bi.context_hashes = std::move(hashes);
    bi.snapshot_ref = "daytona-" + name + ":daytona";
    s.build_info = bi;
    ASSERT_OK(meta.createSnapshot(s).status());
  };
  snapshot("waiting", meta::SnapshotState::kPending, {"h-pending"});
  snapshot("running", meta::SnapshotState::kBuilding, {"h-building"});
  snapshot("done", meta::SnapshotState::kActive, {"h-done"});
  const std::string bucket = "daytona-volume-builds";
  for (std::string h : {"h-pending", "h-building", "h-done", "h-unused"}) {
    ASSERT_OK(store_->put(bucket, org.id + "/" + h + "/context.tar", "ctx " + h, {}).status());
  }
  // Another organization's context with a hash a waiting snapshot names: not the same object.
  ASSERT_OK(store_->put(bucket, "other-org/h-pending/context.tar", "theirs", {}).status());
  clock_.advance(std::chrono::hours(24 * 8));
  ASSERT_OK(store_->put(bucket, org.id + "/h-recent/context.tar", "recent", {}).status());

  ASSERT_OK_AND_ASSIGN(std::size_t n, expireBuildContexts(*store_, meta, bucket,
                                                          clock_.now() - std::chrono::hours(24)));
  EXPECT_EQ(n, 3u);
  ASSERT_OK_AND_ASSIGN(ListResult left, store_->list(bucket, "", 100, ""));
  std::vector<std::string> keys;
  for (auto& o : left.objects)
    keys.push_back(o.key);
  EXPECT_THAT(keys, ::testing::UnorderedElementsAre(org.id + "/h-building/context.tar",
                                                    org.id + "/h-pending/context.tar",
                                                    org.id + "/h-recent/context.tar"));
  EXPECT_THAT(expireBuildContexts(*store_, meta, "Bad Bucket", clock_.now()),
              StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(BlobObjectStoreTest, ContextExpiryRunsTheGcOnlyWhenSomethingWent) {
  meta::MemoryMetaStore meta(clock_);
  ASSERT_OK(store_->put("daytona-volume-builds", "org/h/context.tar", "ctx", {}).status());
  int gc_runs = 0;
  ContextExpiry::Options o;
  o.bucket = "daytona-volume-builds";
  o.ttl = std::chrono::hours(24);
  o.interval = std::chrono::hours(24);  // the background pass never comes in this test
  o.clock = &clock_;
  o.after_expired = [&] { ++gc_runs; };
  ContextExpiry expiry(*store_, meta, o);
  ASSERT_OK_AND_ASSIGN(std::size_t n, expiry.runOnce());
  EXPECT_EQ(n, 0u);  // a fresh context stays
  EXPECT_EQ(gc_runs, 0);
  clock_.advance(std::chrono::hours(25));
  ASSERT_OK_AND_ASSIGN(n, expiry.runOnce());
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(gc_runs, 1);
  EXPECT_THAT(store_->head("daytona-volume-builds", "org/h/context.tar"),
              StatusIs(StatusCode::kNotFound));
  // Destruction stops the waiting thread at once (the test would hang otherwise).
}

TEST_F(BlobObjectStoreTest, AbandonedUploadsAreAbortedActiveOnesStay) {
  ASSERT_OK_AND_ASSIGN(std::string dead, store_->createMultipart("bucket", "dead", {}));
  ASSERT_OK(store_->uploadPart("bucket", "dead", dead, 1, "part").status());
  ASSERT_OK_AND_ASSIGN(std::string live, store_->createMultipart("other-bucket", "live", {}));
  // The dead one's staging directory last changed two days ago.
  timespec old[2];
  ::clock_gettime(CLOCK_REALTIME, &old[0]);
  old[0].tv_sec -= 2 * 24 * 3600;
  old[1] = old[0];
  auto dir = dir_.path() / "objects" / "buckets" / "bucket" / "uploads" / dead;
  ASSERT_EQ(::utimensat(AT_FDCWD, dir.c_str(), old, 0), 0);
  ASSERT_OK_AND_ASSIGN(
      std::size_t n,
      store_->abortUploadsIdleSince(std::chrono::system_clock::now() - std::chrono::hours(24)));
  EXPECT_EQ(n, 1u);
  EXPECT_THAT(store_->listParts("bucket", "dead", dead), StatusIs(StatusCode::kNotFound));
  ASSERT_OK(store_->uploadPart("other-bucket", "live", live, 1, "still going").status());
  ASSERT_OK(store_->completeMultipart("other-bucket", "live", live, {1}).status());
}

TEST_F(BlobObjectStoreTest, ListModifiedBefore) {
  ASSERT_OK(store_->put("bucket", "old", "1", {}).status());
  clock_.advance(std::chrono::seconds(100));
  ASSERT_OK(store_->put("bucket", "new", "2", {}).status());
  ASSERT_OK(store_->put("elsewhere", "old-too", "3", {}).status());
  ASSERT_OK_AND_ASSIGN(auto before, store_->listModifiedBefore("bucket", clock_.now()));
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before[0].key, "old");
  EXPECT_THAT(store_->listModifiedBefore("BAD", clock_.now()),
              StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace cairn::api
