#include "cairn/sdk/snapshot_service.h"

#include <atomic>
#include <cmath>
#include <exception>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>

#include "cairn/common/strings.h"
#include "cairn/common/uuid.h"
#include "cairn/sdk/errors.h"

namespace cairn {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Serializes onLogs calls from the polling thread and the log-stream thread.
class LogSink {
 public:
  explicit LogSink(const std::function<void(std::string_view)>& fn) : fn_(fn) {}
  void emit(std::string_view text) {
    std::lock_guard lock(mu_);
    fn_(text);
  }

 private:
  std::mutex mu_;
  const std::function<void(std::string_view)>& fn_;
};

// Length of the longest prefix of `s` that does not end inside a UTF-8 sequence, so a character
// split across two network chunks is delivered whole (the TS SDK's TextDecoder({stream: true})).
std::size_t completeUtf8Prefix(std::string_view s) {
  std::size_t n = s.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    std::size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

// The follow stream of a build log, read on its own thread while create() polls. It ends when
// the server closes it, when the snapshot has been terminal and the stream silent for
// `drain_idle`, when the deadline passes, or when stop() is called.
class LogStream {
 public:
  LogStream(const SnapshotsApi& api, std::string url, LogSink& sink, const sdk::Deadline& deadline,
            std::chrono::milliseconds drain_idle)
      : sink_(sink), deadline_(deadline), drain_idle_(drain_idle) {
    touch();
    thread_ = std::thread([this, &api, url = std::move(url)] { run(api, url); });
  }
  ~LogStream() { stop(); }
  LogStream(const LogStream&) = delete;
  LogStream& operator=(const LogStream&) = delete;

  void markTerminal() {
    touch();
    terminal_ = true;
  }
  //! Waits for the stream to end; rethrows a failure that must reach the caller.
  void wait() {
    if (thread_.joinable()) thread_.join();
    if (error_) std::rethrow_exception(error_);
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  //! After wait(): whether the deadline, not the server, ended the stream.
  bool cutByDeadline() const { return cut_by_deadline_; }

 private:
  void touch() { last_activity_ = SteadyClock::now().time_since_epoch().count(); }

  bool shouldAbort() {
    if (stop_) return true;
    if (deadline_.expired()) {
      cut_by_deadline_ = true;
      return true;
    }
    if (!terminal_) return false;
    auto idle = SteadyClock::now() - SteadyClock::time_point(SteadyClock::duration(last_activity_));
    return idle >= drain_idle_;
  }

  void deliver(std::string_view bytes, bool flush) {
    pending_.append(bytes);
    std::size_t n = flush ? pending_.size() : completeUtf8Prefix(pending_);
    if (n == 0) return;
    std::string_view text = trimRightSpace(std::string_view(pending_).substr(0, n));
    if (!text.empty()) sink_.emit(text);
    pending_.erase(0, n);
  }

  void run(const SnapshotsApi& api, const std::string& url) {
    try {
      api.streamBuildLogs(
          url, true,
          [this](std::string_view chunk) {
            got_data_ = true;
            touch();
            deliver(chunk, false);
            return true;
          },
          [this] { return shouldAbort(); }, deadline_.remaining());
      deliver("", true);
    } catch (const DaytonaConnectionTimeoutError&) {
      cut_by_deadline_ = true;  // the request's timeout is the create's deadline
    } catch (const DaytonaConnectionError&) {
      // A stream that breaks after it delivered logs just ends (as in the TS SDK); one that never
      // connected is a failure of create().
      if (!got_data_) error_ = std::current_exception();
    } catch (...) {
      error_ = std::current_exception();  // e.g. thrown by the caller's onLogs
    }
  }

  LogSink& sink_;
  const sdk::Deadline deadline_;
  const std::chrono::milliseconds drain_idle_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> terminal_{false};
  std::atomic<bool> cut_by_deadline_{false};
  std::atomic<SteadyClock::rep> last_activity_{0};
  bool got_data_ = false;
  std::string pending_;
  std::exception_ptr error_;
  std::thread thread_;
};

// The whole build log in one request (follow=false), for a build that ended between two polls:
// the TS SDK starts its stream only once it sees a state other than pending, so such a build
// shows no log at all there (the C++ SDK may do better, spec §0). Best effort, as the TS SDK
// would not have asked: an unreachable endpoint or a non-2xx answer (whose body is an error, not
// log text) gives nothing. Only the create's deadline running out is an error.
std::string fetchWholeLog(const SnapshotsApi& api, const std::string& snapshot_id,
                          const sdk::Deadline& deadline) {
  std::string url;
  try {
    url = api.getSnapshotBuildLogsUrl(snapshot_id, deadline.remaining());
  } catch (const DaytonaConnectionTimeoutError&) {
    throw;
  } catch (const DaytonaError&) {
    return {};
  }
  const ApiConnection& c = api.connection();
  sdk::HttpRequest req;
  req.url = url + "?follow=false";
  req.headers = c.headers;
  req.timeout = deadline.isSet() ? deadline.remaining() : c.defaultTimeout;
  Result<sdk::HttpResponse> r = c.http->send(req);
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kDeadlineExceeded) sdk::throwTransportError(r.status());
    return {};
  }
  if (r->status < 200 || r->status >= 300) return {};
  return std::move(r->body);
}

std::string formatSeconds(double seconds) {
  std::ostringstream out;
  out << seconds;
  return out.str();
}

// A ConnectionTimeoutError raised within this slack before the deadline is the deadline's doing:
// request timeouts are rounded down to whole milliseconds.
constexpr std::chrono::milliseconds kDeadlineSlack{50};

}  // namespace

