#include "cairn/build/tty_progress.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <optional>
#include <thread>

#include "cairn/common/fs.h"
#include "cairn/testing/fake_clock.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::build {
namespace {

using ::cairn::testing::FakeClock;
using ::cairn::testing::StatusIs;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

SteadyTime at(int ms) {
  return SteadyTime{} + milliseconds(ms);
}

// A build as Progress writes it: two stages interleaved, a cached step, a failure.
constexpr std::string_view kFailedBuild =
    "#1 [internal] load build definition from Dockerfile\n"
    "#1 transferring dockerfile: 46B done\n"
    "#1 DONE 0.0s\n"
    "\n"
    "#2 [base 1/2] FROM localhost/debian:bookworm\n"
    "#2 CACHED\n"
    "\n"
    "#3 [base 2/2] RUN apt-get update\n"
    "\n"
    "#4 [other 1/1] RUN echo one; echo two; false\n"
    "#3 0.412 Get:1 http://deb.debian.org/debian bookworm InRelease [151 kB]\n"
    "#4 0.101 one\n"
    "#3 1.020 Reading package lists...\n"
    "#4 0.102 two\n"
    "#4 ERROR: process \"/bin/sh -c echo one; echo two; false\" did not complete successfully: "
    "exit code: 1\n"
    "#3 CANCELED\n"
    "------\n"
    "ERROR: failed to solve: process \"/bin/sh -c echo one; echo two; false\" did not complete "
    "successfully: exit code: 1\n";

PlainProgressParser parse(std::string_view stream) {
  PlainProgressParser p;
  p.feed(stream, at(0));
  p.finish(at(0));
  return p;
}

TEST(PlainProgressParserTest, StepsStatesAndMessages) {
  PlainProgressParser p = parse(kFailedBuild);
  const auto& v = p.vertices();
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[0].name, "[internal] load build definition from Dockerfile");
  EXPECT_EQ(v[0].state, TtyVertex::State::kDone);
  EXPECT_EQ(v[0].duration, "0.0s");
  ASSERT_EQ(v[0].logs.size(), 1u);
  EXPECT_EQ(v[0].logs[0].timestamp, "");
  EXPECT_EQ(v[0].logs[0].text, "transferring dockerfile: 46B done");
  EXPECT_EQ(v[1].state, TtyVertex::State::kCached);
  EXPECT_EQ(v[2].id, 3);
  EXPECT_EQ(v[2].state, TtyVertex::State::kCanceled);
  ASSERT_EQ(v[2].logs.size(), 2u);
  EXPECT_EQ(v[2].logs[1].timestamp, "1.020");
  EXPECT_EQ(v[2].logs[1].text, "Reading package lists...");
  EXPECT_EQ(v[3].state, TtyVertex::State::kError);
  EXPECT_EQ(v[3].error,
            "process \"/bin/sh -c echo one; echo two; false\" did not complete successfully: "
            "exit code: 1");
  ASSERT_EQ(v[3].logs.size(), 2u);
  EXPECT_EQ(v[3].logs[0].text, "one");
  EXPECT_THAT(p.messages(), ElementsAre("------", HasSubstr("ERROR: failed to solve")));
  EXPECT_TRUE(p.anyError());
}

TEST(PlainProgressParserTest, SplitAnywhereGivesTheSameSteps) {
  PlainProgressParser whole = parse(kFailedBuild);
  // Every split point, including inside "#4", inside a UTF-8 character and before a '\n'.
  std::string stream = std::string(kFailedBuild) + "#5 [x] RUN echo héllo\n#5 0.001 ünïcødé\n";
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    PlainProgressParser p;
    p.feed(std::string_view(stream).substr(0, cut), at(0));
    p.feed(std::string_view(stream).substr(cut), at(0));
    p.finish(at(0));
    ASSERT_EQ(p.vertices().size(), 5u) << "cut at " << cut;
    for (std::size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(p.vertices()[i].state, whole.vertices()[i].state) << "cut at " << cut;
      EXPECT_EQ(p.vertices()[i].logs.size(), whole.vertices()[i].logs.size()) << "cut " << cut;
    }
    EXPECT_EQ(p.vertices()[4].logs.back().text, "ünïcødé") << "cut at " << cut;
    EXPECT_EQ(p.messages(), whole.messages()) << "cut at " << cut;
  }
}

