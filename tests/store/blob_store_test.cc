// Conformance suite: the same behaviour from every BlobStore implementation (STYLE.md §3).
#include "cairn/store/blob_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "cairn/common/fs.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/store/memory_blob_store.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::store {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;

struct StoreFactory {
  std::string name;
  std::function<std::unique_ptr<BlobStore>(const std::filesystem::path&)> make;
};

void PrintTo(const StoreFactory& f, std::ostream* os) {
  *os << f.name;
}

class BlobStoreConformance : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    auto dir = TempDir::create("blob-store-test");
    ASSERT_OK(dir);
    dir_ = std::make_unique<TempDir>(std::move(dir).value());
    store_ = GetParam().make(dir_->path());
    ASSERT_NE(store_, nullptr);
  }
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<BlobStore> store_;
};

TEST_P(BlobStoreConformance, WriteCommitReadBack) {
  ASSERT_OK_AND_ASSIGN(auto w, store_->writer());
  ASSERT_OK(w->write("hello "));
  ASSERT_OK(w->write("world"));
  EXPECT_EQ(w->offset(), 11u);
  Digest want = Digest::ofBytes("hello world");
  ASSERT_OK_AND_ASSIGN(BlobInfo info, w->commit(11, want));
  EXPECT_EQ(info.digest, want);
  EXPECT_EQ(info.size, 11u);
  EXPECT_TRUE(store_->exists(want));
  ASSERT_OK_AND_ASSIGN(BlobInfo again, store_->info(want));
  EXPECT_EQ(again.size, 11u);
  ASSERT_OK_AND_ASSIGN(std::string bytes, store_->readAll(want, 1024));
  EXPECT_EQ(bytes, "hello world");
}