SnapshotService::SnapshotService(SnapshotsApi snapshots_api, ObjectStorageApi object_storage_api,
                                 std::string target)
    : api_(std::move(snapshots_api)),
      object_storage_(std::move(object_storage_api)),
      target_(std::move(target)) {}

Snapshot SnapshotService::create(CreateSnapshotParams params, const CreateOptions& options) {
  if (params.name.empty()) throw DaytonaInvalidArgumentError("Snapshot name is required");
  if (!std::isfinite(options.timeout) || options.timeout < 0) {
    throw DaytonaInvalidArgumentError("Timeout must be a non-negative number of seconds");
  }
  const sdk::Deadline deadline = sdk::Deadline::afterSeconds(options.timeout);
  const std::string name = params.name;
  auto timedOut = [&] {
    return DaytonaTimeoutError("Failed to create snapshot " + name + ": timed out after " +
                               formatSeconds(options.timeout) +
                               " s (the server may still be building it; check with get)");
  };
  auto checkDeadline = [&] {
    if (deadline.expired()) throw timedOut();
  };

  std::optional<LogSink> sink;
  if (options.onLogs) sink.emplace(options.onLogs);
  std::unique_ptr<LogStream> stream;

  try {
    Json req = Json::object();
    req["name"] = params.name;
    bool build = false;
    if (const auto* ref = std::get_if<std::string>(&params.image)) {
      req["imageName"] = *ref;
      if (!params.entrypoint.empty()) req["entrypoint"] = params.entrypoint;
    } else {
      Image& image = std::get<Image>(params.image);
      std::vector<std::string> hashes = object_storage_.uploadContext(image, deadline);
      if (!params.entrypoint.empty()) image.entrypoint(params.entrypoint);
      req["buildInfo"] = Json{{"contextHashes", hashes}, {"dockerfileContent", image.dockerfile()}};
      build = true;
    }
    if (params.resources) {
      const Resources& r = *params.resources;
      if (r.cpu) req["cpu"] = *r.cpu;
      if (r.gpu) req["gpu"] = *r.gpu;
      if (r.memory) req["memory"] = *r.memory;
      if (r.disk) req["disk"] = *r.disk;
      if (r.gpuType) req["gpuType"] = Json::array({*r.gpuType});
    }
    const std::string& region = params.regionId.empty() ? target_ : params.regionId;
    if (!region.empty()) req["regionId"] = region;
    if (!params.sandboxClass.empty()) req["sandboxClass"] = params.sandboxClass;

    checkDeadline();
    Snapshot snap = api_.createSnapshot(req, deadline.remaining());

    auto announce = [&] {
      sink->emit("Creating snapshot " + snap.name + " (" + snap.state.str() + ")");
    };
    auto startStream = [&] {
      std::string url = api_.getSnapshotBuildLogsUrl(snap.id, deadline.remaining());
      stream = std::make_unique<LogStream>(api_, std::move(url), *sink, deadline, log_drain_idle_);
    };
    // Whether the POST answered a state before the end: only then did a build run meanwhile
    // (a snapshot active at once was deduplicated and has no log to show).
    const bool built_meanwhile = build && !snap.state.isTerminal();
    if (sink) {
      announce();
      if (build && !(snap.state == SnapshotState::Kind::kPending) && !snap.state.isTerminal()) {
        startStream();
      }
    }
    SnapshotState previous = snap.state;
    while (!snap.state.isTerminal()) {
      if (sink && !(snap.state == previous)) {
        if (build && !(snap.state == SnapshotState::Kind::kPending) && !stream) startStream();
        announce();
        previous = snap.state;
      }
      checkDeadline();
      std::this_thread::sleep_for(deadline.capped(poll_interval_));
      checkDeadline();
      snap = api_.getSnapshot(snap.name, deadline.remaining());  // by name, as the TS SDK
    }
    if (sink) {
      if (stream) {
        stream->markTerminal();
        stream->wait();
        if (stream->cutByDeadline()) throw timedOut();
      } else if (built_meanwhile) {
        // The build went from pending to its end within one poll: no stream was started, so
        // the log is fetched once and delivered where the stream's lines would have been.
        std::string text = fetchWholeLog(api_, snap.id, deadline);
        std::string_view trimmed = trimRightSpace(text);
        if (!trimmed.empty()) sink->emit(trimmed);
      }
      if (snap.state == SnapshotState::Kind::kActive) {
        sink->emit("Created snapshot " + snap.name + " (active)");
      }
    }
    if (snap.state == SnapshotState::Kind::kError ||
        snap.state == SnapshotState::Kind::kBuildFailed) {
      throw DaytonaError("Failed to create snapshot. Name: " + snap.name +
                         " Reason: " + snap.errorReason.value_or("null"));
    }
    return snap;
  } catch (const DaytonaConnectionTimeoutError&) {
    if (stream) stream->stop();
    if (deadline.isSet() && deadline.remaining() <= kDeadlineSlack) {
      throw timedOut();
    }
    throw;
  }
}