TEST(PlainProgressParserTest, LastLineWithoutNewlineAndCrLf) {
  PlainProgressParser p;
  p.feed("#1 [1/1] RUN x\r\n#1 0.5 partial", at(0));
  EXPECT_TRUE(p.vertices()[0].logs.empty());  // held back until its newline
  p.finish(at(0));
  EXPECT_EQ(p.vertices()[0].name, "[1/1] RUN x");
  ASSERT_EQ(p.vertices()[0].logs.size(), 1u);
  EXPECT_EQ(p.vertices()[0].logs[0].timestamp, "0.5");
  EXPECT_EQ(p.vertices()[0].logs[0].text, "partial");
}

TEST(PlainProgressParserTest, NotAStepLineIsAMessage) {
  PlainProgressParser p = parse("#notanumber hello\n#12345678901 too long an id\n# x\nplain\n");
  EXPECT_TRUE(p.vertices().empty());
  EXPECT_THAT(p.messages(),
              ElementsAre("#notanumber hello", "#12345678901 too long an id", "# x", "plain"));
  EXPECT_FALSE(p.anyError());
}

TEST(PlainProgressParserTest, RepeatedNameIsNotOutput) {
  PlainProgressParser p = parse("#1 [1/2] RUN a\n#1 [1/2] RUN a\n#1 0.1 out\n");
  ASSERT_EQ(p.vertices()[0].logs.size(), 1u);
  EXPECT_EQ(p.vertices()[0].logs[0].text, "out");
}

TEST(PlainProgressParserTest, VeryLongLinesAndLogsStayBounded) {
  PlainProgressParser p;
  p.feed("#1 [1/1] RUN yes\n#1 0.1 ", at(0));
  std::string chunk(4096, 'y');
  for (int i = 0; i < 40; ++i)  // 160 KiB without a newline
    p.feed(chunk, at(0));
  p.feed("\n#1 0.2 after\n", at(0));
  const auto& logs = p.vertices()[0].logs;
  ASSERT_EQ(logs.size(), 2u);  // the cut line, then the next one; the rest was dropped
  EXPECT_LE(logs[0].text.size(), PlainProgressParser::kMaxLineBytes);
  EXPECT_GT(logs[0].text.size(), 60000u);
  EXPECT_EQ(logs[1].text, "after");
  EXPECT_TRUE(p.messages().empty());

  PlainProgressParser many;
  many.feed("#1 [1/1] RUN seq\n", at(0));
  for (std::size_t i = 0; i < PlainProgressParser::kMaxLogLines + 10; ++i)
    many.feed("#1 0.1 line " + std::to_string(i) + "\n", at(0));
  EXPECT_EQ(many.vertices()[0].logs.size(), PlainProgressParser::kMaxLogLines);
  EXPECT_EQ(many.vertices()[0].dropped_logs, 10u);
  EXPECT_EQ(many.vertices()[0].logs.front().text, "line 10");
}

TEST(TtyTextTest, DisplayWidth) {
  EXPECT_EQ(displayWidth("abc"), 3u);
  EXPECT_EQ(displayWidth("héllo"), 5u);
  EXPECT_EQ(displayWidth("日本語"), 6u);
  EXPECT_EQ(displayWidth("e\xcc\x81"), 1u);         // e + combining acute
  EXPECT_EQ(displayWidth("\xf0\x9f\x90\xb3"), 2u);  // whale emoji
  EXPECT_EQ(displayWidth("a\xffz"), 3u);            // invalid byte shown as U+FFFD
}

TEST(TtyTextTest, TruncateNeverCutsACharacter) {
  EXPECT_EQ(truncateToWidth("hello", 3), "hel");
  EXPECT_EQ(truncateToWidth("hello", 10), "hello");
  EXPECT_EQ(truncateToWidth("héllo", 2), "hé");
  EXPECT_EQ(truncateToWidth("日本語", 3), "日");  // the second one needs 2 columns
  EXPECT_EQ(truncateToWidth("日本語", 4), "日本");
  EXPECT_EQ(truncateToWidth("e\xcc\x81x", 1), "e\xcc\x81");  // the mark stays with its letter
  EXPECT_EQ(truncateToWidth("abc", 0), "");
}

