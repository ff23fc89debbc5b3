#include "cairn/image/context.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/dockerfile/dockerignore.h"
#include "test_util.h"

namespace cairn {
namespace {

using ::cairn::testing::IsOk;
using ::cairn::testing::ScopedWorkDir;
using ::cairn::testing::StatusIs;

ContextEntry entry(std::string source, std::string archive) {
  return ContextEntry{std::move(source), std::move(archive), nullptr};
}

// Spec §2.5 table.
TEST(ContextHashTest, SpecVectors) {
  ScopedWorkDir wd;
  wd.write("requirements.txt", "numpy\n");
  wd.write("src/a.py", "x\n");
  wd.write("src/sub/b.txt", "y\n");
  wd.write("d/B.txt", "B");
  wd.mkdir("d/e");
  wd.write("d/f.txt", "1");
  ASSERT_EQ(::symlink("f.txt", "d/link"), 0);
  wd.write("d/z/y/g.txt", "2");
  wd.mkdir("empty");

  EXPECT_EQ(contextHash(entry("requirements.txt", "requirements.txt")).value(),
            "ce59da7c62f89381d47e17c745ff7194");
  EXPECT_EQ(contextHash(entry("src", "src")).value(), "e026aab578f367af7a8e2966089ef514");
  EXPECT_EQ(contextHash(entry("src", "/srv/ctx/src")).value(), "4e1ed32851fb226e48a2056cc6a7d2ce");
  EXPECT_EQ(contextHash(entry("src/a.py", "src/a.py")).value(), "9ca4174f2b6a3f5933d4bc6a3935388c");
  EXPECT_EQ(contextHash(entry("d", "d")).value(), "4500a7d71be7254c1c3efceea639d8ea");
  EXPECT_EQ(contextHash(entry("empty", "empty")).value(), "a2e4822a98337283e39f7b60acf85ec9");
}

TEST(ContextHashTest, MissingSourceIsNotFound) {
  ScopedWorkDir wd;
  EXPECT_THAT(contextHash(entry("nope", "nope")),
              StatusIs(StatusCode::kNotFound, "Path does not exist: nope"));
  EXPECT_THAT(contextArchiveSize(entry("nope", "nope")),
              StatusIs(StatusCode::kNotFound, "Path does not exist: nope"));
}

TEST(ContextHashTest, DockerignoreRemovesPathsBelowTheEntry) {
  ScopedWorkDir wd;
  wd.write("src/a.py", "x\n");
  wd.write("src/sub/b.txt", "y\n");
  wd.write("src/a.log", "noise\n");
  auto ignore = std::make_shared<dockerfile::DockerIgnore>(
      dockerfile::DockerIgnore::parse("*.log\nsrc/*.log\n").value());
  ContextEntry e = entry("src", "src");
  std::string plain = contextHash(e).value();
  e.dockerignore = ignore;
  EXPECT_NE(contextHash(e).value(), plain);
  // With the log removed from disk, the hash equals the filtered one.
  std::string filtered = contextHash(e).value();
  ASSERT_EQ(::unlink("src/a.log"), 0);
  EXPECT_EQ(contextHash(entry("src", "src")).value(), filtered);
  EXPECT_EQ(filtered, "e026aab578f367af7a8e2966089ef514");
}

TEST(SnapshotRefTest, SpecVectors) {
  EXPECT_EQ(daytonaSnapshotRef("FROM alpine:3.19\nRUN echo hi\n", {}),
            "daytona-69a5124d7f362ef7fdfd04928ceacfd1efc5f509d5c974d8fe48a969b9a88156:daytona");
  EXPECT_EQ(
      daytonaSnapshotRef("FROM alpine:3.19\nRUN echo hi\n",
                         {"e026aab578f367af7a8e2966089ef514", "ce59da7c62f89381d47e17c745ff7194"}),
      "daytona-96e3fed8a5defd2dd6d616c4f4f1094d36efc8b04a1274264560e52d633a23b9:daytona");
  std::string e2e =
      "FROM python:3.13.3-slim-bookworm\n"
      "RUN apt-get update\n"
      "RUN apt-get install -y gcc gfortran build-essential\n"
      "RUN pip install --upgrade pip\n"
      "RUN echo 'debconf debconf/frontend select Noninteractive' | debconf-set-selections\n"
      "COPY requirements.txt /.requirements.txt\n"
      "RUN python -m pip install -r /.requirements.txt\n";
  EXPECT_EQ(daytonaSnapshotRef(e2e, {"ce59da7c62f89381d47e17c745ff7194"}),
            "daytona-f307306c4205f957ee18ad4a92ae623f96384cf7d0b328a8f1ecd39786667e14:daytona");
}

struct Member {
  std::string path;
  int type;
  unsigned mode;
  std::string data;
  std::string link;
};

std::vector<Member> readArchive(const std::string& bytes) {
  std::vector<Member> out;
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, bytes.data(), bytes.size()), ARCHIVE_OK);
  struct archive_entry* e = nullptr;
  int rc;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
    const char* name = archive_entry_pathname_utf8(e);
    if (name == nullptr) name = archive_entry_pathname(e);
    Member m{name, static_cast<int>(archive_entry_filetype(e)),
             static_cast<unsigned>(archive_entry_perm(e)), "", ""};
    if (archive_entry_symlink(e) != nullptr) m.link = archive_entry_symlink(e);
    char buf[4096];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0)
      m.data.append(buf, static_cast<std::size_t>(n));
    out.push_back(std::move(m));
  }
  archive_read_free(a);
  return out;
}

