// Snapshots: create (from an image reference or a declarative Image), get, list, remove,
// activate and deactivate, behaving like the TS SDK's SnapshotService (spec §3.2, §3.3) with
// one deliberate difference: CreateOptions::timeout bounds the whole create (§0.1).
//
//   cairn::Daytona daytona;
//   cairn::Snapshot s = daytona.snapshot.create(
//       {.name = "numpy", .image = cairn::Image::debianSlim("3.12").pipInstall({"numpy"})},
//       {.onLogs = [](std::string_view line) { std::cout << line << "\n"; }, .timeout = 900});
//
// Every method throws the exceptions of cairn/sdk/errors.h. Methods may be called from several
// threads at once (the HTTP client is shared and thread-safe); the setters are for setup.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cairn/image/image.h"
#include "cairn/sdk/api.h"
#include "cairn/sdk/object_storage.h"
#include "cairn/sdk/snapshot.h"

namespace cairn {

struct CreateSnapshotParams {
  std::string name{};
  //! An image reference to pull ("python:3.12-slim"), or a declarative Image to build.
  std::variant<std::string, Image> image{};
  std::optional<Resources> resources{};
  //! For a pulled image: sent as `entrypoint`. For an Image: appended as an ENTRYPOINT line.
  std::vector<std::string> entrypoint{};
  //! Defaults to the client's target.
  std::string regionId{};
  //! "container", "linux-vm", …; empty = the server's default.
  std::string sandboxClass{};
};

struct CreateOptions {
  //! Receives "Creating snapshot <name> (<state>)" lines and build log chunks (right-trimmed).
  //! Calls never overlap, but may come from a helper thread.
  std::function<void(std::string_view)> onLogs{};
  //! Seconds for the WHOLE create (upload, POST, build, log drain); 0 = no limit. Expiry throws
  //! DaytonaTimeoutError and leaves the server-side build running.
  double timeout = 0;
};

class SnapshotService {
 public:
  //! `target` is the default regionId of create (DaytonaConfig::target).
  SnapshotService(SnapshotsApi snapshots_api, ObjectStorageApi object_storage_api,
                  std::string target = {});

  //! The request sequence of spec §3.3: context upload, POST /snapshots, polling by name every
  //! second until active / error / build_failed, the build log streamed to onLogs meanwhile.
  //! A snapshot ending in error or build_failed throws DaytonaError "Failed to create snapshot.
  //! Name: <name> Reason: <errorReason>".
  //! Unlike the TS SDK, a build that ends within one poll interval (never seen in a state that
  //! starts the stream) still shows its log: with onLogs set, it is fetched once (follow=false)
  //! and delivered before "Created snapshot …" or the error (best effort: a failed fetch only
  //! leaves it out). A snapshot active in the POST's answer has no build to show.
  Snapshot create(CreateSnapshotParams params, const CreateOptions& options = {});

  //! By id or name (names may contain '/', ':' and '@').
  Snapshot get(std::string_view id_or_name);

  PaginatedSnapshots list();
  PaginatedSnapshots list(long page, long limit);
  PaginatedSnapshots list(const ListSnapshotsQuery& query);

  //! Deletes; returns as soon as the server accepted it. A string that looks like an id is
  //! tried as one first, falling back to a lookup by name on 404; anything else is looked up.
  void remove(const Snapshot& snapshot);
  void remove(std::string_view id_or_name);
  Snapshot activate(const Snapshot& snapshot);
  Snapshot activate(std::string_view id_or_name);
  void deactivate(const Snapshot& snapshot);
  void deactivate(std::string_view id_or_name);

  //! Streams a snapshot's build log to `on_chunk` (follow = until the build ends), from byte
  //! `offset` on (Cairn's extension; Daytona ignores it and starts at 0).
  void logs(std::string_view id_or_name, bool follow,
            const std::function<void(std::string_view)>& on_chunk, std::uint64_t offset = 0);

  //! How often create polls (1 s, as the TS SDK). Tests shorten it.
  void setPollInterval(std::chrono::milliseconds interval) { poll_interval_ = interval; }
  //! How long the log stream may stay silent after the snapshot is terminal before create stops
  //! waiting for it (the TS SDK's two 2-second read timeouts).
  void setLogDrainIdle(std::chrono::milliseconds idle) { log_drain_idle_ = idle; }

  const SnapshotsApi& api() const { return api_; }

 private:
  template <typename Fn>
  auto withResolvedId(std::string_view id_or_name, Fn&& fn);

  SnapshotsApi api_;
  ObjectStorage object_storage_;
  std::string target_;
  std::chrono::milliseconds poll_interval_{1000};
  std::chrono::milliseconds log_drain_idle_{4000};
};

}  // namespace cairn
