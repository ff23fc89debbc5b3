// Build logs in BuildKit's plain-progress style, written to a LogSink:
//
//   #3 [2/6] RUN apt-get update
//   #3 0.412 Get:1 http://deb.debian.org/debian bookworm InRelease [151 kB]
//   #3 DONE 4.2s
//
//   #4 [3/6] COPY hello.txt /app/hello.txt
//   #4 CACHED
//
//   #5 [4/6] RUN false
//   #5 ERROR: process "/bin/sh -c false" did not complete successfully: exit code: 1
//
//   #6 [other 2/3] RUN sleep 100
//   #6 CANCELED
//
// Each step ("vertex") gets a number when it starts; output lines are prefixed with the step
// number and the seconds since the step started; a partial line is held back until its
// newline (or the step's end) so that interleaved steps never mix inside a line. Thread-safe:
// concurrent stages write to one Progress.
#pragma once

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/common/status.h"
#include "cairn/common/time.h"

namespace cairn::build {

//! Where build log bytes go. Implementations must be safe to call from several threads only
//! through Progress, which serialises writes.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void write(std::string_view bytes) = 0;
};

//! Keeps everything in memory (tests, errorReason tails).
class MemoryLogSink final : public LogSink {
 public:
  void write(std::string_view bytes) override;
  std::string contents() const;

 private:
  mutable std::mutex mu_;
  std::string data_;
};

//! Appends to a file (the server's <data>/logs/<snapshot-id>.log). Opened with O_APPEND, so a
//! reader following the file never sees a line rewritten.
class FileLogSink final : public LogSink {
 public:
  static Result<std::unique_ptr<FileLogSink>> open(const std::string& path);
  void write(std::string_view bytes) override;

 private:
  explicit FileLogSink(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

//! Writes to a stdio stream (the CLI on a pipe) and flushes per write.
class StreamLogSink final : public LogSink {
 public:
  explicit StreamLogSink(std::FILE* stream) : stream_(stream) {}
  void write(std::string_view bytes) override;

 private:
  std::FILE* stream_;
};

//! Sends every write to several sinks (file + terminal).
class TeeLogSink final : public LogSink {
 public:
  explicit TeeLogSink(std::vector<LogSink*> sinks) : sinks_(std::move(sinks)) {}
  void write(std::string_view bytes) override;

 private:
  std::vector<LogSink*> sinks_;
};

class Progress {
 public:
  using VertexId = int;

  explicit Progress(LogSink& sink, const Clock& clock = RealClock::instance());

  //! Prints "#n <name>" (after a blank line separating it from the previous step).
  VertexId start(std::string_view name);
  //! Raw process output; split into lines, each "#n <elapsed> <line>".
  void output(VertexId vertex, std::string_view bytes);
  //! A status line of the step itself: "#n <text>".
  void info(VertexId vertex, std::string_view text);
  void cached(VertexId vertex);
  void done(VertexId vertex);
  //! "#n CANCELED" (BuildKit's word): the step was stopped because the build was cancelled or
  //! another stage failed; also flushes the step's partial line.
  void canceled(VertexId vertex);
  //! "#n ERROR: <message>"; also flushes the step's partial line.
  void error(VertexId vertex, std::string_view message);
  //! A line not tied to a step, e.g. the final "ERROR: failed to solve: …".
  void line(std::string_view text);

  //! The last `max_lines` output lines of a step (for errorReason), without prefixes.
  std::vector<std::string> tail(VertexId vertex, std::size_t max_lines = 20) const;

 private:
  struct Vertex {
    std::string name;
    std::chrono::steady_clock::time_point started;
    std::string partial;
    std::vector<std::string> last_lines;
  };
  void emitLine(VertexId id, Vertex& v, std::string_view line);
  void flushPartial(VertexId id, Vertex& v);
  std::string elapsed(const Vertex& v) const;

  LogSink& sink_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::map<VertexId, Vertex> vertices_;
  VertexId next_ = 1;
  bool any_output_ = false;
};

//! "4.2s", "0.0s" — BuildKit's one-decimal seconds.
std::string formatSeconds(std::chrono::steady_clock::duration d);

}  // namespace cairn::build
