// createLayerTar: what goes into the tar, in which order, and that apply gives the tree back.
#include "cairn/layer/diff.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "cairn/common/fs.h"
#include "cairn/layer/apply.h"
#include "cairn/layer/compression.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::layer {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

struct TarEntry {
  std::string path;
  mode_t type;
  mode_t perm;
  std::int64_t mtime;
  std::string link;
  std::string hardlink;
  std::int64_t size;
};

std::vector<TarEntry> listTar(const std::string& tar) {
  std::vector<TarEntry> out;
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, tar.data(), tar.size()), ARCHIVE_OK);
  struct archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    out.push_back({archive_entry_pathname(e), archive_entry_filetype(e), archive_entry_perm(e),
                   archive_entry_mtime(e), archive_entry_symlink(e) ? archive_entry_symlink(e) : "",
                   archive_entry_hardlink(e) ? archive_entry_hardlink(e) : "",
                   archive_entry_size(e)});
  }
  archive_read_free(a);
  return out;
}

void touch(const fs::path& p, std::int64_t mtime) {
  struct timespec ts[2] = {{static_cast<time_t>(mtime), 0}, {static_cast<time_t>(mtime), 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << p;
}

class DiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create("diff-test");
    ASSERT_OK(dir);
    tmp_ = std::make_unique<TempDir>(std::move(dir).value());
    src_ = tmp_->path() / "src";
    fs::create_directories(src_ / "usr/bin");
    fs::create_directories(src_ / "a-b");
    ASSERT_OK(writeFileDurable(src_ / "usr/bin/tool", "#!/bin/sh\necho hi\n", 0755));
    ASSERT_OK(writeFileDurable(src_ / "a-b/file", "dash"));
    ASSERT_OK(writeFileDurable(src_ / "suid", "s", 0755));
    ASSERT_EQ(::chmod((src_ / "suid").c_str(), 04755), 0);
    fs::create_directories(src_ / "tmp");
    ASSERT_EQ(::chmod((src_ / "tmp").c_str(), 01777), 0);
    fs::create_symlink("usr/bin", src_ / "bin");
    fs::create_hard_link(src_ / "usr/bin/tool", src_ / "usr/bin/tool-alias");
    ASSERT_EQ(::mkfifo((src_ / "fifo").c_str(), 0600), 0);
    for (const char* p :
         {"usr/bin/tool", "a-b/file", "suid", "bin", "fifo", "usr/bin", "usr", "a-b", "tmp"}) {
      touch(src_ / p, 1600000000);
    }
  }

  std::string tarOf(const DiffOptions& o = {}) {
    std::string tar;
    StringSink sink(&tar);
    auto r = createLayerTar(src_, sink, o);
    EXPECT_OK(r);
    return tar;
  }

  std::unique_ptr<TempDir> tmp_;
  fs::path src_;
};

TEST_F(DiffTest, EntriesAreSortedParentFirstWithTypes) {
  std::vector<TarEntry> entries = listTar(tarOf());
  std::vector<std::string> names;
  for (const auto& e : entries)
    names.push_back(e.path);
  EXPECT_EQ(names,
            (std::vector<std::string>{"a-b/", "a-b/file", "bin", "fifo", "suid", "tmp/", "usr/",
                                      "usr/bin/", "usr/bin/tool", "usr/bin/tool-alias"}));
  auto find = [&](const std::string& p) {
    for (const auto& e : entries)
      if (e.path == p) return e;
    ADD_FAILURE() << "no entry " << p;
    return TarEntry{};
  };
  EXPECT_EQ(find("bin").type, static_cast<mode_t>(AE_IFLNK));
  EXPECT_EQ(find("bin").link, "usr/bin");
  EXPECT_EQ(find("fifo").type, static_cast<mode_t>(AE_IFIFO));
  EXPECT_EQ(find("suid").perm, 04755u);
  EXPECT_EQ(find("tmp/").perm, 01777u);
  EXPECT_EQ(find("usr/bin/tool-alias").hardlink, "usr/bin/tool");
  EXPECT_EQ(find("usr/bin/tool").size, 18);
  EXPECT_EQ(find("usr/bin/tool").mtime, 1600000000);
}

TEST_F(DiffTest, SameTreeSameBytes) {
  EXPECT_EQ(Digest::ofBytes(tarOf()), Digest::ofBytes(tarOf()));
}