TEST(TtyTextTest, SanitizeDropsEscapesAndControls) {
  EXPECT_EQ(sanitizeForTerminal("\x1b[1;31mred\x1b[0m text"), "red text");
  EXPECT_EQ(sanitizeForTerminal("a\tb"), "a b");
  EXPECT_EQ(sanitizeForTerminal(" 10%\r 50%\r100%\r"), "100%");
  EXPECT_EQ(sanitizeForTerminal("bell\a and \x1b]0;title\a done"), "bell and  done");
  EXPECT_EQ(sanitizeForTerminal("x\x1b[2Ky\x7f\x01"), "xy");
  EXPECT_EQ(sanitizeForTerminal("bad \xff byte"), "bad \xef\xbf\xbd byte");
  EXPECT_EQ(sanitizeForTerminal("c1 \xc2\x9b control"), "c1  control");
  EXPECT_EQ(sanitizeForTerminal("日本語"), "日本語");
  EXPECT_EQ(sanitizeForTerminal("trailing esc \x1b"), "trailing esc ");
}

TEST(TtyProgressModeTest, Parse) {
  ASSERT_OK_AND_ASSIGN(ProgressMode m, parseProgressMode("tty"));
  EXPECT_EQ(m, ProgressMode::kTty);
  ASSERT_OK_AND_ASSIGN(m, parseProgressMode("plain"));
  EXPECT_EQ(m, ProgressMode::kPlain);
  ASSERT_OK_AND_ASSIGN(m, parseProgressMode("auto"));
  EXPECT_EQ(m, ProgressMode::kAuto);
  EXPECT_THAT(parseProgressMode("fancy"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("auto, plain or tty")));
}

TEST(TtyProgressModeTest, AutoNeedsATerminalAndAUsefulTerm) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  UniqueFd r(p[0]), w(p[1]);
  EXPECT_FALSE(useTtyProgress(ProgressMode::kAuto, w.get(), "xterm"));
  EXPECT_TRUE(useTtyProgress(ProgressMode::kTty, w.get(), "dumb"));
  EXPECT_FALSE(useTtyProgress(ProgressMode::kPlain, w.get(), "xterm"));

  UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY));
  if (!master.valid()) GTEST_SKIP() << "no pseudo-terminals here (posix_openpt failed)";
  ASSERT_EQ(grantpt(master.get()), 0);
  ASSERT_EQ(unlockpt(master.get()), 0);
  UniqueFd tty(open(ptsname(master.get()), O_RDWR | O_NOCTTY));
  ASSERT_TRUE(tty.valid());
  EXPECT_TRUE(useTtyProgress(ProgressMode::kAuto, tty.get(), "xterm-256color"));
  EXPECT_FALSE(useTtyProgress(ProgressMode::kAuto, tty.get(), "dumb"));
  EXPECT_FALSE(useTtyProgress(ProgressMode::kAuto, tty.get(), nullptr));
  EXPECT_FALSE(useTtyProgress(ProgressMode::kAuto, tty.get(), ""));

  winsize ws{};
  ws.ws_col = 132;
  ws.ws_row = 40;
  ASSERT_EQ(ioctl(tty.get(), TIOCSWINSZ, &ws), 0);
  TerminalSize size = terminalSize(tty.get());
  EXPECT_EQ(size.columns, 132u);
  EXPECT_EQ(size.rows, 40u);
  size = terminalSize(w.get());  // a pipe: the fallback
  EXPECT_EQ(size.columns, 80u);
  EXPECT_EQ(size.rows, 24u);
}

TtyRenderOptions plainOptions(std::size_t width = 60) {
  TtyRenderOptions o;
  o.width = width;
  o.color = false;
  return o;
}

