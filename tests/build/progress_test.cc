#include "cairn/build/progress.h"

#include <thread>

#include "cairn/testing/fake_clock.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::build {
namespace {

using ::cairn::testing::FakeClock;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ProgressTest, PlainFormatLikeBuildKit) {
  MemoryLogSink sink;
  FakeClock clock;
  Progress p(sink, clock);
  auto a = p.start("[1/3] FROM docker.io/library/debian:bookworm");
  p.cached(a);
  auto b = p.start("[2/3] RUN echo hi");
  clock.advance(std::chrono::milliseconds(234));
  p.output(b, "hi\nthere");
  clock.advance(std::chrono::milliseconds(4000));
  p.done(b);
  auto c = p.start("[3/3] RUN false");
  p.error(c, "process \"/bin/sh -c false\" did not complete successfully: exit code: 1");
  EXPECT_EQ(sink.contents(),
            "#1 [1/3] FROM docker.io/library/debian:bookworm\n"
            "#1 CACHED\n"
            "\n"
            "#2 [2/3] RUN echo hi\n"
            "#2 0.234 hi\n"
            "#2 4.234 there\n"
            "#2 DONE 4.2s\n"
            "\n"
            "#3 [3/3] RUN false\n"
            "#3 ERROR: process \"/bin/sh -c false\" did not complete successfully: exit code: 1\n");
}

TEST(ProgressTest, PartialLinesAreJoinedAndTailIsKept) {
  MemoryLogSink sink;
  FakeClock clock;
  Progress p(sink, clock);
  auto v = p.start("RUN x");
  p.output(v, "ab");
  p.output(v, "c\r\nd");
  p.output(v, "e\n");
  for (int i = 0; i < 30; ++i)
    p.output(v, "line " + std::to_string(i) + "\n");
  EXPECT_THAT(sink.contents(), HasSubstr("#1 0.000 abc\n#1 0.000 de\n"));
  auto tail = p.tail(v, 2);
  EXPECT_THAT(tail, ElementsAre("line 28", "line 29"));
}

TEST(ProgressTest, ConcurrentStepsNeverMixWithinALine) {
  MemoryLogSink sink;
  Progress p(sink);
  auto a = p.start("A");
  auto b = p.start("B");
  std::thread t1([&] {
    for (int i = 0; i < 500; ++i)
      p.output(a, "aaaa");
    p.output(a, "\n");
  });
  std::thread t2([&] {
    for (int i = 0; i < 500; ++i)
      p.output(b, "bb\n");
  });
  t1.join();
  t2.join();
  std::string all = sink.contents();
  std::size_t start = 0;
  int lines_a = 0, lines_b = 0;
  while (start < all.size()) {
    auto nl = all.find('\n', start);
    std::string line = all.substr(start, nl - start);
    start = nl + 1;
    if (line.rfind("#1 ", 0) == 0 && line.find("aaaa") != std::string::npos) {
      EXPECT_EQ(line.find('b'), std::string::npos);
      ++lines_a;
    }
    if (line.rfind("#2 ", 0) == 0 && line.find("bb") != std::string::npos) {
      EXPECT_EQ(line.find('a'), std::string::npos);
      ++lines_b;
    }
  }
  EXPECT_EQ(lines_a, 1);
  EXPECT_EQ(lines_b, 500);
}

TEST(ProgressTest, CanceledStepFlushesItsPartialLine) {
  MemoryLogSink sink;
  FakeClock clock;
  Progress p(sink, clock);
  auto a = p.start("[slow 2/2] RUN sleep 100");
  p.output(a, "waiting");
  p.canceled(a);
  EXPECT_EQ(sink.contents(),
            "#1 [slow 2/2] RUN sleep 100\n"
            "#1 0.000 waiting\n"
            "#1 CANCELED\n");
  p.canceled(99);  // an unknown vertex still gets its line, and nothing crashes
  EXPECT_THAT(sink.contents(), HasSubstr("#99 CANCELED\n"));
}

TEST(ProgressTest, FileSinkAppends) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("progress"));
  std::string path = (dir.path() / "build.log").string();
  {
    ASSERT_OK_AND_ASSIGN(auto sink, FileLogSink::open(path));
    sink->write("one\n");
  }
  {
    ASSERT_OK_AND_ASSIGN(auto sink, FileLogSink::open(path));
    sink->write("two\n");
  }
  EXPECT_EQ(*readFile(path), "one\ntwo\n");
  EXPECT_THAT(FileLogSink::open("/nonexistent/dir/log"),
              ::cairn::testing::StatusIs(StatusCode::kNotFound));
}

TEST(ProgressTest, FormatSeconds) {
  EXPECT_EQ(formatSeconds(std::chrono::milliseconds(0)), "0.0s");
  EXPECT_EQ(formatSeconds(std::chrono::milliseconds(4250)), "4.2s");
  EXPECT_EQ(formatSeconds(std::chrono::seconds(75)), "75.0s");
}

}  // namespace
}  // namespace cairn::build
