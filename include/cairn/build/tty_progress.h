// The compact progress view for a terminal, drawn from the plain progress stream.
//
// Progress (progress.h) writes BuildKit's plain stream; on a terminal the CLI gives it a
// TtyProgressSink instead of a StreamLogSink, which parses that stream back into steps and
// redraws a BuildKit-like view in place:
//
//   [+] Building 12.4s (3/6)
//    => [internal] load build definition from Dockerfile                          0.0s
//    => CACHED [2/6] COPY hello.txt /app/hello.txt                                0.0s
//    => [3/6] RUN apt-get update                                                  4.2s
//    => => # Get:1 http://deb.debian.org/debian bookworm InRelease [151 kB]
//
// The sink works on the text alone, so it also renders a server's build log (`cairn snapshot
// create`). The logic is split so that it is tested without a terminal:
//   PlainProgressParser  bytes → steps (partial lines held back, split anywhere);
//   renderTtyFrame       steps + time → lines, each fitting the terminal's width;
//   TtyProgressSink      redraws those lines with ANSI cursor moves, at most ~10 times a
//                        second, and prints the complete list plus each failed step's full
//                        output at the end.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cairn/build/progress.h"
#include "cairn/common/status.h"
#include "cairn/common/time.h"

namespace cairn::build {

using SteadyTime = std::chrono::steady_clock::time_point;

//! One step of the stream, as the terminal view needs it.
struct TtyVertex {
  enum class State { kRunning, kDone, kCached, kError, kCanceled };
  struct LogLine {
    std::string timestamp;  //!< "0.412" as the plain stream had it; "" for a status line
    std::string text;
  };

  int id = 0;
  std::string name;  //!< "[2/6] RUN apt-get update"
  State state = State::kRunning;
  SteadyTime started{};      //!< when its first line arrived
  SteadyTime ended{};        //!< when DONE/CACHED/ERROR/CANCELED arrived
  std::string duration;      //!< "4.2s" from "#n DONE 4.2s"; "" when the stream gave none
  std::deque<LogLine> logs;  //!< the newest kMaxLogLines output and status lines
  std::size_t dropped_logs = 0;
  std::string error;  //!< the message of "#n ERROR: …"

  bool finished() const { return state != State::kRunning; }
};

//! Turns the plain progress stream back into steps. Bytes may be split anywhere, also inside a
//! UTF-8 character; a line is parsed once its '\n' arrives (or at finish()). Not thread-safe.
class PlainProgressParser {
 public:
  //! Output lines kept per step: enough for a failed step's full output in all but huge logs.
  static constexpr std::size_t kMaxLogLines = 2000;
  //! A line longer than this is cut there (the rest is dropped), so memory stays bounded.
  static constexpr std::size_t kMaxLineBytes = 64 * 1024;

  void feed(std::string_view bytes, SteadyTime now);
  //! Parses a last line that has no '\n'.
  void finish(SteadyTime now);

  //! Steps in the order they first appeared.
  const std::vector<TtyVertex>& vertices() const { return vertices_; }
  //! Lines not tied to a step, e.g. "ERROR: failed to solve: …".
  const std::vector<std::string>& messages() const { return messages_; }
  bool anyError() const;

 private:
  void parseLine(std::string_view line, SteadyTime now);

