#include "cairn/build/progress.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>

namespace cairn::build {

constexpr std::size_t kTailLines = 50;

void MemoryLogSink::write(std::string_view bytes) {
  std::lock_guard lock(mu_);
  data_.append(bytes);
}

std::string MemoryLogSink::contents() const {
  std::lock_guard lock(mu_);
  return data_;
}

Result<std::unique_ptr<FileLogSink>> FileLogSink::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd.valid()) return errnoStatus(errno, "open build log " + path);
  return std::unique_ptr<FileLogSink>(new FileLogSink(std::move(fd)));
}

void FileLogSink::write(std::string_view bytes) {
  // A log write that fails (disk full) must not fail the build; the bytes are lost.
  (void)writeAll(fd_.get(), bytes);
}

void StreamLogSink::write(std::string_view bytes) {
  std::fwrite(bytes.data(), 1, bytes.size(), stream_);
  std::fflush(stream_);
}

void TeeLogSink::write(std::string_view bytes) {
  for (LogSink* s : sinks_)
    s->write(bytes);
}

std::string formatSeconds(std::chrono::steady_clock::duration d) {
  auto tenths = std::chrono::duration_cast<std::chrono::milliseconds>(d).count() / 100;
  if (tenths < 0) tenths = 0;
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + "s";
}

Progress::Progress(LogSink& sink, const Clock& clock) : sink_(sink), clock_(clock) {}

Progress::VertexId Progress::start(std::string_view name) {
  std::lock_guard lock(mu_);
  VertexId id = next_++;
  Vertex& v = vertices_[id];
  v.name = std::string(name);
  v.started = clock_.steadyNow();
  std::string text = any_output_ ? "\n" : "";
  text += "#" + std::to_string(id) + " " + v.name + "\n";
  any_output_ = true;
  sink_.write(text);
  return id;
}

std::string Progress::elapsed(const Vertex& v) const {
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.steadyNow() - v.started).count();
  if (ms < 0) ms = 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRId64 ".%03" PRId64, static_cast<std::int64_t>(ms / 1000),
                static_cast<std::int64_t>(ms % 1000));
  return buf;
}

void Progress::emitLine(VertexId id, Vertex& v, std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  sink_.write("#" + std::to_string(id) + " " + elapsed(v) + " " + std::string(line) + "\n");
  v.last_lines.emplace_back(line);
  if (v.last_lines.size() > kTailLines) v.last_lines.erase(v.last_lines.begin());
}

void Progress::flushPartial(VertexId id, Vertex& v) {
  if (v.partial.empty()) return;
  std::string rest = std::move(v.partial);
  v.partial.clear();
  emitLine(id, v, rest);
}

void Progress::output(VertexId id, std::string_view bytes) {
  std::lock_guard lock(mu_);
  auto it = vertices_.find(id);
  if (it == vertices_.end()) return;
  Vertex& v = it->second;
  while (!bytes.empty()) {
    auto nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      v.partial.append(bytes);
      // A process that never prints a newline must not grow the buffer without bound.
      if (v.partial.size() > 64 * 1024) flushPartial(id, v);
      return;
    }
    v.partial.append(bytes.substr(0, nl));
    std::string full = std::move(v.partial);
    v.partial.clear();
    emitLine(id, v, full);
    bytes.remove_prefix(nl + 1);
  }
}

void Progress::info(VertexId id, std::string_view text) {
  std::lock_guard lock(mu_);
  sink_.write("#" + std::to_string(id) + " " + std::string(text) + "\n");
}

void Progress::cached(VertexId id) {
  std::lock_guard lock(mu_);
  sink_.write("#" + std::to_string(id) + " CACHED\n");
}

void Progress::done(VertexId id) {
  std::lock_guard lock(mu_);
  auto it = vertices_.find(id);
  if (it == vertices_.end()) return;
  flushPartial(id, it->second);
  sink_.write("#" + std::to_string(id) + " DONE " +
              formatSeconds(clock_.steadyNow() - it->second.started) + "\n");
}

void Progress::canceled(VertexId id) {
  std::lock_guard lock(mu_);
  auto it = vertices_.find(id);
  if (it != vertices_.end()) flushPartial(id, it->second);
  sink_.write("#" + std::to_string(id) + " CANCELED\n");
}

void Progress::error(VertexId id, std::string_view message) {
  std::lock_guard lock(mu_);
  auto it = vertices_.find(id);
  if (it != vertices_.end()) flushPartial(id, it->second);
  sink_.write("#" + std::to_string(id) + " ERROR: " + std::string(message) + "\n");
}

void Progress::line(std::string_view text) {
  std::lock_guard lock(mu_);
  sink_.write(std::string(text) + "\n");
}

std::vector<std::string> Progress::tail(VertexId id, std::size_t max_lines) const {
  std::lock_guard lock(mu_);
  auto it = vertices_.find(id);
  if (it == vertices_.end()) return {};
  const auto& lines = it->second.last_lines;
  std::size_t from = lines.size() > max_lines ? lines.size() - max_lines : 0;
  std::vector<std::string> out(lines.begin() + static_cast<std::ptrdiff_t>(from), lines.end());
  if (!it->second.partial.empty()) out.push_back(it->second.partial);
  return out;
}

}  // namespace cairn::build