TEST(RenderTtyFrameTest, RunningStepsShowTheirLastLogLines) {
  PlainProgressParser p;
  p.feed("#1 [1/3] FROM base\n#1 CACHED\n\n", at(0));
  p.feed("#2 [2/3] COPY a /a\n", at(100));
  p.feed("#2 DONE 0.3s\n\n", at(400));
  p.feed("#3 [3/3] RUN make\n", at(500));
  for (int i = 1; i <= 8; ++i)
    p.feed("#3 0." + std::to_string(i) + "00 line " + std::to_string(i) + "\n", at(600));
  auto frame = renderTtyFrame(p, at(0), at(2750), plainOptions());
  EXPECT_THAT(frame, ElementsAre("[+] Building 2.7s (2/3)",
                                 " => CACHED [1/3] FROM base                             0.0s",
                                 " => [2/3] COPY a /a                                    0.3s",
                                 " => [3/3] RUN make                                     2.2s",
                                 " => => # line 3", " => => # line 4", " => => # line 5",
                                 " => => # line 6", " => => # line 7", " => => # line 8"));
  for (const std::string& line : frame)
    EXPECT_LT(displayWidth(line), 60u) << line;

  // Finished: no logs, the time stays what the stream said.
  p.feed("#3 DONE 3.0s\n", at(3500));
  frame = renderTtyFrame(p, at(0), at(9000), plainOptions());
  EXPECT_THAT(frame,
              ElementsAre("[+] Building 9.0s (3/3)", HasSubstr("FROM base"), HasSubstr("COPY a /a"),
                          " => [3/3] RUN make                                     3.0s"));
}

TEST(RenderTtyFrameTest, FinalFrameAndSummaryOfAFailure) {
  PlainProgressParser p = parse(kFailedBuild);
  TtyRenderOptions o = plainOptions(100);
  o.final = true;
  auto frame = renderTtyFrame(p, at(0), at(1500), o);
  ASSERT_EQ(frame.size(), 5u);
  EXPECT_EQ(frame[0], "[+] Building 1.5s (4/4) FAILED");
  EXPECT_THAT(frame[1], HasSubstr(" => [internal] load build definition from Dockerfile"));
  EXPECT_THAT(frame[2], HasSubstr(" => CACHED [base 1/2] FROM localhost/debian:bookworm"));
  EXPECT_THAT(frame[3], HasSubstr(" => CANCELED [base 2/2] RUN apt-get update"));
  EXPECT_THAT(frame[4], HasSubstr(" => ERROR [other 1/1] RUN echo one; echo two; false"));
  EXPECT_THAT(renderTtySummary(p),
              ElementsAre("------", " > [other 1/1] RUN echo one; echo two; false:", "#4 0.101 one",
                          "#4 0.102 two", "------", "------",
                          HasSubstr("ERROR: failed to solve: process \"/bin/sh -c echo one")));
}

TEST(RenderTtyFrameTest, SummaryNamesTheErrorWhenTheStreamHasNoFinalLine) {
  PlainProgressParser p = parse("#1 [1/1] RUN false\n#1 ERROR: exit code: 1\n");
  EXPECT_THAT(renderTtySummary(p),
              ElementsAre("------", " > [1/1] RUN false:", "------", "ERROR: exit code: 1"));
  EXPECT_TRUE(renderTtySummary(parse("#1 [1/1] RUN true\n#1 DONE 0.1s\n")).empty());
}

TEST(RenderTtyFrameTest, FinishedBuildSaysFinished) {
  PlainProgressParser p = parse("#1 [1/1] RUN true\n#1 DONE 0.1s\n");
  TtyRenderOptions o = plainOptions();
  o.final = true;
  EXPECT_EQ(renderTtyFrame(p, at(0), at(200), o)[0], "[+] Building 0.2s (1/1) FINISHED");
}

