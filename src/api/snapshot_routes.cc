#include "cairn/api/snapshot_routes.h"

#include <fcntl.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cairn/api/auth.h"
#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/meta/api_key.h"
#include "cairn/service/snapshot_request.h"

namespace cairn::api {
namespace {

Response jsonText(int status, const OrderedJson& body) {
  return Response::text(status, body.dump(), "application/json; charset=utf-8");
}

//! One follower of a build log: the stream it feeds and where it is in the log.
struct Follower {
  service::Caller caller;
  std::string snapshot_id;
  std::uint64_t offset = 0;
  std::shared_ptr<ResponseStream> stream;
  std::unique_ptr<service::LogWatch> watch;  // touched only by the pump thread after setup
  std::mutex mu;  // held while pumping, and while the watch is being installed
  bool done = false;
  bool queued = false;  // guarded by LogPump::mu_
};

//! One thread that moves new log bytes into every follower's stream when the service says the
//! log grew (or the snapshot left its build states): followers cost memory, not threads.
class LogPump : public std::enable_shared_from_this<LogPump> {
 public:
  explicit LogPump(service::SnapshotService& service) : service_(service) {}
  ~LogPump() { stop(); }

  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void stop() {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
      if (thread_.get_id() == std::this_thread::get_id()) {
        thread_.detach();
      } else {
        thread_.join();
      }
    }
  }

  void wake(const std::shared_ptr<Follower>& follower) {
    {
      std::lock_guard lock(mu_);
      if (stopping_ || follower->queued) return;
      follower->queued = true;
      queue_.push_back(follower);
    }
    cv_.notify_one();
  }

  //! Registers the watch, then pumps once (watch first, so no append is missed).
  Status follow(const std::shared_ptr<Follower>& follower) {
    std::weak_ptr<LogPump> weak_pump = weak_from_this();
    std::weak_ptr<Follower> weak_follower = follower;
    auto notify = [weak_pump, weak_follower] {
      auto pump = weak_pump.lock();
      auto f = weak_follower.lock();
      if (pump && f) pump->wake(f);
    };
    {
      std::lock_guard lock(mu_);
      if (stopping_) return unavailable("The server is shutting down");
      active_.insert(follower);
    }
    std::lock_guard follower_lock(follower->mu);
    Result<std::unique_ptr<service::LogWatch>> watch =
        service_.watchLogs(follower->caller, follower->snapshot_id, notify);
    if (!watch.ok()) {
      std::lock_guard lock(mu_);
      active_.erase(follower);
      return watch.status();
    }
    follower->watch = std::move(*watch);
    follower->stream->onFinished(notify);
    wake(follower);
    return okStatus();
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) break;
      std::shared_ptr<Follower> f = std::move(queue_.front());
      queue_.pop_front();
      f->queued = false;
      lock.unlock();
      pump(f);
      lock.lock();
    }
    std::vector<std::shared_ptr<Follower>> left(active_.begin(), active_.end());
    queue_.clear();
    lock.unlock();
    for (auto& f : left) {
      std::lock_guard follower_lock(f->mu);
      finish(f);
    }
  }

  void finish(const std::shared_ptr<Follower>& f) {
    f->done = true;
    f->stream->close();
    f->watch.reset();
    std::lock_guard lock(mu_);
    active_.erase(f);
  }

  void pump(const std::shared_ptr<Follower>& f) {
    std::unique_lock follower_lock(f->mu);
    if (f->done) return;
    if (f->stream->cancelled()) {
      finish(f);
      return;
    }
    // Bounded per wake-up so that one long log cannot starve the other followers.
    for (int round = 0; round < 16; ++round) {
      Result<service::LogChunk> chunk = service_.readLogs(f->caller, f->snapshot_id, f->offset);
      if (!chunk.ok()) {
        finish(f);
        return;
      }
      bool got = !chunk->bytes.empty();
      f->offset = chunk->next_offset;
      if (got && !f->stream->write(std::move(chunk->bytes))) {
        finish(f);
        return;
      }
      if (chunk->finished) {
        finish(f);
        return;
      }
      if (!got) return;  // caught up: the watch wakes us on the next append
    }
    follower_lock.unlock();
    wake(f);  // more to read: go to the back of the queue
  }

  service::SnapshotService& service_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Follower>> queue_;
  bool stopping_ = false;
  //! Followers whose stream is open; they live here, not in the queue, between wake-ups.
  std::unordered_set<std::shared_ptr<Follower>> active_;
  std::thread thread_;
};