TEST_P(BlobStoreConformance, CommitWithoutExpectationsNamesTheContent) {
  ASSERT_OK_AND_ASSIGN(BlobInfo info, writeBlob(*store_, "abc"));
  EXPECT_EQ(info.digest.str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_P(BlobStoreConformance, DigestMismatchNamesBothAndPublishesNothing) {
  Digest wrong = Digest::ofBytes("something else");
  ASSERT_OK_AND_ASSIGN(auto w, store_->writer());
  ASSERT_OK(w->write("payload"));
  auto r = w->commit(7, wrong);
  EXPECT_THAT(r, StatusIs(StatusCode::kInvalidArgument,
                          ::testing::AllOf(HasSubstr(wrong.str()),
                                           HasSubstr(Digest::ofBytes("payload").str()))));
  EXPECT_FALSE(store_->exists(Digest::ofBytes("payload")));
  EXPECT_FALSE(store_->exists(wrong));
  ASSERT_OK_AND_ASSIGN(auto all, store_->list());
  EXPECT_TRUE(all.empty());
}

TEST_P(BlobStoreConformance, SizeMismatchNamesBoth) {
  ASSERT_OK_AND_ASSIGN(auto w, store_->writer());
  ASSERT_OK(w->write("12345"));
  EXPECT_THAT(w->commit(9, std::nullopt),
              StatusIs(StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("expected 9 bytes"), HasSubstr("got 5 bytes"))));
  EXPECT_FALSE(store_->exists(Digest::ofBytes("12345")));
}

TEST_P(BlobStoreConformance, WriterIsSpentAfterCommitOrAbort) {
  ASSERT_OK_AND_ASSIGN(auto w, store_->writer());
  ASSERT_OK(w->write("x"));
  ASSERT_OK(w->commit());
  EXPECT_THAT(w->write("y"), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(w->commit(), StatusIs(StatusCode::kFailedPrecondition));
  ASSERT_OK_AND_ASSIGN(auto w2, store_->writer());
  ASSERT_OK(w2->write("never"));
  w2->abort();
  w2->abort();
  EXPECT_THAT(w2->commit(), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_FALSE(store_->exists(Digest::ofBytes("never")));
}

TEST_P(BlobStoreConformance, MissingBlobIsNotFound) {
  Digest d = Digest::ofBytes("absent");
  EXPECT_THAT(store_->info(d), StatusIs(StatusCode::kNotFound, HasSubstr(d.str())));
  EXPECT_THAT(store_->openRead(d), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->readAll(d, 10), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->remove(d), StatusIs(StatusCode::kNotFound));
  EXPECT_FALSE(store_->exists(d));
}

TEST_P(BlobStoreConformance, ReadAllRespectsTheCap) {
  ASSERT_OK_AND_ASSIGN(BlobInfo info, writeBlob(*store_, std::string(100, 'a')));
  EXPECT_THAT(store_->readAll(info.digest, 99),
              StatusIs(StatusCode::kResourceExhausted,
                       ::testing::AllOf(HasSubstr("100 bytes"), HasSubstr("99"))));
  EXPECT_OK(store_->readAll(info.digest, 100));
}

TEST_P(BlobStoreConformance, StreamReadSeekAndReadAt) {
  std::string data;
  for (int i = 0; i < 5000; ++i)
    data += static_cast<char>('a' + i % 26);
  ASSERT_OK_AND_ASSIGN(BlobInfo info, writeBlob(*store_, data));
  ASSERT_OK_AND_ASSIGN(auto s, store_->openRead(info.digest));
  EXPECT_EQ(s->size(), 5000u);
  char buf[10];
  ASSERT_OK_AND_ASSIGN(std::size_t n, s->readAt(4995, buf, sizeof buf));
  EXPECT_EQ(std::string(buf, n), data.substr(4995));
  ASSERT_OK(s->seek(26));
  ASSERT_OK_AND_ASSIGN(n, s->read(buf, 3));
  EXPECT_EQ(std::string(buf, n), "abc");
  ASSERT_OK(s->seek(5000));
  ASSERT_OK_AND_ASSIGN(n, s->read(buf, 3));
  EXPECT_EQ(n, 0u);
  EXPECT_THAT(s->seek(5001), StatusIs(StatusCode::kInvalidArgument, HasSubstr("past the end")));
}

TEST_P(BlobStoreConformance, ListWalkRemove) {
  ASSERT_OK_AND_ASSIGN(BlobInfo a, writeBlob(*store_, "a"));
  ASSERT_OK_AND_ASSIGN(BlobInfo b, writeBlob(*store_, "b"));
  ASSERT_OK_AND_ASSIGN(BlobInfo c, writeBlob(*store_, "c"));
  ASSERT_OK_AND_ASSIGN(auto all, store_->list());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_LT(all[0].digest, all[1].digest);
  EXPECT_LT(all[1].digest, all[2].digest);
  int seen = 0;
  EXPECT_THAT(store_->walk([&](const BlobInfo&) {
    ++seen;
    return seen == 2 ? cancelled("stop") : okStatus();
  }),
              StatusIs(StatusCode::kCancelled));
  EXPECT_EQ(seen, 2);
  ASSERT_OK(store_->remove(b.digest));
  EXPECT_FALSE(store_->exists(b.digest));
  EXPECT_TRUE(store_->exists(a.digest));
  ASSERT_OK_AND_ASSIGN(all, store_->list());
  EXPECT_EQ(all.size(), 2u);
  (void)c;
}

TEST_P(BlobStoreConformance, OpenStreamSurvivesRemove) {
  ASSERT_OK_AND_ASSIGN(BlobInfo info, writeBlob(*store_, "keep reading"));
  ASSERT_OK_AND_ASSIGN(auto s, store_->openRead(info.digest));
  ASSERT_OK(store_->remove(info.digest));
  char buf[32];
  ASSERT_OK_AND_ASSIGN(std::size_t n, s->read(buf, sizeof buf));
  EXPECT_EQ(std::string(buf, n), "keep reading");
}

TEST_P(BlobStoreConformance, ConcurrentWritersOfSameBlobAllSucceed) {
  std::string data(256 * 1024, 'z');
  Digest want = Digest::ofBytes(data);
  constexpr int kWriters = 8;
  std::vector<Status> results(kWriters);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] {
      auto w = store_->writer();
      if (!w.ok()) {
        results[i] = w.status();
        return;
      }
      for (std::size_t off = 0; off < data.size(); off += 4096) {
        if (Status s = (*w)->write(std::string_view(data).substr(off, 4096)); !s.ok()) {
          results[i] = s;
          return;
        }
      }
      auto c = (*w)->commit(data.size(), want);
      results[i] = c.status();
    });
  }
  for (auto& t : threads)
    t.join();
  for (const Status& s : results)
    EXPECT_OK(s);
  ASSERT_OK_AND_ASSIGN(auto all, store_->list());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].digest, want);
  ASSERT_OK_AND_ASSIGN(std::string got, store_->readAll(want, data.size()));
  EXPECT_EQ(got, data);
}

