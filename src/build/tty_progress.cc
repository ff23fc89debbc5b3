#include "cairn/build/tty_progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "cairn/common/fs.h"
#include "cairn/common/utf8.h"

namespace cairn::build {

namespace {

constexpr std::string_view kDim = "\x1b[2m";
constexpr std::string_view kRed = "\x1b[31m";
constexpr std::string_view kBlue = "\x1b[34m";
constexpr std::string_view kReset = "\x1b[0m";

bool isDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "0.412" (Progress's elapsed seconds): digits, '.', digits.
bool isTimestamp(std::string_view s) {
  auto dot = s.find('.');
  return dot != std::string_view::npos && isDigits(s.substr(0, dot)) && isDigits(s.substr(dot + 1));
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string_view trimLeft(std::string_view s) {
  while (!s.empty() && s.front() == ' ')
    s.remove_prefix(1);
  return s;
}

// Zero-width code points: combining marks, zero-width spaces and joiners, variation selectors.
bool isZeroWidth(char32_t c) {
  return (c >= 0x0300 && c <= 0x036F) || (c >= 0x0483 && c <= 0x0489) ||
         (c >= 0x0591 && c <= 0x05BD) || (c >= 0x1AB0 && c <= 0x1AFF) ||
         (c >= 0x1DC0 && c <= 0x1DFF) || (c >= 0x200B && c <= 0x200F) ||
         (c >= 0x20D0 && c <= 0x20FF) || (c >= 0xFE00 && c <= 0xFE0F) ||
         (c >= 0xFE20 && c <= 0xFE2F) || c == 0x2060 || c == 0xFEFF ||
         (c >= 0xE0100 && c <= 0xE01EF);
}

// East Asian Wide/Fullwidth ranges and the emoji blocks terminals draw two columns wide.
bool isWide(char32_t c) {
  return (c >= 0x1100 && c <= 0x115F) || (c >= 0x231A && c <= 0x231B) ||
         (c >= 0x2E80 && c <= 0x303E) || (c >= 0x3041 && c <= 0x33FF) ||
         (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) ||
         (c >= 0xA000 && c <= 0xA4CF) || (c >= 0xAC00 && c <= 0xD7A3) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFE30 && c <= 0xFE4F) ||
         (c >= 0xFF00 && c <= 0xFF60) || (c >= 0xFFE0 && c <= 0xFFE6) ||
         (c >= 0x1F300 && c <= 0x1F64F) || (c >= 0x1F900 && c <= 0x1F9FF) ||
         (c >= 0x20000 && c <= 0x3FFFD);
}

std::size_t runeWidth(char32_t c) {
  if (isZeroWidth(c)) return 0;
  return isWide(c) ? 2 : 1;
}

std::string stateWord(TtyVertex::State state) {
  switch (state) {
    case TtyVertex::State::kCached:
      return "CACHED ";
    case TtyVertex::State::kError:
      return "ERROR ";
    case TtyVertex::State::kCanceled:
      return "CANCELED ";
    case TtyVertex::State::kRunning:
    case TtyVertex::State::kDone:
      break;
  }
  return "";
}

std::string vertexTime(const TtyVertex& v, SteadyTime now) {
  if (v.state == TtyVertex::State::kCached) return "0.0s";
  if (v.finished() && !v.duration.empty()) return v.duration;
  return formatSeconds((v.finished() ? v.ended : now) - v.started);
}

// `left` cut to leave room for `right`, which ends at column `width`.
std::string alignRight(std::string_view left, std::string_view right, std::size_t width) {
  std::size_t right_w = displayWidth(right);
  if (width <= right_w + 1) return truncateToWidth(left, width);
  std::string out = truncateToWidth(left, width - right_w - 1);
  out.append(width - right_w - displayWidth(out), ' ');
  out.append(right);
  return out;
}

std::string paint(std::string text, std::string_view color, bool enabled) {
  if (!enabled || color.empty() || text.empty()) return text;
  return std::string(color) + text + std::string(kReset);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Text helpers.

std::size_t displayWidth(std::string_view text) {
  std::size_t width = 0;
  for (std::size_t i = 0; i < text.size();) {
    Utf8Rune r = decodeUtf8Rune(text, i, InvalidUtf8::kReplace);
    width += runeWidth(r.code_point);
    i += r.length;
  }
  return width;
}

std::string sanitizeForTerminal(std::string_view text) {
  // A progress bar redraws itself with '\r': the terminal would show the last state.
  while (!text.empty() && text.back() == '\r')
    text.remove_suffix(1);
  if (auto cr = text.rfind('\r'); cr != std::string_view::npos) text.remove_prefix(cr + 1);
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    unsigned char b = static_cast<unsigned char>(text[i]);
    if (b == 0x1b) {
      // ESC [ params final (CSI: colours, cursor moves) or ESC + one byte; ESC ] … BEL (OSC).
      ++i;
      if (i < text.size() && text[i] == '[') {
        ++i;
        while (i < text.size() && !(text[i] >= 0x40 && text[i] <= 0x7e))
          ++i;
        if (i < text.size()) ++i;
      } else if (i < text.size() && text[i] == ']') {
        while (i < text.size() && text[i] != '\a' && text[i] != 0x1b)
          ++i;
        if (i < text.size() && text[i] == '\a') ++i;
      } else if (i < text.size()) {
        ++i;
      }
      continue;
    }
    if (b == '\t') {
      out.push_back(' ');
      ++i;
      continue;
    }
    if (b < 0x20 || b == 0x7f) {
      ++i;
      continue;
    }
    Utf8Rune r = decodeUtf8Rune(text, i, InvalidUtf8::kReplace);
    i += r.length;
    if (r.code_point >= 0x80 && r.code_point <= 0x9f) continue;  // C1 controls
    appendUtf8(out, r.code_point, InvalidUtf8::kReplace);
  }
  return out;
}

std::string truncateToWidth(std::string_view text, std::size_t width) {
  std::size_t used = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    Utf8Rune r = decodeUtf8Rune(text, i, InvalidUtf8::kReplace);
    std::size_t w = runeWidth(r.code_point);
    if (used + w > width) break;
    used += w;
    i += r.length;
  }
  return std::string(text.substr(0, i));
}

TerminalSize terminalSize(int fd) {
  TerminalSize size;
  winsize ws{};
  if (ioctl(fd, TIOCGWINSZ, &ws) == 0) {
    if (ws.ws_col > 0) size.columns = ws.ws_col;
    if (ws.ws_row > 0) size.rows = ws.ws_row;
  }
  return size;
}

Result<ProgressMode> parseProgressMode(std::string_view text) {
  if (text == "auto") return ProgressMode::kAuto;
  if (text == "plain") return ProgressMode::kPlain;
  if (text == "tty") return ProgressMode::kTty;
  return invalidArgument("--progress " + std::string(text) + ": expected auto, plain or tty");
}

bool useTtyProgress(ProgressMode mode, int fd, const char* term) {
  switch (mode) {
    case ProgressMode::kTty:
      return true;
    case ProgressMode::kPlain:
      return false;
    case ProgressMode::kAuto:
      break;
  }
  if (term == nullptr || *term == '\0' || std::string_view(term) == "dumb") return false;
  return isatty(fd) == 1;
}

// ---------------------------------------------------------------------------------------------
// Parser.

void PlainProgressParser::feed(std::string_view bytes, SteadyTime now) {
  while (!bytes.empty()) {
    auto nl = bytes.find('\n');
    if (discarding_) {
      // The rest of a line that was cut at kMaxLineBytes: no terminal shows that much.
      if (nl == std::string_view::npos) return;
      discarding_ = false;
      bytes.remove_prefix(nl + 1);
      continue;
    }
    if (nl == std::string_view::npos) {
      partial_.append(bytes);
      if (partial_.size() >= kMaxLineBytes) {
        std::string line = partial_.substr(0, kMaxLineBytes);
        partial_.clear();
        discarding_ = true;
        parseLine(line, now);
      }
      return;
    }
    if (partial_.empty()) {
      parseLine(bytes.substr(0, nl), now);
    } else {
      partial_.append(bytes.substr(0, nl));
      std::string line = std::move(partial_);
      partial_.clear();
      parseLine(line, now);
    }
    bytes.remove_prefix(nl + 1);
  }
}

void PlainProgressParser::finish(SteadyTime now) {
  discarding_ = false;
  if (partial_.empty()) return;
  std::string line = std::move(partial_);
  partial_.clear();
  parseLine(line, now);
}

bool PlainProgressParser::anyError() const {
  for (const TtyVertex& v : vertices_)
    if (v.state == TtyVertex::State::kError) return true;
  for (const std::string& m : messages_)
    if (startsWith(m, "ERROR")) return true;
  return false;
}

void PlainProgressParser::parseLine(std::string_view line, SteadyTime now) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return;  // the blank line between steps
  std::size_t digits_end = 1;
  while (digits_end < line.size() && line[digits_end] >= '0' && line[digits_end] <= '9')
    ++digits_end;
  const bool step_line = line[0] == '#' && digits_end > 1 && digits_end <= 10 &&
                         (digits_end == line.size() || line[digits_end] == ' ');
  if (!step_line) {
    messages_.emplace_back(line);
    return;
  }
  int id = std::stoi(std::string(line.substr(1, digits_end - 1)));
  std::string_view rest =
      digits_end < line.size() ? line.substr(digits_end + 1) : std::string_view();