struct State {
  SnapshotRoutesDeps deps;
  SnapshotRoutesOptions options;
  std::shared_ptr<LogPump> pump;
};

std::string baseUrl(const State& state, const Request& r) {
  if (!state.options.public_url.empty()) {
    std::string url = state.options.public_url;
    while (!url.empty() && url.back() == '/')
      url.pop_back();
    return url;
  }
  const std::string* host = r.header("Host");
  return "http://" + (host != nullptr && !host->empty() ? *host : std::string("localhost"));
}

using AuthedHandler = std::function<Response(Request&, const service::Caller&)>;

Handler authed(std::shared_ptr<State> state, AuthedHandler handler) {
  return [state = std::move(state), handler = std::move(handler)](Request& r) -> Response {
    Result<service::Caller> caller = authenticate(r, state->deps.store, state->deps.clock.now());
    if (!caller.ok()) return errorResponse(r.target, caller.status());
    return handler(r, *caller);
  };
}

Response readWholeLog(State& state, const Request& r, const service::Caller& caller,
                      const std::string& id, std::uint64_t offset) {
  std::string body;
  while (body.size() < state.options.max_log_response_bytes) {
    Result<service::LogChunk> chunk = state.deps.service.readLogs(caller, id, offset);
    if (!chunk.ok()) return errorResponse(r.target, chunk.status());
    if (chunk->bytes.empty()) break;
    offset = chunk->next_offset;
    body += chunk->bytes;
    if (chunk->finished) break;
  }
  return Response::text(200, std::move(body), "application/octet-stream");
}

Response buildLogs(State& state, Request& r, const service::Caller& caller) {
  const std::string& id = r.param("id");
  std::uint64_t offset = 0;
  if (std::optional<std::string> o = r.queryParam("offset"); o && !o->empty()) {
    std::uint64_t value = 0;
    for (char c : *o) {
      if (c < '0' || c > '9' || value > (UINT64_MAX - 9) / 10) {
        return errorResponse(r.target, 400, "offset must be a non-negative integer");
      }
      value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    offset = value;
  }
  std::optional<std::string> follow = r.queryParam("follow");
  if (!follow || (*follow != "true" && *follow != "1")) {
    return readWholeLog(state, r, caller, id, offset);
  }
  // Resolve the snapshot first so that an unknown id is a 404, not an empty stream.
  Result<service::LogChunk> probe = state.deps.service.readLogs(caller, id, offset, 1);
  if (!probe.ok()) return errorResponse(r.target, probe.status());
  auto follower = std::make_shared<Follower>();
  follower->caller = caller;
  follower->snapshot_id = id;
  follower->offset = offset;
  follower->stream = ResponseStream::create();
  if (Status s = state.pump->follow(follower); !s.ok()) return errorResponse(r.target, s);
  return Response::streaming(200, follower->stream, "application/octet-stream");
}

Response pushAccess(State& state, Request& r, const service::Caller& caller) {
  if (Status s = requirePermission(
          caller, {meta::kPermissionWriteSnapshots, meta::kPermissionWriteSandboxes});
      !s.ok()) {
    return errorResponse(r.target, s);
  }
  if (state.deps.minter == nullptr) {
    return errorResponse(r.target, 503, "Object storage is not configured");
  }
  Result<S3Credential> credential = state.deps.minter->mint(caller.organization_id);
  if (!credential.ok()) {
    return errorResponse(r.target, 400,
                         "Failed to get temporary credentials: " + credential.status().message());
  }
  std::string storage_url = state.options.storage_url;
  if (storage_url.empty()) storage_url = baseUrl(state, r) + state.options.s3_prefix;
  OrderedJson body;
  body["accessKey"] = credential->access_key_id;
  body["secret"] = credential->secret_access_key;
  body["sessionToken"] = credential->session_token;
  body["storageUrl"] = storage_url;
  body["organizationId"] = caller.organization_id;
  body["bucket"] = state.options.bucket;
  body["region"] = state.options.region;
  return jsonText(200, body);
}

Response createSnapshot(State& state, Request& r, const service::Caller& caller) {
  Result<Json> body = parseJson(r.body, 64);
  if (!body.ok()) {
    return errorResponse(r.target, 400,
                         "Request body is not valid JSON: " + body.status().message());
  }
  if (!body->is_object()) return errorResponse(r.target, 400, "Request body must be a JSON object");
  Result<service::CreateSnapshotRequest> request = service::parseCreateSnapshot(*body);
  if (!request.ok()) return errorResponse(r.target, request.status());
  Result<meta::Snapshot> created = state.deps.service.create(caller, *request);
  if (!created.ok()) return errorResponse(r.target, created.status());
  return jsonText(200, service::toJson(*created));
}

}  // namespace