TEST(RenderTtyFrameTest, LongAndWideLinesAreTruncatedToTheWidth) {
  std::string long_name = "[1/1] RUN " + std::string(200, 'x');
  PlainProgressParser p;
  p.feed("#1 " + long_name + "\n", at(0));
  p.feed("#1 0.1 " + std::string(300, 'z') + "\n", at(0));
  std::string wide;
  for (int i = 0; i < 20; ++i)
    wide += "日本語";
  p.feed("#1 0.2 " + wide + "\n", at(0));
  p.feed("#1 0.3 \x1b[32mcoloured\x1b[0m\ttab\n", at(0));
  for (std::size_t width : {20u, 41u, 80u}) {
    auto frame = renderTtyFrame(p, at(0), at(1000), plainOptions(width));
    ASSERT_EQ(frame.size(), 5u);
    for (const std::string& line : frame) {
      EXPECT_LE(displayWidth(line), width - 1) << line;
      EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
    }
    // The time stays visible at the right edge.
    EXPECT_EQ(frame[1].substr(frame[1].size() - 4), "1.0s");
    EXPECT_EQ(displayWidth(frame[1]), width - 1);
  }
  auto frame = renderTtyFrame(p, at(0), at(1000), plainOptions(80));
  EXPECT_EQ(frame[4], " => => # coloured tab");
  EXPECT_EQ(displayWidth(frame[3]), 79u);  // 9 columns of prefix + 35 wide characters
  frame = renderTtyFrame(p, at(0), at(1000), plainOptions(41));
  EXPECT_EQ(displayWidth(frame[3]), 39u);  // the 16th wide character would need column 41
}

TEST(RenderTtyFrameTest, HeightLimitKeepsTheHeaderAndTheNewestLines) {
  PlainProgressParser p;
  for (int i = 1; i <= 30; ++i) {
    p.feed("#" + std::to_string(i) + " step " + std::to_string(i) + "\n", at(0));
    if (i < 30) p.feed("#" + std::to_string(i) + " DONE 0.1s\n", at(0));
  }
  TtyRenderOptions o = plainOptions();
  o.height = 10;
  auto frame = renderTtyFrame(p, at(0), at(100), o);
  ASSERT_EQ(frame.size(), 10u);
  EXPECT_EQ(frame[0], "[+] Building 0.1s (29/30)");
  EXPECT_THAT(frame[1], HasSubstr("step 22"));
  EXPECT_THAT(frame[9], HasSubstr("step 30"));
}

TEST(RenderTtyFrameTest, ColoursWhenAsked) {
  PlainProgressParser p = parse(kFailedBuild);
  TtyRenderOptions o;
  o.width = 100;
  auto frame = renderTtyFrame(p, at(0), at(0), o);
  EXPECT_THAT(frame[4], HasSubstr("\x1b[31m => ERROR [other 1/1]"));
  EXPECT_THAT(frame[2], HasSubstr("\x1b[34m => CACHED"));
  PlainProgressParser running = parse("#1 [1/1] RUN x\n#1 0.1 out\n");
  EXPECT_THAT(renderTtyFrame(running, at(0), at(0), o),
              ElementsAre(Not(HasSubstr("\x1b")), HasSubstr(" => [1/1] RUN x"),
                          "\x1b[2m => => # out\x1b[0m"));
}

// A real `cairn build --progress plain` of a multi-stage Dockerfile (two stages running at
// once, UTF-8 output, a failing last step), recorded as it was written.
constexpr std::string_view kRecordedBuild = R"(#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 272B done
#1 DONE 0.0s

#2 [internal] load .dockerignore
#2 DONE 0.0s

#3 [a 1/2] FROM bb:latest AS a
#3 DONE 0.0s

#4 [a 2/2] RUN for i in 1 2 3; do echo "a: $i"; sleep 0.2; done

#5 [b 1/2] FROM bb:latest AS b
#5 DONE 0.0s

#6 [b 2/2] RUN for i in 1 2 3; do echo "b: $i ünï 日本"; sleep 0.2; done; echo done >&2
#4 0.104 a: 1
#6 0.089 b: 1 ünï 日本
#4 0.307 a: 2
#6 0.297 b: 2 ünï 日本
#4 0.511 a: 3
#6 0.502 b: 3 ünï 日本
#6 0.705 done
#6 DONE 1.0s
#4 DONE 1.1s

#7 [1/4] FROM bb:latest
#7 DONE 0.0s

#8 [2/4] COPY --from=a /bin/busybox /a
#8 DONE 0.0s

#9 [3/4] COPY --from=b /bin/busybox /b
#9 DONE 0.0s