  auto it = index_.find(id);
  if (it == index_.end()) {
    index_[id] = vertices_.size();
    TtyVertex& v = vertices_.emplace_back();
    v.id = id;
    v.name = rest.empty() ? "#" + std::to_string(id) : std::string(rest);
    v.started = now;
    return;
  }
  TtyVertex& v = vertices_[it->second];
  auto finishAs = [&](TtyVertex::State state) {
    v.state = state;
    v.ended = now;
  };
  if (rest == "DONE" || startsWith(rest, "DONE ")) {
    finishAs(TtyVertex::State::kDone);
    v.duration = rest.size() > 5 ? std::string(rest.substr(5)) : "";
    return;
  }
  if (rest == "CACHED") return finishAs(TtyVertex::State::kCached);
  if (rest == "CANCELED") return finishAs(TtyVertex::State::kCanceled);
  if (startsWith(rest, "ERROR:") || rest == "ERROR") {
    finishAs(TtyVertex::State::kError);
    v.error = std::string(trimLeft(rest.substr(std::min<std::size_t>(6, rest.size()))));
    return;
  }
  if (rest == v.name) return;  // BuildKit repeats a step's name when it resumes
  TtyVertex::LogLine log;
  auto space = rest.find(' ');
  std::string_view first = rest.substr(0, space);
  if (isTimestamp(first)) {
    log.timestamp = std::string(first);
    log.text = space == std::string_view::npos ? "" : std::string(rest.substr(space + 1));
  } else {
    log.text = std::string(rest);
  }
  v.logs.push_back(std::move(log));
  if (v.logs.size() > kMaxLogLines) {
    v.logs.pop_front();
    ++v.dropped_logs;
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering.

std::vector<std::string> renderTtyFrame(const PlainProgressParser& state, SteadyTime started,
                                        SteadyTime now, const TtyRenderOptions& options) {
  // One column is left free: a line that fills the last column makes some terminals wrap.
  const std::size_t width = std::max<std::size_t>(options.width, 20) - 1;
  const auto& vertices = state.vertices();
  std::size_t finished = 0;
  for (const TtyVertex& v : vertices)
    finished += v.finished() ? 1 : 0;

  std::string header = "[+] Building " + formatSeconds(now - started) + " (" +
                       std::to_string(finished) + "/" + std::to_string(vertices.size()) + ")";
  if (options.final) header += state.anyError() ? " FAILED" : " FINISHED";

  std::vector<std::string> body;
  for (const TtyVertex& v : vertices) {
    std::string left = " => " + stateWord(v.state) + sanitizeForTerminal(v.name);
    std::string line = alignRight(left, vertexTime(v, now), width);
    std::string_view color;
    if (v.state == TtyVertex::State::kError) {
      color = kRed;
    } else if (v.finished()) {
      color = kBlue;
    }
    body.push_back(paint(std::move(line), color, options.color));
    if (v.state != TtyVertex::State::kRunning || options.final) continue;
    std::size_t shown = std::min(options.log_lines, v.logs.size());
    for (std::size_t i = v.logs.size() - shown; i < v.logs.size(); ++i) {
      const TtyVertex::LogLine& log = v.logs[i];
      std::string text = log.timestamp.empty() ? " => => " + sanitizeForTerminal(log.text)
                                               : " => => # " + sanitizeForTerminal(log.text);
      body.push_back(paint(truncateToWidth(text, width), kDim, options.color));
    }
  }
  if (!options.final) {
    // Messages (the final ERROR line) show up in the live view too; the summary repeats them.
    for (const std::string& m : state.messages())
      body.push_back(paint(truncateToWidth(sanitizeForTerminal(m), width),
                           startsWith(m, "ERROR") ? kRed : std::string_view(), options.color));
  }

  std::vector<std::string> frame;
  frame.push_back(paint(truncateToWidth(header, width), kBlue, options.color && options.final));
  std::size_t room = options.height == 0 ? body.size() : options.height - 1;
  if (options.height == 1) room = 0;
  std::size_t skip = body.size() > room ? body.size() - room : 0;
  frame.insert(frame.end(), body.begin() + static_cast<std::ptrdiff_t>(skip), body.end());
  return frame;
}

std::vector<std::string> renderTtySummary(const PlainProgressParser& state) {
  std::vector<std::string> out;
  bool any_failed_step = false;
  for (const TtyVertex& v : state.vertices()) {
    if (v.state != TtyVertex::State::kError) continue;
    any_failed_step = true;
    out.emplace_back("------");
    out.push_back(" > " + sanitizeForTerminal(v.name) + ":");
    if (v.dropped_logs > 0)
      out.push_back("(" + std::to_string(v.dropped_logs) + " earlier lines not kept)");
    for (const TtyVertex::LogLine& log : v.logs) {
      std::string text = sanitizeForTerminal(log.text);
      out.push_back("#" + std::to_string(v.id) + " " +
                    (log.timestamp.empty() ? text : log.timestamp + " " + text));
    }
    out.emplace_back("------");
  }
  bool any_error_message = false;
  for (const std::string& m : state.messages()) {
    any_error_message = any_error_message || startsWith(m, "ERROR");
    out.push_back(sanitizeForTerminal(m));
  }
  // A stream cut before its final "ERROR: …" line still says why the step failed.
  if (any_failed_step && !any_error_message) {
    for (const TtyVertex& v : state.vertices())
      if (v.state == TtyVertex::State::kError)
        out.push_back("ERROR: " + sanitizeForTerminal(v.error));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The sink.

TtyProgressSink::TtyProgressSink(Options options)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : &RealClock::instance()),
      started_(clock_->steadyNow()) {
  if (options_.ticker) ticker_ = std::thread([this] { tickerLoop(); });
}

TtyProgressSink::~TtyProgressSink() {
  finish();
}

void TtyProgressSink::write(std::string_view bytes) {
  std::lock_guard lock(mu_);
  if (finished_) return;
  SteadyTime t = now();
  parser_.feed(bytes, t);
  dirty_ = true;
  if (!last_draw_ || t - *last_draw_ >= options_.interval) drawLocked(false);
}

void TtyProgressSink::finish() {
  {
    std::lock_guard lock(mu_);
    if (finished_) return;
    finished_ = true;
    parser_.finish(now());
    drawLocked(true);
  }
  wake_.notify_all();
  if (ticker_.joinable()) ticker_.join();
}

void TtyProgressSink::tickerLoop() {
  std::unique_lock lock(mu_);
  while (!finished_) {
    wake_.wait_for(lock, options_.interval);
    if (finished_) break;
    bool running = std::any_of(parser_.vertices().begin(), parser_.vertices().end(),
                               [](const TtyVertex& v) { return !v.finished(); });
    // A running step's time moves even when it prints nothing; an idle view stays as it is.
    if ((dirty_ || running) && (!last_draw_ || now() - *last_draw_ >= options_.interval))
      drawLocked(false);
  }
}

void TtyProgressSink::drawLocked(bool final) {
  SteadyTime t = now();
  TerminalSize size = terminalSize(options_.fd);
  TtyRenderOptions render;
  render.width = options_.width != 0 ? options_.width : size.columns;
  render.height = final ? 0 : (options_.height != 0 ? options_.height : size.rows);
  render.color = options_.color;
  render.final = final;
  std::vector<std::string> lines = renderTtyFrame(parser_, started_, t, render);
  if (final)
    for (std::string& s : renderTtySummary(parser_))
      lines.push_back(std::move(s));

  // Back to the first line of the previous frame, then every line rewritten and cleared to its
  // end; what is left of a longer previous frame is cleared below. One write per frame, so the
  // terminal never shows half a frame.
  std::string out;
  if (drawn_lines_ > 0) out += "\x1b[" + std::to_string(drawn_lines_) + "A";
  for (const std::string& line : lines) {
    out += '\r';
    out += line;
    out += "\x1b[K\n";
  }
  out += "\x1b[J";
  (void)writeAll(options_.fd, out);
  drawn_lines_ = final ? 0 : lines.size();
  last_draw_ = t;
  dirty_ = false;
}

}  // namespace cairn::build