Snapshot SnapshotService::get(std::string_view id_or_name) {
  return api_.getSnapshot(id_or_name);
}

PaginatedSnapshots SnapshotService::list() {
  return api_.getAllSnapshots({});
}

PaginatedSnapshots SnapshotService::list(long page, long limit) {
  ListSnapshotsQuery q;
  q.page = page;
  q.limit = limit;
  return api_.getAllSnapshots(q);
}

PaginatedSnapshots SnapshotService::list(const ListSnapshotsQuery& query) {
  return api_.getAllSnapshots(query);
}

template <typename Fn>
auto SnapshotService::withResolvedId(std::string_view id_or_name, Fn&& fn) {
  if (isSdkUuid(id_or_name)) {
    try {
      return fn(id_or_name);
    } catch (const DaytonaNotFoundError&) {
      // Not an id after all (or a name that looks like one): resolve it and retry.
    }
  }
  Snapshot snapshot = api_.getSnapshot(id_or_name);
  return fn(std::string_view(snapshot.id));
}

void SnapshotService::remove(const Snapshot& snapshot) {
  api_.removeSnapshot(snapshot.id);
}

void SnapshotService::remove(std::string_view id_or_name) {
  withResolvedId(id_or_name, [this](std::string_view id) { api_.removeSnapshot(id); });
}

Snapshot SnapshotService::activate(const Snapshot& snapshot) {
  return api_.activateSnapshot(snapshot.id);
}

Snapshot SnapshotService::activate(std::string_view id_or_name) {
  return withResolvedId(id_or_name,
                        [this](std::string_view id) { return api_.activateSnapshot(id); });
}

void SnapshotService::deactivate(const Snapshot& snapshot) {
  api_.deactivateSnapshot(snapshot.id);
}

void SnapshotService::deactivate(std::string_view id_or_name) {
  withResolvedId(id_or_name, [this](std::string_view id) { api_.deactivateSnapshot(id); });
}

void SnapshotService::logs(std::string_view id_or_name, bool follow,
                           const std::function<void(std::string_view)>& on_chunk,
                           std::uint64_t offset) {
  Snapshot snapshot = api_.getSnapshot(id_or_name);
  std::string url = api_.getSnapshotBuildLogsUrl(snapshot.id);
  api_.streamBuildLogs(
      url, follow,
      [&on_chunk](std::string_view chunk) {
        on_chunk(chunk);
        return true;
      },
      {}, {}, offset);
}

}  // namespace cairn