TEST_P(BlobStoreConformance, ReadersNeverSeeAPartialBlob) {
  std::string data(4 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<char>(i * 31 + (i >> 9));
  Digest want = Digest::ofBytes(data);
  std::atomic<bool> done{false};
  std::atomic<int> partial{0}, complete{0};
  std::thread reader([&] {
    while (!done.load()) {
      auto bytes = store_->readAll(want, data.size());
      if (bytes.ok()) {
        (Digest::ofBytes(*bytes) == want ? complete : partial)++;
      } else if (bytes.status().code() != StatusCode::kNotFound) {
        partial++;
      }
    }
  });
  for (int round = 0; round < 3; ++round) {
    ASSERT_OK_AND_ASSIGN(auto w, store_->writer());
    for (std::size_t off = 0; off < data.size(); off += 65536) {
      ASSERT_OK(w->write(std::string_view(data).substr(off, 65536)));
    }
    ASSERT_OK(w->commit(data.size(), want));
    ASSERT_OK(store_->remove(want));
  }
  done = true;
  reader.join();
  EXPECT_EQ(partial.load(), 0);
}

TEST_P(BlobStoreConformance, WriteFromFd) {
  ASSERT_OK(writeFileDurable(dir_->path() / "src", "file content"));
  UniqueFd fd(::open((dir_->path() / "src").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  ASSERT_OK_AND_ASSIGN(BlobInfo info,
                       writeBlobFromFd(*store_, fd.get(), Digest::ofBytes("file content")));
  EXPECT_EQ(info.size, 12u);
}

TEST_P(BlobStoreConformance, GarbageCollectionKeepsTheLiveSet) {
  ASSERT_OK_AND_ASSIGN(BlobInfo a, writeBlob(*store_, "live"));
  ASSERT_OK_AND_ASSIGN(BlobInfo b, writeBlob(*store_, "dead one"));
  ASSERT_OK_AND_ASSIGN(BlobInfo c, writeBlob(*store_, "dead two"));
  ASSERT_OK_AND_ASSIGN(GcReport report, collectGarbage(*store_, {a.digest}));
  EXPECT_EQ(report.kept, 1u);
  ASSERT_EQ(report.removed.size(), 2u);
  EXPECT_EQ(report.removed_bytes, 16u);
  EXPECT_TRUE(store_->exists(a.digest));
  EXPECT_FALSE(store_->exists(b.digest));
  EXPECT_FALSE(store_->exists(c.digest));
}

TEST_P(BlobStoreConformance, GarbageCollectionSparesBlobsNewerThanTheCutoff) {
  ASSERT_OK_AND_ASSIGN(BlobInfo a, writeBlob(*store_, "fresh"));
  SystemTime before = a.committed_at - std::chrono::hours(1);
  ASSERT_OK_AND_ASSIGN(GcReport report, collectGarbage(*store_, {}, before));
  EXPECT_TRUE(report.removed.empty());
  EXPECT_TRUE(store_->exists(a.digest));
}

INSTANTIATE_TEST_SUITE_P(
    Stores, BlobStoreConformance,
    ::testing::Values(StoreFactory{"Local",
                                   [](const std::filesystem::path& root) {
                                     auto s = LocalBlobStore::open(root);
                                     return s.ok()
                                                ? std::unique_ptr<BlobStore>(std::move(s).value())
                                                : nullptr;
                                   }},
                      StoreFactory{"Memory",
                                   [](const std::filesystem::path&) {
                                     return std::unique_ptr<BlobStore>(new MemoryBlobStore());
                                   }}),
    [](const ::testing::TestParamInfo<StoreFactory>& p) { return p.param.name; });

}  // namespace
}  // namespace cairn::store
