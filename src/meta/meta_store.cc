#include "cairn/meta/meta_store.h"

#include <array>
#include <utility>

#include "cairn/common/strings.h"
#include "cairn/common/uuid.h"
#include "store_rules.h"

namespace cairn::meta {
namespace {

template <typename E, std::size_t N>
Result<E> parseEnum(const std::array<std::pair<E, std::string_view>, N>& table,
                    std::string_view name, std::string_view what) {
  for (const auto& [value, text] : table) {
    if (text == name) return value;
  }
  return invalidArgument("unknown " + std::string(what) + " \"" + std::string(name) + "\"");
}

template <typename E, std::size_t N>
std::string_view enumName(const std::array<std::pair<E, std::string_view>, N>& table, E value) {
  for (const auto& [v, text] : table) {
    if (v == value) return text;
  }
  return "unknown";
}

constexpr std::array<std::pair<SnapshotState, std::string_view>, 9> kSnapshotStates = {{
    {SnapshotState::kPending, "pending"},
    {SnapshotState::kBuilding, "building"},
    {SnapshotState::kPulling, "pulling"},
    {SnapshotState::kActive, "active"},
    {SnapshotState::kInactive, "inactive"},
    {SnapshotState::kError, "error"},
    {SnapshotState::kBuildFailed, "build_failed"},
    {SnapshotState::kRemoving, "removing"},
    {SnapshotState::kSnapshotting, "snapshotting"},
}};

constexpr std::array<std::pair<BuildState, std::string_view>, 4> kBuildStates = {{
    {BuildState::kPending, "pending"},
    {BuildState::kBuilding, "building"},
    {BuildState::kReady, "ready"},
    {BuildState::kFailed, "failed"},
}};

constexpr std::array<std::pair<JobState, std::string_view>, 4> kJobStates = {{
    {JobState::kQueued, "queued"},
    {JobState::kRunning, "running"},
    {JobState::kSucceeded, "succeeded"},
    {JobState::kFailed, "failed"},
}};

bool visibleTo(const Snapshot& s, std::string_view organization_id) {
  return s.general || (s.organization_id && *s.organization_id == organization_id);
}

}  // namespace

std::string_view snapshotStateName(SnapshotState state) {
  return enumName(kSnapshotStates, state);
}
Result<SnapshotState> parseSnapshotState(std::string_view name) {
  return parseEnum(kSnapshotStates, name, "snapshot state");
}
bool isTerminalForSdk(SnapshotState state) {
  return state == SnapshotState::kActive || isErrorState(state);
}
bool isErrorState(SnapshotState state) {
  return state == SnapshotState::kError || state == SnapshotState::kBuildFailed;
}
bool countsAgainstQuota(SnapshotState state) {
  return state == SnapshotState::kPending || state == SnapshotState::kBuilding ||
         state == SnapshotState::kPulling || state == SnapshotState::kActive;
}

std::string_view buildStateName(BuildState state) {
  return enumName(kBuildStates, state);
}
Result<BuildState> parseBuildState(std::string_view name) {
  return parseEnum(kBuildStates, name, "build state");
}

std::string_view jobStateName(JobState state) {
  return enumName(kJobStates, state);
}
Result<JobState> parseJobState(std::string_view name) {
  return parseEnum(kJobStates, name, "job state");
}

Result<Snapshot> resolveSnapshot(MetaStore& store, std::string_view organization_id,
                                 std::string_view id_or_name) {
  const std::string not_found = "Snapshot " + std::string(id_or_name) + " not found";
  if (!organization_id.empty()) {
    Result<Snapshot> own = store.findSnapshotByName(organization_id, id_or_name);
    if (own.ok() || own.status().code() != StatusCode::kNotFound) return own;
  }
  Result<Snapshot> general = store.findGeneralSnapshotByName(id_or_name);
  if (general.ok() || general.status().code() != StatusCode::kNotFound) return general;
  if (isUuid(id_or_name)) {
    Result<Snapshot> by_id = store.getSnapshot(toLowerAscii(id_or_name));
    if (by_id.ok()) {
      if (visibleTo(*by_id, organization_id)) return by_id;
    } else if (by_id.status().code() != StatusCode::kNotFound) {
      return by_id;
    }
  }
  return notFound(not_found);
}

Result<Snapshot> getSnapshotForOrganization(MetaStore& store, std::string_view organization_id,
                                            std::string_view id) {
  Result<Snapshot> s = store.getSnapshot(id);
  if (s.ok() && visibleTo(*s, organization_id)) return s;
  if (!s.ok() && s.status().code() != StatusCode::kNotFound) return s;
  return notFound("Snapshot " + std::string(id) + " not found");
}

namespace rules {

std::string snapshotNotFound(std::string_view id_or_name) {
  return "Snapshot " + std::string(id_or_name) + " not found";
}

std::string nameTaken(std::string_view name) {
  return "Snapshot with name \"" + std::string(name) + "\" already exists for this organization";
}

Status checkErrorReason(SnapshotState next, bool state_changes,
                        const std::optional<std::string>& reason) {
  if (isErrorState(next)) {
    if (reason && reason->empty()) {
      return invalidArgument("an errorReason must not be empty");
    }
    if (state_changes && !reason) {
      return invalidArgument("entering state " + std::string(snapshotStateName(next)) +
                             " requires an errorReason");
    }
  } else if (reason) {
    return invalidArgument("errorReason is only kept in states error and build_failed, not " +
                           std::string(snapshotStateName(next)));
  }
  return okStatus();
}

Status checkNewSnapshot(const Snapshot& snapshot) {
  if (snapshot.name.empty()) return invalidArgument("snapshot name must not be empty");
  if (snapshot.general == snapshot.organization_id.has_value()) {
    return invalidArgument("a snapshot is either general (no organization) or belongs to one");
  }
  if (snapshot.state == SnapshotState::kRemoving) {
    return invalidArgument("a snapshot cannot be created in state removing");
  }
  return checkErrorReason(snapshot.state, true, snapshot.error_reason);
}

Status quotaExceeded(std::int64_t max_snapshots) {
  return resourceExhausted("Snapshot quota exceeded. Maximum allowed: " +
                           std::to_string(max_snapshots));
}

}  // namespace rules
}  // namespace cairn::meta