#10 [4/4] RUN echo final; exit 2
#10 0.056 final
#10 ERROR: process "/bin/sh -c echo final; exit 2" did not complete successfully: the process failed: exit code 2
ERROR: failed to solve: line 8: RUN: process "/bin/sh -c echo final; exit 2" did not complete successfully: the process failed: exit code 2
)";

TEST(RecordedStreamTest, MultiStageBuildLiveAndFinal) {
  const std::string_view stream = kRecordedBuild;
  const std::size_t live_at = stream.find("#4 0.511");
  ASSERT_NE(live_at, std::string_view::npos);
  PlainProgressParser p;
  // Odd chunk sizes, so lines and UTF-8 characters are split across writes.
  std::size_t pos = 0;
  for (std::size_t n = 1; pos < live_at; n = n % 13 + 2) {
    std::size_t take = std::min(n, live_at - pos);
    p.feed(stream.substr(pos, take), pos < 200 ? at(0) : at(300));
    pos += take;
  }
  TtyRenderOptions o = plainOptions(72);
  EXPECT_THAT(
      renderTtyFrame(p, at(0), at(700), o),
      ElementsAre("[+] Building 0.7s (4/6)",
                  " => [internal] load build definition from Dockerfile               0.0s",
                  " => [internal] load .dockerignore                                  0.0s",
                  " => [a 1/2] FROM bb:latest AS a                                    0.0s",
                  " => [a 2/2] RUN for i in 1 2 3; do echo \"a: $i\"; sleep 0.2; done   0.4s",
                  " => => # a: 1", " => => # a: 2",
                  " => [b 1/2] FROM bb:latest AS b                                    0.0s",
                  " => [b 2/2] RUN for i in 1 2 3; do echo \"b: $i ünï 日本\"; sleep 0. 0.4s",
                  " => => # b: 1 ünï 日本", " => => # b: 2 ünï 日本"));
  for (const std::string& line : renderTtyFrame(p, at(0), at(700), o))
    EXPECT_LE(displayWidth(line), 71u) << line;
  for (; pos < stream.size(); pos += 7)
    p.feed(stream.substr(pos, 7), at(1500));
  p.finish(at(1500));
  o.final = true;
  EXPECT_THAT(
      renderTtyFrame(p, at(0), at(1600), o),
      ElementsAre("[+] Building 1.6s (10/10) FAILED",
                  " => [internal] load build definition from Dockerfile               0.0s",
                  " => [internal] load .dockerignore                                  0.0s",
                  " => [a 1/2] FROM bb:latest AS a                                    0.0s",
                  " => [a 2/2] RUN for i in 1 2 3; do echo \"a: $i\"; sleep 0.2; done   1.1s",
                  " => [b 1/2] FROM bb:latest AS b                                    0.0s",
                  " => [b 2/2] RUN for i in 1 2 3; do echo \"b: $i ünï 日本\"; sleep 0. 1.0s",
                  " => [1/4] FROM bb:latest                                           0.0s",
                  " => [2/4] COPY --from=a /bin/busybox /a                            0.0s",
                  " => [3/4] COPY --from=b /bin/busybox /b                            0.0s",
                  " => ERROR [4/4] RUN echo final; exit 2                             0.0s"));
  EXPECT_THAT(
      renderTtySummary(p),
      ElementsAre("------", " > [4/4] RUN echo final; exit 2:", "#10 0.056 final", "------",
                  "ERROR: failed to solve: line 8: RUN: process \"/bin/sh -c echo final; exit "
                  "2\" did not complete successfully: the process failed: exit code 2"));
}

// The sink writing into a file: frames, cursor moves, rate limit, final summary.
class TtySinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::create("tty-progress"));
    path_ = dir_->path() / "tty";
    fd_.reset(open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    ASSERT_TRUE(fd_.valid());
  }
  TtyProgressSink::Options options() {
    TtyProgressSink::Options o;
    o.fd = fd_.get();
    o.clock = &clock_;
    o.ticker = false;
    o.width = 50;
    o.height = 20;
    o.color = false;
    return o;
  }
  std::string written() { return readFile(path_).valueOr("<unreadable>"); }

  std::optional<TempDir> dir_;
  std::filesystem::path path_;
  UniqueFd fd_;
  FakeClock clock_;
};

