// LocalBlobStore's layer-tar notes under concurrency: threads and processes publishing the
// same diff id from different layer dirs must all end up in the note (it is updated under an
// flock), and a reader falls back to the next dir when the first ones are gone or changed.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/layer/diff.h"
#include "cairn/layer/stream.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::store {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

// Fixed mtimes, so that trees written at different moments have the same tar (the tar keeps
// mtimes) and therefore the same diff id.
constexpr time_t kMtime = 1700000000;

void setMtime(const fs::path& p) {
  struct timespec times[2] = {{kMtime, 0}, {kMtime, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << p;
}

// Writes a small layer tree at `dir` (same content → same tar) and returns its tar.
std::string makeTree(const fs::path& dir, const std::string& content = "same\n") {
  fs::create_directories(dir / "etc");
  EXPECT_OK(writeFileDurable(dir / "etc" / "motd", content));
  EXPECT_OK(writeFileDurable(dir / "hello.txt", "hello\n"));
  setMtime(dir / "etc" / "motd");
  setMtime(dir / "hello.txt");
  setMtime(dir / "etc");
  setMtime(dir);
  std::string tar;
  layer::StringSink sink(&tar);
  EXPECT_OK(layer::createLayerTar(dir, sink).status());
  return tar;
}

// The dirs a note names, relative to the root, in its order, as written on disk.
std::vector<std::string> noteDirList(const fs::path& root, const Digest& digest) {
  std::vector<std::string> out;
  auto text = readFile(root / "blobs" / "layer-tars" / digest.hex());
  EXPECT_OK(text.status());
  if (!text.ok()) return out;
  auto j = parseJson(*text);
  EXPECT_OK(j.status());
  if (!j.ok()) return out;
  for (const auto& d : (*j)["dirs"])
    out.push_back(d.get<std::string>());
  return out;
}

std::set<std::string> noteDirs(const fs::path& root, const Digest& digest) {
  std::vector<std::string> list = noteDirList(root, digest);
  EXPECT_EQ(std::set<std::string>(list.begin(), list.end()).size(), list.size()) << "duplicates";
  return {list.begin(), list.end()};
}

std::string readAllOf(const BlobStore& store, const Digest& d) {
  auto bytes = store.readAll(d, std::uint64_t{1} << 30);
  EXPECT_OK(bytes.status());
  return bytes.ok() ? std::move(*bytes) : std::string();
}

// "" when `got` is `want`; else how many dirs the note lost (or gained), with a few names.
std::string lostDirs(const std::set<std::string>& want, const std::set<std::string>& got) {
  std::string out;
  std::size_t lost = 0;
  for (const std::string& d : want) {
    if (got.count(d)) continue;
    if (++lost <= 3) out += " " + d;
  }
  if (lost == 0 && got.size() == want.size()) return "";
  return std::to_string(lost) + " of " + std::to_string(want.size()) + " dirs lost (" + out +
         " ), " + std::to_string(got.size()) + " listed";
}

// Compared by digest: a failure prints two lines, not two tars.
std::string digestOfRead(const BlobStore& store, const Digest& d) {
  return Digest::ofBytes(readAllOf(store, d)).str();
}

std::string layerDir(const std::string& who, int i) {
  return "layers/" + who + "-" + std::to_string(i) + "/fs";
}

// Every publisher of the same digest from its own dirs: without the lock, two read-merge-
// writes that overlap lose one of the dirs (last writer wins).
TEST(LayerTarNoteConcurrencyTest, ThreadsPublishingOneDigestFromDifferentDirsKeepEveryDir) {
  ASSERT_OK_AND_ASSIGN(TempDir root, TempDir::create("note-threads"));
  constexpr int kThreads = 4;
  constexpr int kDirsPerThread = 20;
  std::string tar;
  std::set<std::string> all;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kDirsPerThread; ++i) {
      std::string rel = layerDir("t" + std::to_string(t), i);
      tar = makeTree(root.path() / rel);
      all.insert(rel);
    }
  }
  Digest digest = Digest::ofBytes(tar);
  ASSERT_EQ(Digest::ofBytes(makeTree(root.path() / "layers" / "check" / "fs")), digest);
  fs::remove_all(root.path() / "layers" / "check");

  std::atomic<int> ready{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // One store object per thread, as separate builds have.
      auto store = LocalBlobStore::open(root.path());
      if (!store.ok()) {
        ++failures;
        return;
      }
      ++ready;
      while (ready.load() < kThreads)
        std::this_thread::yield();
      for (int i = 0; i < kDirsPerThread; ++i) {
        fs::path dir = root.path() / layerDir("t" + std::to_string(t), i);
        if (!(*store)->putLayerTar(dir, digest, tar.size()).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads)
    th.join();
  ASSERT_EQ(failures.load(), 0);
  EXPECT_EQ(lostDirs(all, noteDirs(root.path(), digest)), "");

  // Every dir but the last one the note names goes (layer GC): the blob still reads, from the
  // remaining one, and the made tar checks against the digest.
  ASSERT_OK_AND_ASSIGN(auto store, LocalBlobStore::open(root.path()));
  std::string keep = noteDirList(root.path(), digest).back();
  for (const std::string& rel : all)
    if (rel != keep) fs::remove_all(root.path() / rel);
  EXPECT_TRUE(store->exists(digest));
  EXPECT_EQ(digestOfRead(*store, digest), digest.str());
  // A new publish drops the dirs that are gone and keeps the survivor.
  makeTree(root.path() / "layers" / "late" / "fs");
  ASSERT_OK(
      store->putLayerTar(root.path() / "layers" / "late" / "fs", digest, tar.size()).status());
  EXPECT_EQ(noteDirs(root.path(), digest), (std::set<std::string>{keep, "layers/late/fs"}));
}

// The same across processes (a `cairn serve` build and a CLI `cairn build` on one data dir):
// each child opens its own store and publishes its own dirs; a pipe starts them together.
TEST(LayerTarNoteConcurrencyTest, ProcessesPublishingOneDigestFromDifferentDirsKeepEveryDir) {
  ASSERT_OK_AND_ASSIGN(TempDir root, TempDir::create("note-procs"));
  constexpr int kProcs = 3;
  constexpr int kDirsPerProc = 20;
  std::string tar;
  std::set<std::string> all;
  for (int p = 0; p < kProcs; ++p) {
    for (int i = 0; i < kDirsPerProc; ++i) {
      std::string rel = layerDir("p" + std::to_string(p), i);
      tar = makeTree(root.path() / rel);
      all.insert(rel);
    }
  }
  Digest digest = Digest::ofBytes(tar);

  int gate[2];
  ASSERT_EQ(::pipe(gate), 0);
  std::vector<pid_t> children;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0) << "fork: " << std::strerror(errno);
    if (pid == 0) {
      // The child: no gtest macros (their failures would not reach the parent); the exit
      // status says what went wrong.
      ::close(gate[1]);
      char c;
      while (::read(gate[0], &c, 1) < 0 && errno == EINTR) {
      }
      auto store = LocalBlobStore::open(root.path());
      if (!store.ok()) ::_exit(2);
      for (int i = 0; i < kDirsPerProc; ++i) {
        fs::path dir = root.path() / layerDir("p" + std::to_string(p), i);
        if (!(*store)->putLayerTar(dir, digest, tar.size()).ok()) ::_exit(3);
      }
      ::_exit(0);
    }
    children.push_back(pid);
  }
  ::close(gate[0]);
  ::close(gate[1]);  // EOF in every child at once: go
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "child " << pid << " died, status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0) << "child " << pid << " failed to publish";
  }
  EXPECT_EQ(lostDirs(all, noteDirs(root.path(), digest)), "");

  ASSERT_OK_AND_ASSIGN(auto store, LocalBlobStore::open(root.path()));
  std::string keep = noteDirList(root.path(), digest).back();
  for (const std::string& rel : all)
    if (rel != keep) fs::remove_all(root.path() / rel);
  EXPECT_EQ(digestOfRead(*store, digest), digest.str());
}