TEST(ContextArchiveTest, DirectoryMembersAreBreadthFirstWithNodeTarHeaders) {
  ScopedWorkDir wd;
  wd.write("src/a.py", "x\n", 0664);
  wd.write("src/sub/b.txt", "y\n", 0755);
  wd.mkdir("src/empty");
  ASSERT_EQ(::symlink("a.py", "src/link"), 0);
  ContextEntry e = entry("src", "src");
  ASSERT_OK_AND_ASSIGN(std::string tar, contextArchive(e));
  ASSERT_OK_AND_ASSIGN(std::uint64_t size, contextArchiveSize(e));
  EXPECT_EQ(tar.size(), size);
  EXPECT_EQ(tar.size() % 512, 0u);
  EXPECT_EQ(tar.substr(tar.size() - 1024), std::string(1024, '\0'));

  std::vector<Member> m = readArchive(tar);
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m[0].path, "src/");
  EXPECT_EQ(m[1].path, "src/a.py");
  EXPECT_EQ(m[2].path, "src/empty/");
  EXPECT_EQ(m[3].path, "src/link");
  EXPECT_EQ(m[4].path, "src/sub/");
  EXPECT_EQ(m[5].path, "src/sub/b.txt");
  EXPECT_EQ(m[1].data, "x\n");
  EXPECT_EQ(m[1].mode, 0644u);  // portable: group/other write bits dropped
  EXPECT_EQ(m[3].type, AE_IFLNK);
  EXPECT_EQ(m[3].link, "a.py");
  EXPECT_EQ(m[5].mode, 0755u);

  // The first header, byte for byte where node-tar differs from other writers.
  std::string h = tar.substr(0, 512);
  EXPECT_EQ(h.substr(0, 5), std::string("src/\0", 5));
  EXPECT_EQ(h.substr(100, 8), std::string("000755 \0", 8));
  EXPECT_EQ(h.substr(108, 16), std::string(16, '\0'));  // uid, gid empty
  EXPECT_EQ(h.substr(124, 12), std::string("0000000000 \0", 12));
  EXPECT_EQ(h.substr(136, 12), std::string(12, '\0'));  // directory mtime empty
  EXPECT_EQ(h[156], '5');
  EXPECT_EQ(h.substr(257, 8), std::string("ustar\0"
                                          "00",
                                          8));
  EXPECT_EQ(h.substr(265, 64), std::string(64, '\0'));  // uname, gname empty
  EXPECT_EQ(h.substr(329, 16), std::string("000000 \0"
                                           "000000 \0",
                                           16));
  EXPECT_EQ(h[154], ' ');  // checksum "NNNNNN \0"
  EXPECT_EQ(h[155], '\0');
}