TEST_F(TtySinkTest, RedrawsInPlaceAtMostEveryInterval) {
  TtyProgressSink sink(options());
  sink.write("#1 [1/1] RUN make\n");
  std::string first = written();
  EXPECT_EQ(first,
            "\r[+] Building 0.0s (0/1)\x1b[K\n"
            "\r => [1/1] RUN make                           0.0s\x1b[K\n"
            "\x1b[J");
  clock_.advance(milliseconds(50));
  sink.write("#1 0.05 compiling\n");  // too soon: parsed, not drawn
  EXPECT_EQ(written(), first);
  clock_.advance(milliseconds(50));
  sink.write("#1 0.1 linking\n");
  std::string second = written().substr(first.size());
  EXPECT_EQ(second,
            "\x1b[2A"
            "\r[+] Building 0.1s (0/1)\x1b[K\n"
            "\r => [1/1] RUN make                           0.1s\x1b[K\n"
            "\r => => # compiling\x1b[K\n"
            "\r => => # linking\x1b[K\n"
            "\x1b[J");
  clock_.advance(milliseconds(1000));
  sink.write("#1 DONE 1.1s\n");
  std::string third = written().substr(first.size() + second.size());
  EXPECT_EQ(third,
            "\x1b[4A"
            "\r[+] Building 1.1s (1/1)\x1b[K\n"
            "\r => [1/1] RUN make                           1.1s\x1b[K\n"
            "\x1b[J");  // the two log lines below are cleared
  sink.finish();
  std::string last = written().substr(first.size() + second.size() + third.size());
  EXPECT_EQ(last,
            "\x1b[2A"
            "\r[+] Building 1.1s (1/1) FINISHED\x1b[K\n"
            "\r => [1/1] RUN make                           1.1s\x1b[K\n"
            "\x1b[J");
  sink.finish();  // only once
  sink.write("#2 late\n");
  EXPECT_EQ(written().size(), first.size() + second.size() + third.size() + last.size());
}

TEST_F(TtySinkTest, FailureEndsWithTheStepsFullOutput) {
  {
    TtyProgressSink sink(options());
    sink.write("#1 [1/1] RUN ./test.sh\n");
    for (int i = 1; i <= 10; ++i)
      sink.write("#1 0." + std::to_string(i) + " test " + std::to_string(i) + " ok\n");
    sink.write(
        "#1 ERROR: process \"/bin/sh -c ./test.sh\" did not complete successfully: "
        "exit code: 3\n\nERROR: failed to solve: exit code: 3\n");
  }  // the destructor finishes
  std::string out = written();
  auto final_at = out.rfind("[+] Building");
  ASSERT_NE(final_at, std::string::npos);
  std::string final_part = out.substr(final_at);
  EXPECT_THAT(final_part, HasSubstr("(1/1) FAILED"));
  EXPECT_THAT(final_part, HasSubstr(" => ERROR [1/1] RUN ./test.sh"));
  for (int i = 1; i <= 10; ++i)  // all ten, not only the last six of the live view
    EXPECT_THAT(final_part, HasSubstr("#1 0." + std::to_string(i) + " test "));
  EXPECT_THAT(final_part, HasSubstr("\r------\x1b[K\n\r > [1/1] RUN ./test.sh:\x1b[K\n"));
  EXPECT_THAT(final_part, HasSubstr("ERROR: failed to solve: exit code: 3\x1b[K\n\x1b[J"));
}

TEST_F(TtySinkTest, TickerRedrawsARunningStepWithoutOutput) {
  TtyProgressSink::Options o = options();
  o.clock = nullptr;  // real time: the ticker thread runs on its own
  o.ticker = true;
  o.interval = milliseconds(10);
  TtyProgressSink sink(o);
  sink.write("#1 [1/1] RUN sleep 1\n");
  // Bounded wait for a second frame (drawn by the ticker, as nothing else writes).
  bool redrawn = false;
  for (int i = 0; i < 500 && !redrawn; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
    redrawn = written().find("\x1b[2A") != std::string::npos;
  }
  EXPECT_TRUE(redrawn);
  sink.finish();
  EXPECT_THAT(written(), HasSubstr("FINISHED"));
}

}  // namespace
}  // namespace cairn::build