// Removal (the GC) takes the same lock as publishing: interleaved with publishes, the note is
// always whole JSON, and once both sides stop it is either gone or names a live dir.
TEST(LayerTarNoteConcurrencyTest, RemovalRacingPublishesLeavesAWholeNoteOrNone) {
  ASSERT_OK_AND_ASSIGN(TempDir root, TempDir::create("note-remove"));
  std::string tar = makeTree(root.path() / "layers" / "a" / "fs");
  makeTree(root.path() / "layers" / "b" / "fs");
  Digest digest = Digest::ofBytes(tar);
  ASSERT_OK_AND_ASSIGN(auto publisher, LocalBlobStore::open(root.path()));
  ASSERT_OK_AND_ASSIGN(auto collector, LocalBlobStore::open(root.path()));
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::thread publish([&] {
    for (int i = 0; i < 200 && !stop; ++i) {
      fs::path dir = root.path() / "layers" / (i % 2 ? "a" : "b") / "fs";
      if (!publisher->putLayerTar(dir, digest, tar.size()).ok()) ++failures;
    }
    stop = true;
  });
  int reads = 0;
  while (!stop) {
    Status s = collector->remove(digest);
    if (!s.ok() && s.code() != StatusCode::kNotFound) ++failures;
    auto stream = collector->openRead(digest);
    if (stream.ok()) {
      ++reads;
    } else if (stream.status().code() != StatusCode::kNotFound) {
      ADD_FAILURE() << stream.status().message();
      break;
    }
  }
  publish.join();
  EXPECT_EQ(failures.load(), 0);
  // The last publish came after the last removal, or the other way round.
  if (collector->exists(digest)) {
    EXPECT_EQ(digestOfRead(*collector, digest), digest.str());
  }
  // The publisher's last dir, published again now, is always listed.
  ASSERT_OK(
      publisher->putLayerTar(root.path() / "layers" / "a" / "fs", digest, tar.size()).status());
  EXPECT_TRUE(noteDirs(root.path(), digest).count("layers/a/fs"));
  RecordProperty("reads_between_removals", reads);
}