  std::string partial_;
  bool discarding_ = false;
  std::vector<TtyVertex> vertices_;
  std::map<int, std::size_t> index_;
  std::vector<std::string> messages_;
};

struct TtyRenderOptions {
  std::size_t width = 80;     //!< terminal columns; every line is kept below it
  std::size_t height = 0;     //!< terminal rows; 0 = no limit (the final frame)
  std::size_t log_lines = 6;  //!< output lines shown under each running step
  bool color = true;          //!< dim output lines, red errors, blue finished steps
  bool final = false;         //!< the header says FINISHED/FAILED instead of counting up
};

//! One frame of the view: a header ("[+] Building 4.2s (3/6)"), then one line per step with
//! its time right-aligned, each running step followed by its last `log_lines` output lines
//! (" => => # …"). No newlines, no cursor moves; escape sequences only for colours. With a
//! height limit the oldest lines are left out, never the header.
std::vector<std::string> renderTtyFrame(const PlainProgressParser& state, SteadyTime started,
                                        SteadyTime now, const TtyRenderOptions& options);

//! What is printed under the final frame: for each failed step its full kept output as BuildKit
//! prints it ("------", " > [3/3] RUN false:", "#5 0.123 …", "------"), then the messages.
//! Not truncated: the terminal wraps these.
std::vector<std::string> renderTtySummary(const PlainProgressParser& state);

//! Columns a UTF-8 string takes on a terminal: East Asian wide characters and emoji count 2,
//! combining marks 0, an invalid byte 1 (it is shown as U+FFFD).
std::size_t displayWidth(std::string_view text);
//! Makes process output safe to draw: drops ANSI escape sequences and control characters,
//! turns a tab into a space, keeps what follows the last '\r' (a progress bar's final state),
//! and replaces invalid UTF-8 with U+FFFD.
std::string sanitizeForTerminal(std::string_view text);
//! The longest prefix of `text` that fits in `width` columns, never cutting a character.
std::string truncateToWidth(std::string_view text, std::size_t width);

//! Terminal size of `fd` (TIOCGWINSZ), or 80×24 when it is not a terminal or says 0.
struct TerminalSize {
  std::size_t columns = 80;
  std::size_t rows = 24;
};
TerminalSize terminalSize(int fd);

//! `--progress auto|plain|tty`.
enum class ProgressMode { kAuto, kPlain, kTty };
Result<ProgressMode> parseProgressMode(std::string_view text);
//! Whether to draw the terminal view on `fd`: kTty always, kPlain never, kAuto when `fd` is a
//! terminal and TERM is set and not "dumb" (`term` is TERM's value, nullptr when unset).
bool useTtyProgress(ProgressMode mode, int fd, const char* term);

//! A LogSink that draws the compact view on the terminal `fd`.
//!
//!   TtyProgressSink tty({.fd = STDERR_FILENO});
//!   auto result = builder->build(request, tty);
//!   tty.finish();  // the complete list and, on failure, the failed step's output
//!
//! A redraw happens on a write when the last one is at least `interval` old, and from a ticker
//! thread (so running steps' times move while they print nothing). Writes are serialised here.
class TtyProgressSink final : public LogSink {
 public:
  struct Options {
    int fd = 2;
    const Clock* clock = nullptr;  //!< default: the real clock
    std::chrono::milliseconds interval{100};
    bool ticker = true;  //!< false in tests: frames are drawn only by write() and finish()
    //! Size of the terminal; 0 = ask `fd` at every frame (follows a resized window).
    std::size_t width = 0;
    std::size_t height = 0;
    bool color = true;
  };

  explicit TtyProgressSink(Options options);
  ~TtyProgressSink() override;  //!< calls finish()
  TtyProgressSink(const TtyProgressSink&) = delete;
  TtyProgressSink& operator=(const TtyProgressSink&) = delete;

  void write(std::string_view bytes) override;
  //! Stops the ticker and draws the final frame and the summary. Only the first call draws.
  void finish();

 private:
  void drawLocked(bool final);
  void tickerLoop();
  SteadyTime now() const { return clock_->steadyNow(); }

  Options options_;
  const Clock* clock_;
  std::mutex mu_;
  std::condition_variable wake_;
  PlainProgressParser parser_;
  SteadyTime started_;
  std::optional<SteadyTime> last_draw_;
  bool dirty_ = false;
  bool finished_ = false;
  std::size_t drawn_lines_ = 0;
  std::thread ticker_;
};

}  // namespace cairn::build