Status mountSnapshotRoutes(Router& router, SnapshotRoutesDeps deps, SnapshotRoutesOptions options) {
  auto state = std::make_shared<State>(State{deps, std::move(options), nullptr});
  state->pump = std::make_shared<LogPump>(deps.service);
  state->pump->start();
  State* s = state.get();

  CAIRN_RETURN_IF_ERROR(router.add(
      "POST", "/api/snapshots",
      authed(state, [s](Request& r, const service::Caller& c) { return createSnapshot(*s, r, c); }),
      RouteOptions(s->options.max_create_body_bytes)));
  CAIRN_RETURN_IF_ERROR(
      router.add("GET", "/api/snapshots", authed(state, [s](Request& r, const service::Caller& c) {
                   Result<service::ListSnapshotsQuery> query = service::parseListSnapshotsQuery(
                       [&r](std::string_view name) { return r.queryParam(name); });
                   if (!query.ok()) return errorResponse(r.target, query.status());
                   Result<service::SnapshotListPage> page = s->deps.service.list(c, *query);
                   if (!page.ok()) return errorResponse(r.target, page.status());
                   return jsonText(200, service::toJson(*page));
                 })));
  CAIRN_RETURN_IF_ERROR(router.add(
      "GET", "/api/snapshots/{idOrName}", authed(state, [s](Request& r, const service::Caller& c) {
        Result<meta::Snapshot> snapshot = s->deps.service.get(c, r.param("idOrName"));
        if (!snapshot.ok()) return errorResponse(r.target, snapshot.status());
        return jsonText(200, service::toJson(*snapshot));
      })));
  CAIRN_RETURN_IF_ERROR(router.add(
      "DELETE", "/api/snapshots/{id}", authed(state, [s](Request& r, const service::Caller& c) {
        if (Status st = s->deps.service.remove(c, r.param("id")); !st.ok()) {
          return errorResponse(r.target, st);
        }
        return Response::empty(200);
      })));
  CAIRN_RETURN_IF_ERROR(router.add("POST", "/api/snapshots/{id}/activate",
                                   authed(state, [s](Request& r, const service::Caller& c) {
                                     Result<meta::Snapshot> snapshot =
                                         s->deps.service.activate(c, r.param("id"));
                                     if (!snapshot.ok())
                                       return errorResponse(r.target, snapshot.status());
                                     return jsonText(200, service::toJson(*snapshot));
                                   })));
  CAIRN_RETURN_IF_ERROR(router.add("POST", "/api/snapshots/{id}/deactivate",
                                   authed(state, [s](Request& r, const service::Caller& c) {
                                     if (Status st = s->deps.service.deactivate(c, r.param("id"));
                                         !st.ok()) {
                                       return errorResponse(r.target, st);
                                     }
                                     return Response::empty(204);
                                   })));
  CAIRN_RETURN_IF_ERROR(router.add(
      "GET", "/api/snapshots/{id}/build-logs-url",
      authed(state, [s](Request& r, const service::Caller& c) {
        Result<meta::Snapshot> snapshot = s->deps.service.getForBuildLogs(c, r.param("id"));
        if (!snapshot.ok()) return errorResponse(r.target, snapshot.status());
        OrderedJson body;
        body["url"] = baseUrl(*s, r) + "/api/snapshots/" + snapshot->id + "/build-logs";
        return jsonText(200, body);
      })));
  CAIRN_RETURN_IF_ERROR(router.add(
      "GET", "/api/snapshots/{id}/build-logs",
      authed(state, [s](Request& r, const service::Caller& c) { return buildLogs(*s, r, c); })));
  CAIRN_RETURN_IF_ERROR(router.add(
      "GET", "/api/object-storage/push-access",
      authed(state, [s](Request& r, const service::Caller& c) { return pushAccess(*s, r, c); })));
  return okStatus();
}

