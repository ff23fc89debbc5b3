// The snapshot as the API returns it (SnapshotDto, spec §1.6), with proper C++ types, plus the
// paginated list (§1.4).
//
// Parsing is lenient the way the TS SDK is: unknown fields are ignored, optional fields may be
// missing or null. Only id, name and state are required; a field of the wrong type or a
// timestamp that is not RFC 3339 is an error that names the field.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/json.h"
#include "cairn/common/status.h"

namespace cairn {

//! The states of §1.7. A state this SDK does not know keeps its string (kind kUnknown), so a
//! newer server's state is shown as it is instead of being lost.
class SnapshotState {
 public:
  enum class Kind {
    kPending,
    kBuilding,
    kPulling,
    kActive,
    kInactive,
    kError,
    kBuildFailed,
    kRemoving,
    kSnapshotting,
    kUnknown,
  };

  SnapshotState() : SnapshotState(Kind::kPending) {}
  SnapshotState(Kind kind);  // NOLINT(google-explicit-constructor)
  static SnapshotState fromString(std::string_view text);

  Kind kind() const { return kind_; }
  //! The wire string: "pending", "build_failed", or whatever unknown string was received.
  const std::string& str() const { return text_; }
  //! The SDK stops polling in these: active, error, build_failed.
  bool isTerminal() const {
    return kind_ == Kind::kActive || kind_ == Kind::kError || kind_ == Kind::kBuildFailed;
  }

  friend bool operator==(const SnapshotState& a, const SnapshotState& b) {
    return a.text_ == b.text_;
  }
  friend bool operator==(const SnapshotState& a, Kind b) { return a.kind_ == b; }

 private:
  SnapshotState(Kind kind, std::string text) : kind_(kind), text_(std::move(text)) {}
  Kind kind_;
  std::string text_;
};

//! Resources of a snapshot, in vCPUs, GPUs and GiB. On create an unset field is not sent (the
//! server applies its default: cpu 1, gpu 0, memory 1, disk 3).
struct Resources {
  std::optional<double> cpu{};
  std::optional<double> gpu{};
  std::optional<double> memory{};
  std::optional<double> disk{};
  //! GPU model ("H100", "RTX-4090", …); sent as the one-element `gpuType` array.
  std::optional<std::string> gpuType{};
};

struct BuildInfo {
  std::string dockerfileContent{};
  std::vector<std::string> contextHashes{};
  std::optional<std::chrono::system_clock::time_point> createdAt{};
  std::optional<std::chrono::system_clock::time_point> updatedAt{};
  std::string snapshotRef{};
};

//! A snapshot (SnapshotDto). Field names are the wire names, as in the TS SDK.
struct Snapshot {
  std::string id{};
  std::optional<std::string> organizationId{};  // absent for general snapshots
  bool general = false;
  std::string name{};
  std::string imageName{};  // "" for build snapshots
  SnapshotState state{};
  std::optional<double> size{};  // GB; null until known
  std::optional<std::vector<std::string>> entrypoint{};
  double cpu = 1;
  double gpu = 0;
  std::optional<std::string> gpuType{};
  double mem = 1;   // GB
  double disk = 3;  // GB
  std::optional<std::string> errorReason{};
  std::chrono::system_clock::time_point createdAt{};
  std::chrono::system_clock::time_point updatedAt{};
  std::optional<std::chrono::system_clock::time_point> lastUsedAt{};
  std::optional<BuildInfo> buildInfo{};
  std::vector<std::string> regionIds{};
  std::optional<std::string> initialRunnerId{};
  std::optional<std::string> ref{};
  std::optional<std::string> sandboxClass{};
  std::optional<std::string> sourceSandboxId{};

  //! cpu, gpu, mem and disk as Resources (memory = mem).
  Resources resources() const { return {cpu, gpu, mem, disk, gpuType}; }
};

struct PaginatedSnapshots {
  std::vector<Snapshot> items{};
  long total = 0;
  long page = 1;
  long totalPages = 0;
};

//! Lenient parse of a SnapshotDto (see the file comment). Errors are InvalidArgument and name
//! the offending field.
Result<Snapshot> parseSnapshot(const Json& json);
Result<PaginatedSnapshots> parsePaginatedSnapshots(const Json& json);
//! Back to the wire form (for `--json` output and tests); absent optionals become null.
Json snapshotToJson(const Snapshot& snapshot);

}  // namespace cairn