TEST(ContextArchiveTest, AbsoluteArchivePathIsStrippedAndFileEntryIsSingle) {
  ScopedWorkDir wd;
  wd.write("src/a.py", "x\n");
  std::string abs = (wd.path() / "src").string();
  std::vector<Member> m = readArchive(contextArchive(entry(abs, abs)).value());
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].path, abs.substr(1) + "/");
  EXPECT_EQ(m[1].path, abs.substr(1) + "/a.py");

  std::vector<Member> f = readArchive(contextArchive(entry("src/a.py", "src/a.py")).value());
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].path, "src/a.py");

  // Archive path "" (COPY . .): the root is the source and members start with "./".
  std::vector<Member> dot = readArchive(contextArchive(entry(abs, "")).value());
  ASSERT_EQ(dot.size(), 2u);
  EXPECT_EQ(dot[0].path, "./");
  EXPECT_EQ(dot[1].path, "./a.py");
}

TEST(ContextArchiveTest, LongAndUnicodeNamesUsePrefixOrPax) {
  ScopedWorkDir wd;
  std::string deep = "d/" + std::string(60, 'a') + "/" + std::string(60, 'b') + "/f.txt";
  wd.write(deep, "deep");
  wd.write("d/\xc3\xa9t\xc3\xa9.txt", "u");
  std::string tar = contextArchive(entry("d", "d")).value();
  std::vector<Member> m = readArchive(tar);
  std::vector<std::string> paths;
  for (const Member& x : m)
    paths.push_back(x.path);
  EXPECT_NE(std::find(paths.begin(), paths.end(), deep), paths.end());
  EXPECT_NE(std::find(paths.begin(), paths.end(), "d/\xc3\xa9t\xc3\xa9.txt"), paths.end());
  EXPECT_NE(tar.find("PaxHeader/\xc3\xa9t\xc3\xa9.txt"), std::string::npos);
  EXPECT_NE(tar.find(" path=d/\xc3\xa9t\xc3\xa9.txt\n"), std::string::npos);
}

TEST(ContextArchiveTest, SinkErrorsStopTheWrite) {
  ScopedWorkDir wd;
  wd.write("f.txt", "data");
  int calls = 0;
  Status s = writeContextArchive(entry("f.txt", "f.txt"), [&](std::string_view) {
    ++calls;
    return unavailable("upload failed");
  });
  EXPECT_THAT(s, StatusIs(StatusCode::kUnavailable, "upload failed"));
  EXPECT_EQ(calls, 1);
}

TEST(ContextArchiveTest, DockerignoreRemovesMembers) {
  ScopedWorkDir wd;
  wd.write("src/a.py", "x\n");
  wd.write("src/cache/x.pyc", "c");
  wd.write("src/cache/keep.txt", "k");
  ContextEntry e = entry("src", "src");
  e.dockerignore = std::make_shared<dockerfile::DockerIgnore>(
      dockerfile::DockerIgnore::parse("src/cache\n!src/cache/keep.txt\n").value());
  std::vector<Member> m = readArchive(contextArchive(e).value());
  std::vector<std::string> paths;
  for (const Member& x : m)
    paths.push_back(x.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"src/", "src/a.py", "src/cache/keep.txt"}));
  EXPECT_EQ(contextArchiveSize(e).value(), contextArchive(e).value().size());
}

}  // namespace
}  // namespace cairn