Status ObjectStoreContextReader::fetchObject(std::string_view key,
                                             const std::filesystem::path& dest) {
  CAIRN_ASSIGN_OR_RETURN(ObjectReader reader, store_->get(bucket_, key));
  UniqueFd out(::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out.valid()) return errnoStatus(errno, "open " + dest.string());
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(reader.fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errnoStatus(errno, "read object " + std::string(key));
    }
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(out.get(), buf + off, static_cast<std::size_t>(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return errnoStatus(errno, "write " + dest.string());
      }
      off += w;
    }
  }
  if (::fsync(out.get()) != 0) return errnoStatus(errno, "fsync " + dest.string());
  return okStatus();
}

std::string snapshotOpenApiJson() {
  OrderedJson doc;
  doc["openapi"] = "3.0.3";
  doc["info"] = {{"title", "Cairn (Daytona-compatible snapshot API)"}, {"version", "0.1.0"}};
  auto op = [](const char* id, const char* summary, OrderedJson responses) {
    OrderedJson o;
    o["operationId"] = id;
    o["summary"] = summary;
    o["security"] = OrderedJson::array({{{"bearer", OrderedJson::array()}}});
    o["responses"] = std::move(responses);
    return o;
  };
  auto resp = [](const char* code, const char* text) {
    return OrderedJson{{code, {{"description", text}}}};
  };
  OrderedJson paths;
  paths["/api/snapshots"]["post"] =
      op("createSnapshot", "Create a snapshot", resp("200", "SnapshotDto"));
  paths["/api/snapshots"]["get"] =
      op("getAllSnapshots", "List snapshots (page, limit, name, sort, order)",
         resp("200", "PaginatedSnapshots"));
  paths["/api/snapshots/{idOrName}"]["get"] =
      op("getSnapshot", "Get a snapshot by id or name", resp("200", "SnapshotDto"));
  paths["/api/snapshots/{id}"]["delete"] =
      op("removeSnapshot", "Delete a snapshot", resp("200", "Deleted"));
  paths["/api/snapshots/{id}/activate"]["post"] =
      op("activateSnapshot", "Activate a snapshot", resp("200", "SnapshotDto"));
  paths["/api/snapshots/{id}/deactivate"]["post"] =
      op("deactivateSnapshot", "Deactivate a snapshot", resp("204", "Deactivated"));
  paths["/api/snapshots/{id}/build-logs-url"]["get"] =
      op("getSnapshotBuildLogsUrl", "URL of the build log stream", resp("200", "{url}"));
  paths["/api/snapshots/{id}/build-logs"]["get"] =
      op("getSnapshotBuildLogs", "Build log (follow=true streams, offset=<bytes> resumes)",
         resp("200", "application/octet-stream"));
  paths["/api/object-storage/push-access"]["get"] =
      op("getPushAccess", "Temporary S3 credentials for build contexts",
         resp("200", "StorageAccessDto"));
  paths["/healthz"]["get"] = {{"operationId", "health"}, {"responses", resp("200", "ok")}};
  paths["/metrics"]["get"] = {{"operationId", "metrics"},
                              {"responses", resp("200", "Prometheus text")}};
  doc["paths"] = std::move(paths);
  doc["components"]["securitySchemes"]["bearer"] = {{"type", "http"}, {"scheme", "bearer"}};
  return doc.dump();
}

}  // namespace cairn::api