// A reader takes no lock: when the dir it would read first changed under it (or went), it
// makes the tar from the next dir the note names, and checks that one against the digest.
TEST(LayerTarNoteConcurrencyTest, AReaderFallsBackToTheNextDirWhenTheFirstChanged) {
  ASSERT_OK_AND_ASSIGN(TempDir root, TempDir::create("note-fallback"));
  ASSERT_OK_AND_ASSIGN(auto store, LocalBlobStore::open(root.path()));
  std::string tar = makeTree(root.path() / "layers" / "a" / "fs");
  makeTree(root.path() / "layers" / "b" / "fs");
  Digest digest = Digest::ofBytes(tar);
  ASSERT_OK(store->putLayerTar(root.path() / "layers" / "a" / "fs", digest, tar.size()).status());
  ASSERT_OK(store->putLayerTar(root.path() / "layers" / "b" / "fs", digest, tar.size()).status());
  ASSERT_EQ(noteDirs(root.path(), digest).size(), 2u);
  // Both dirs changed: a clear error naming the digest, never wrong bytes.
  for (const char* name : {"a", "b"})
    ASSERT_OK(writeFileDurable(root.path() / "layers" / name / "fs" / "hello.txt", "changed\n"));
  EXPECT_THAT(store->openRead(digest),
              StatusIs(StatusCode::kInternal, HasSubstr("the directory changed")));
  // One restored (with its mtime): whichever of the two it is, the blob reads.
  makeTree(root.path() / "layers" / "a" / "fs");
  EXPECT_EQ(digestOfRead(*store, digest), digest.str());
  makeTree(root.path() / "layers" / "b" / "fs");
  ASSERT_OK(writeFileDurable(root.path() / "layers" / "a" / "fs" / "hello.txt", "changed\n"));
  EXPECT_EQ(digestOfRead(*store, digest), digest.str());
  ASSERT_OK_AND_ASSIGN(FsckReport report, store->fsck());
  EXPECT_TRUE(report.corrupt.empty());
}

// Publishing a dir the note names already (a rebuild that hit the cache) leaves the note as it
// is, without taking the lock or writing; a broken note is replaced by a good one.
TEST(LayerTarNoteConcurrencyTest, RepublishingIsANoOpAndABrokenNoteIsReplaced) {
  ASSERT_OK_AND_ASSIGN(TempDir root, TempDir::create("note-republish"));
  ASSERT_OK_AND_ASSIGN(auto store, LocalBlobStore::open(root.path()));
  std::string tar = makeTree(root.path() / "layers" / "a" / "fs");
  Digest digest = Digest::ofBytes(tar);
  fs::path note = root.path() / "blobs" / "layer-tars" / digest.hex();
  ASSERT_OK(store->putLayerTar(root.path() / "layers" / "a" / "fs", digest, tar.size()).status());
  struct stat before {};
  ASSERT_EQ(::stat(note.c_str(), &before), 0);
  ASSERT_OK(store->putLayerTar(root.path() / "layers" / "a" / "fs", digest, tar.size()).status());
  struct stat after {};
  ASSERT_EQ(::stat(note.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino) << "the note was rewritten";
  // The same dir with another size is still refused.
  EXPECT_THAT(store->putLayerTar(root.path() / "layers" / "a" / "fs", digest, tar.size() + 1),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("bytes, not")));

  ASSERT_OK(writeFileDurable(note, "{not json", 0444));
  EXPECT_THAT(store->openRead(digest), StatusIs(StatusCode::kInternal, HasSubstr("not a JSON")));
  ASSERT_OK(store->putLayerTar(root.path() / "layers" / "a" / "fs", digest, tar.size()).status());
  EXPECT_EQ(noteDirList(root.path(), digest), std::vector<std::string>{"layers/a/fs"});
  EXPECT_EQ(digestOfRead(*store, digest), digest.str());
  // The lock files are not blobs.
  ASSERT_OK_AND_ASSIGN(auto all, store->list());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].digest, digest);
  ASSERT_OK_AND_ASSIGN(FsckReport report, store->fsck());
  EXPECT_TRUE(report.corrupt.empty());
}

}  // namespace
}  // namespace cairn::store