TEST_F(DiffTest, SourceDateEpochClampsLaterMtimesOnly) {
  touch(src_ / "suid", 1900000000);
  std::vector<TarEntry> entries = listTar(tarOf({.source_date_epoch = 1700000000}));
  for (const auto& e : entries) {
    if (e.path == "suid") {
      EXPECT_EQ(e.mtime, 1700000000);
    } else {
      EXPECT_EQ(e.mtime, 1600000000) << e.path;  // older ones are kept
    }
  }
}

TEST_F(DiffTest, RoundTripThroughApply) {
  fs::path out = tmp_->path() / "out";
  fs::create_directories(out);
  std::string blob;
  StringSink sink(&blob);
  LayerEncoder enc(Compression::kZstd, &sink);
  ASSERT_OK(createLayerTar(src_, enc));
  ASSERT_OK_AND_ASSIGN(EncodedLayer layer, enc.finishLayer());
  StringSource in(blob);
  ASSERT_OK_AND_ASSIGN(auto tar, makeAutoDecompressor(&in));
  ApplyOptions o;
  o.preserve_owner = ::geteuid() == 0;
  ASSERT_OK(applyLayerTar(*tar, out, o));
  EXPECT_NE(layer.diff_id, layer.digest);

  for (auto it = fs::recursive_directory_iterator(src_); it != fs::recursive_directory_iterator();
       ++it) {
    fs::path rel = it->path().lexically_relative(src_);
    struct stat a {
    }, b{};
    ASSERT_EQ(::lstat(it->path().c_str(), &a), 0);
    ASSERT_EQ(::lstat((out / rel).c_str(), &b), 0) << rel;
    EXPECT_EQ(a.st_mode, b.st_mode) << rel;
    EXPECT_EQ(a.st_mtim.tv_sec, b.st_mtim.tv_sec) << rel;
    if (S_ISREG(a.st_mode)) {
      EXPECT_EQ(*readFile(it->path()), *readFile(out / rel)) << rel;
      EXPECT_EQ(a.st_nlink, b.st_nlink) << rel;
    }
    if (S_ISLNK(a.st_mode)) {
      EXPECT_EQ(fs::read_symlink(it->path()), fs::read_symlink(out / rel));
    }
  }
}

TEST_F(DiffTest, GnuTarExtractsWhatWeWrite) {
  fs::path tarball = tmp_->path() / "layer.tar";
  ASSERT_OK(writeFileDurable(tarball, tarOf()));
  fs::path out = tmp_->path() / "gnu-out";
  fs::create_directories(out);
  std::string cmd = "tar -C '" + out.string() + "' -xpf '" + tarball.string() + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  for (auto it = fs::recursive_directory_iterator(src_); it != fs::recursive_directory_iterator();
       ++it) {
    fs::path rel = it->path().lexically_relative(src_);
    struct stat a {
    }, b{};
    ASSERT_EQ(::lstat(it->path().c_str(), &a), 0);
    ASSERT_EQ(::lstat((out / rel).c_str(), &b), 0) << rel;
    EXPECT_EQ(a.st_mode, b.st_mode) << rel;
    EXPECT_EQ(a.st_mtim.tv_sec, b.st_mtim.tv_sec) << rel;
    if (S_ISREG(a.st_mode)) {
      EXPECT_EQ(*readFile(it->path()), *readFile(out / rel)) << rel;
      EXPECT_EQ(a.st_nlink, b.st_nlink) << rel;
    }
  }
}

TEST_F(DiffTest, ReservedWhiteoutNamesAreRefused) {
  ASSERT_OK(writeFileDurable(src_ / ".wh.sneaky", ""));
  std::string tar;
  StringSink sink(&tar);
  EXPECT_THAT(createLayerTar(src_, sink),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr(".wh.sneaky")));
}

TEST_F(DiffTest, MissingDirIsAnError) {
  std::string tar;
  StringSink sink(&tar);
  EXPECT_THAT(createLayerTar(tmp_->path() / "nope", sink), StatusIs(StatusCode::kNotFound));
}

TEST_F(DiffTest, SinkErrorsArePropagated) {
  FunctionSink sink([](std::string_view) { return resourceExhausted("disk full"); });
  EXPECT_THAT(createLayerTar(src_, sink),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("disk full")));
}

}  // namespace
}  // namespace cairn::layer
