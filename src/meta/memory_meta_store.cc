#include "cairn/meta/memory_meta_store.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>

#include "cairn/common/strings.h"
#include "cairn/common/uuid.h"
#include "store_rules.h"

namespace cairn::meta {
namespace {

using rules::checkErrorReason;
using rules::nameTaken;
using rules::snapshotNotFound;

//! Millisecond truncation, as the SQL stores keep timestamps.
SystemTime ms(SystemTime t) {
  return SystemTime(std::chrono::duration_cast<SystemTime::duration>(
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch())));
}
std::optional<SystemTime> ms(const std::optional<SystemTime>& t) {
  if (!t) return std::nullopt;
  return ms(*t);
}

bool isLive(const Snapshot& s) {
  return s.state != SnapshotState::kRemoving;
}

std::string orgKey(const Snapshot& s) {
  return s.organization_id.value_or("");
}

std::string jobNotFound(std::int64_t id) {
  return "job " + std::to_string(id) + " not found";
}

Status notHeld(const Job& j, std::string_view owner) {
  return failedPrecondition("job " + std::to_string(j.id) + " is not held by " +
                            std::string(owner) + " (state " + std::string(jobStateName(j.state)) +
                            ", owner " + j.owner.value_or("none") + ")");
}

//! -1, 0, 1 for an optional key where empty sorts last in both directions (NULLS LAST).
template <typename T>
int compareNullsLast(const std::optional<T>& a, const std::optional<T>& b, bool desc) {
  if (!a && !b) return 0;
  if (!a) return 1;
  if (!b) return -1;
  if (*a == *b) return 0;
  const bool less = *a < *b;
  return (less != desc) ? -1 : 1;
}

}  // namespace

struct MemoryMetaStore::State {
  std::mutex mu;
  std::map<std::string, Organization> orgs;
  std::map<std::string, ApiKey> keys;
  std::map<std::string, Snapshot> snapshots;
  std::map<std::string, Build> builds;
  std::map<std::int64_t, Job> jobs;
  std::int64_t next_job_id = 1;
  std::map<std::string, QuotaReservation> reservations;

  bool liveNameTaken(const std::string& org_key, const std::string& name) const {
    return std::any_of(snapshots.begin(), snapshots.end(), [&](const auto& kv) {
      return isLive(kv.second) && orgKey(kv.second) == org_key && kv.second.name == name;
    });
  }

  std::int64_t quotaUsage(std::string_view org, SystemTime now) const {
    std::int64_t n = 0;
    for (const auto& [id, s] : snapshots) {
      if (s.organization_id && *s.organization_id == org && countsAgainstQuota(s.state)) ++n;
    }
    for (const auto& [id, r] : reservations) {
      if (r.organization_id == org && r.expires_at > now) ++n;
    }
    return n;
  }
};

std::shared_ptr<MemoryMetaStore::State> MemoryMetaStore::newState() {
  return std::make_shared<State>();
}

MemoryMetaStore::MemoryMetaStore(const Clock& clock) : MemoryMetaStore(clock, newState()) {}
MemoryMetaStore::MemoryMetaStore(const Clock& clock, std::shared_ptr<State> state)
    : clock_(clock), state_(std::move(state)) {}
MemoryMetaStore::~MemoryMetaStore() = default;

SystemTime MemoryMetaStore::now() const {
  return ms(clock_.now());
}

// ---- Organizations --------------------------------------------------------------------------

Result<Organization> MemoryMetaStore::createOrganization(const Organization& org) {
  if (org.name.empty()) return invalidArgument("organization name must not be empty");
  std::lock_guard lock(state_->mu);
  for (const auto& [id, o] : state_->orgs) {
    if (o.name == org.name)
      return alreadyExists("organization \"" + org.name + "\" already exists");
  }
  Organization o = org;
  if (o.id.empty()) o.id = uuidV4();
  if (state_->orgs.count(o.id) != 0) return alreadyExists("organization " + o.id + " exists");
  o.created_at = o.updated_at = now();
  state_->orgs[o.id] = o;
  return o;
}

Result<Organization> MemoryMetaStore::getOrganization(std::string_view id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->orgs.find(std::string(id));
  if (it == state_->orgs.end()) return notFound("organization " + std::string(id) + " not found");
  return it->second;
}

Result<Organization> MemoryMetaStore::getOrganizationByName(std::string_view name) {
  std::lock_guard lock(state_->mu);
  for (const auto& [id, o] : state_->orgs) {
    if (o.name == name) return o;
  }
  return notFound("organization \"" + std::string(name) + "\" not found");
}

Result<std::vector<Organization>> MemoryMetaStore::listOrganizations() {
  std::lock_guard lock(state_->mu);
  std::vector<Organization> out;
  for (const auto& [id, o] : state_->orgs)
    out.push_back(o);
  std::sort(out.begin(), out.end(),
            [](const Organization& a, const Organization& b) { return a.name < b.name; });
  return out;
}

Result<Organization> MemoryMetaStore::updateOrganization(const Organization& org) {
  if (org.name.empty()) return invalidArgument("organization name must not be empty");
  std::lock_guard lock(state_->mu);
  auto it = state_->orgs.find(org.id);
  if (it == state_->orgs.end()) return notFound("organization " + org.id + " not found");
  for (const auto& [id, o] : state_->orgs) {
    if (id != org.id && o.name == org.name) {
      return alreadyExists("organization \"" + org.name + "\" already exists");
    }
  }
  Organization& o = it->second;
  o.name = org.name;
  o.suspended = org.suspended;
  o.suspension_reason = org.suspension_reason;
  o.default_region_id = org.default_region_id;
  o.limits = org.limits;
  o.updated_at = now();
  return o;
}

// ---- API keys -------------------------------------------------------------------------------

Result<ApiKey> MemoryMetaStore::createApiKey(const ApiKey& key) {
  if (key.name.empty()) return invalidArgument("API key name must not be empty");
  if (key.key_hash.empty()) return invalidArgument("API key hash must not be empty");
  std::lock_guard lock(state_->mu);
  if (state_->orgs.count(key.organization_id) == 0) {
    return notFound("organization " + key.organization_id + " not found");
  }
  for (const auto& [id, k] : state_->keys) {
    if ((k.organization_id == key.organization_id && k.name == key.name) ||
        k.key_hash == key.key_hash) {
      return alreadyExists("API key \"" + key.name + "\" already exists in organization " +
                           key.organization_id);
    }
  }
  ApiKey k = key;
  if (k.id.empty()) k.id = uuidV4();
  k.created_at = now();
  k.expires_at = ms(k.expires_at);
  k.revoked_at = ms(k.revoked_at);
  k.last_used_at = ms(k.last_used_at);
  state_->keys[k.id] = k;
  return k;
}

Result<ApiKey> MemoryMetaStore::getApiKeyByHash(std::string_view key_hash) {
  std::lock_guard lock(state_->mu);
  for (const auto& [id, k] : state_->keys) {
    if (k.key_hash == key_hash) return k;
  }
  return notFound("API key not found");
}

Result<std::vector<ApiKey>> MemoryMetaStore::listApiKeys(std::string_view organization_id) {
  std::lock_guard lock(state_->mu);
  std::vector<ApiKey> out;
  for (const auto& [id, k] : state_->keys) {
    if (k.organization_id == organization_id) out.push_back(k);
  }
  std::sort(out.begin(), out.end(), [](const ApiKey& a, const ApiKey& b) {
    return std::tie(a.created_at, a.name) < std::tie(b.created_at, b.name);
  });
  return out;
}

Result<ApiKey> MemoryMetaStore::revokeApiKey(std::string_view organization_id,
                                             std::string_view key_id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->keys.find(std::string(key_id));
  if (it == state_->keys.end() || it->second.organization_id != organization_id) {
    return notFound("API key " + std::string(key_id) + " not found");
  }
  if (!it->second.revoked_at) it->second.revoked_at = now();
  return it->second;
}

Status MemoryMetaStore::touchApiKey(std::string_view key_id, SystemTime used_at) {
  std::lock_guard lock(state_->mu);
  auto it = state_->keys.find(std::string(key_id));
  if (it == state_->keys.end()) return notFound("API key " + std::string(key_id) + " not found");
  it->second.last_used_at = ms(used_at);
  return okStatus();
}

// ---- Snapshots ------------------------------------------------------------------------------

Result<Snapshot> MemoryMetaStore::createSnapshot(const Snapshot& snapshot,
                                                 std::string_view reservation_id) {
  CAIRN_RETURN_IF_ERROR(rules::checkNewSnapshot(snapshot));
  std::lock_guard lock(state_->mu);
  const SystemTime t = now();
  auto reservation = state_->reservations.end();
  if (!reservation_id.empty()) {
    reservation = state_->reservations.find(std::string(reservation_id));
    if (reservation == state_->reservations.end() || reservation->second.expires_at <= t) {
      return notFound("quota reservation " + std::string(reservation_id) + " not found or expired");
    }
  }
  if (state_->liveNameTaken(orgKey(snapshot), snapshot.name)) {
    return alreadyExists(nameTaken(snapshot.name));
  }
  if (snapshot.organization_id && state_->orgs.count(*snapshot.organization_id) == 0) {
    return notFound("organization " + *snapshot.organization_id + " not found");
  }
  Snapshot r = snapshot;
  if (r.id.empty()) r.id = uuidV4();
  if (state_->snapshots.count(r.id) != 0) return alreadyExists("snapshot " + r.id + " exists");
  r.created_at = r.updated_at = r.state_entered_at = t;
  r.last_used_at = ms(r.last_used_at);
  if (r.build_info) {
    if (r.build_info->created_at == SystemTime{}) r.build_info->created_at = t;
    if (r.build_info->updated_at == SystemTime{}) r.build_info->updated_at = t;
    r.build_info->created_at = ms(r.build_info->created_at);
    r.build_info->updated_at = ms(r.build_info->updated_at);
  }
  if (reservation != state_->reservations.end()) state_->reservations.erase(reservation);
  state_->snapshots[r.id] = r;
  return r;
}

Result<Snapshot> MemoryMetaStore::getSnapshot(std::string_view id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->snapshots.find(std::string(id));
  if (it == state_->snapshots.end()) return notFound(snapshotNotFound(id));
  return it->second;
}

Result<Snapshot> MemoryMetaStore::findSnapshotByName(std::string_view organization_id,
                                                     std::string_view name) {
  std::lock_guard lock(state_->mu);
  for (const auto& [id, s] : state_->snapshots) {
    if (isLive(s) && orgKey(s) == organization_id && s.name == name) return s;
  }
  return notFound(snapshotNotFound(name));
}

Result<Snapshot> MemoryMetaStore::findGeneralSnapshotByName(std::string_view name) {
  return findSnapshotByName("", name);
}

Result<SnapshotPage> MemoryMetaStore::listSnapshots(std::string_view organization_id,
                                                    const SnapshotListQuery& query) {
  if (query.page < 1) return invalidArgument("page must not be less than 1");
  if (query.limit < 1) return invalidArgument("limit must not be less than 1");
  if (query.limit > 200) return invalidArgument("limit must not be greater than 200");
  std::vector<Snapshot> matches;
  {
    std::lock_guard lock(state_->mu);
    const std::string needle = toLowerAscii(query.name_contains.value_or(""));
    for (const auto& [id, s] : state_->snapshots) {
      const bool visible =
          (s.organization_id && *s.organization_id == organization_id) || (s.general && !s.hidden);
      if (!visible) continue;
      if (query.name_contains && toLowerAscii(s.name).find(needle) == std::string::npos) continue;
      if (query.source_sandbox_id && s.source_sandbox_id != query.source_sandbox_id) continue;
      if (!query.include_removing && !isLive(s)) continue;
      matches.push_back(s);
    }
  }
  const bool desc = query.order == SortOrder::kDesc;
  auto key = [&](const Snapshot& a, const Snapshot& b) -> int {
    switch (query.sort) {
      case SnapshotSortField::kLastUsedAt:
        return compareNullsLast(a.last_used_at, b.last_used_at, desc);
      case SnapshotSortField::kCreatedAt:
        return compareNullsLast(std::optional(a.created_at), std::optional(b.created_at), desc);
      case SnapshotSortField::kName:
        return compareNullsLast(std::optional(a.name), std::optional(b.name), desc);
      case SnapshotSortField::kState:
        return compareNullsLast(std::optional(std::string(snapshotStateName(a.state))),
                                std::optional(std::string(snapshotStateName(b.state))), desc);
    }
    return 0;
  };
  std::sort(matches.begin(), matches.end(), [&](const Snapshot& a, const Snapshot& b) {
    if (a.general != b.general) return !a.general;
    if (int c = key(a, b); c != 0) return c < 0;
    if (a.created_at != b.created_at) return a.created_at > b.created_at;
    return a.id < b.id;
  });
  SnapshotPage page;
  page.total = static_cast<std::int64_t>(matches.size());
  const std::int64_t offset = (query.page - 1) * query.limit;
  for (std::int64_t i = offset; i < page.total && i < offset + query.limit; ++i) {
    page.items.push_back(std::move(matches[static_cast<std::size_t>(i)]));
  }
  return page;
}

Result<std::vector<Snapshot>> MemoryMetaStore::findSnapshots(const SnapshotFilter& filter) {
  std::vector<Snapshot> out;
  {
    std::lock_guard lock(state_->mu);
    for (const auto& [id, s] : state_->snapshots) {
      if (!filter.states.empty() &&
          std::find(filter.states.begin(), filter.states.end(), s.state) == filter.states.end()) {
        continue;
      }
      if (filter.organization_id && s.organization_id != filter.organization_id) continue;
      if (filter.ref && s.ref != filter.ref) continue;
      if (filter.state_entered_before && !(s.state_entered_at < *filter.state_entered_before)) {
        continue;
      }
      if (filter.last_used_before &&
          !(s.last_used_at.value_or(s.created_at) < *filter.last_used_before)) {
        continue;
      }
      out.push_back(s);
    }
  }
  std::sort(out.begin(), out.end(), [](const Snapshot& a, const Snapshot& b) {
    return std::tie(a.state_entered_at, a.id) < std::tie(b.state_entered_at, b.id);
  });
  if (static_cast<std::int64_t>(out.size()) > filter.limit) {
    out.resize(static_cast<std::size_t>(std::max<std::int64_t>(filter.limit, 0)));
  }
  return out;
}

Result<Snapshot> MemoryMetaStore::updateSnapshotState(std::string_view id, SnapshotState expected,
                                                      SnapshotState next,
                                                      const SnapshotUpdate& update) {
  CAIRN_RETURN_IF_ERROR(checkErrorReason(next, expected != next, update.error_reason));
  std::lock_guard lock(state_->mu);
  auto it = state_->snapshots.find(std::string(id));
  if (it == state_->snapshots.end()) return notFound(snapshotNotFound(id));
  Snapshot& s = it->second;
  if (s.state != expected) {
    return failedPrecondition("snapshot " + std::string(id) + " is in state " +
                              std::string(snapshotStateName(s.state)) + ", not " +
                              std::string(snapshotStateName(expected)));
  }
  if (s.state == SnapshotState::kRemoving && next != SnapshotState::kRemoving &&
      state_->liveNameTaken(orgKey(s), s.name)) {
    return alreadyExists(nameTaken(s.name));
  }
  const SystemTime t = now();
  if (s.state != next) s.state_entered_at = t;
  s.state = next;
  s.updated_at = t;
  if (update.size_bytes) s.size_bytes = update.size_bytes;
  if (update.entrypoint) s.entrypoint = update.entrypoint;
  if (isErrorState(next)) {
    if (update.error_reason) s.error_reason = update.error_reason;
  } else {
    s.error_reason.reset();
  }
  if (update.last_used_at) s.last_used_at = ms(update.last_used_at);
  if (update.initial_runner_id) s.initial_runner_id = update.initial_runner_id;
  if (update.ref) s.ref = update.ref;
  if (update.image_name) s.image_name = *update.image_name;
  return s;
}

Result<Snapshot> MemoryMetaStore::markSnapshotRemoving(std::string_view id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->snapshots.find(std::string(id));
  if (it == state_->snapshots.end()) return notFound(snapshotNotFound(id));
  Snapshot& s = it->second;
  if (s.state == SnapshotState::kRemoving) {
    return failedPrecondition("snapshot " + std::string(id) + " is already being removed");
  }
  s.state = SnapshotState::kRemoving;
  s.updated_at = s.state_entered_at = now();
  s.error_reason.reset();
  return s;
}

Status MemoryMetaStore::touchSnapshot(std::string_view id, SystemTime used_at) {
  std::lock_guard lock(state_->mu);
  auto it = state_->snapshots.find(std::string(id));
  if (it == state_->snapshots.end()) return notFound(snapshotNotFound(id));
  it->second.last_used_at = ms(used_at);
  return okStatus();
}

Status MemoryMetaStore::deleteSnapshot(std::string_view id) {
  std::lock_guard lock(state_->mu);
  if (state_->snapshots.erase(std::string(id)) == 0) return notFound(snapshotNotFound(id));
  return okStatus();
}

// ---- Builds ---------------------------------------------------------------------------------

Result<MetaStore::BuildClaim> MemoryMetaStore::getOrCreateBuild(std::string_view build_ref) {
  if (build_ref.empty()) return invalidArgument("build ref must not be empty");
  std::lock_guard lock(state_->mu);
  BuildClaim claim;
  auto [it, inserted] = state_->builds.try_emplace(std::string(build_ref));
  if (inserted) {
    it->second.build_ref = std::string(build_ref);
    it->second.created_at = it->second.updated_at = now();
  }
  claim.build = it->second;
  claim.created = inserted;
  return claim;
}

Result<Build> MemoryMetaStore::getBuild(std::string_view build_ref) {
  std::lock_guard lock(state_->mu);
  auto it = state_->builds.find(std::string(build_ref));
  if (it == state_->builds.end()) return notFound("build " + std::string(build_ref) + " not found");
  return it->second;
}

Result<Build> MemoryMetaStore::updateBuildState(std::string_view build_ref, BuildState expected,
                                                BuildState next, const BuildUpdate& update) {
  if (next == BuildState::kFailed && expected != next &&
      (!update.error_reason || update.error_reason->empty())) {
    return invalidArgument("a failed build requires an error reason");
  }
  std::lock_guard lock(state_->mu);
  auto it = state_->builds.find(std::string(build_ref));
  if (it == state_->builds.end()) return notFound("build " + std::string(build_ref) + " not found");
  Build& b = it->second;
  if (b.state != expected) {
    return failedPrecondition("build " + std::string(build_ref) + " is in state " +
                              std::string(buildStateName(b.state)) + ", not " +
                              std::string(buildStateName(expected)));
  }
  b.state = next;
  b.updated_at = now();
  if (update.image_digest) b.image_digest = update.image_digest;
  if (update.size_bytes) b.size_bytes = update.size_bytes;
  if (update.entrypoint) b.entrypoint = update.entrypoint;
  if (next == BuildState::kFailed) {
    if (update.error_reason) b.error_reason = update.error_reason;
  } else {
    b.error_reason.reset();
  }
  return b;
}

Status MemoryMetaStore::deleteBuild(std::string_view build_ref) {
  std::lock_guard lock(state_->mu);
  if (state_->builds.erase(std::string(build_ref)) == 0) {
    return notFound("build " + std::string(build_ref) + " not found");
  }
  return okStatus();
}

Result<std::vector<Build>> MemoryMetaStore::listBuilds() {
  std::lock_guard lock(state_->mu);
  std::vector<Build> out;
  for (const auto& [ref, b] : state_->builds)
    out.push_back(b);
  std::sort(out.begin(), out.end(), [](const Build& a, const Build& b) {
    return std::tie(a.created_at, a.build_ref) < std::tie(b.created_at, b.build_ref);
  });
  return out;
}

// ---- Jobs -----------------------------------------------------------------------------------

Result<Job> MemoryMetaStore::enqueueJob(const JobSpec& spec) {
  if (spec.kind.empty()) return invalidArgument("job kind must not be empty");
  if (spec.max_attempts < 1) return invalidArgument("job max_attempts must be at least 1");
  std::lock_guard lock(state_->mu);
  const SystemTime t = now();
  Job j;
  j.id = state_->next_job_id++;
  j.kind = spec.kind;
  j.payload = spec.payload;
  j.snapshot_id = spec.snapshot_id;
  j.max_attempts = spec.max_attempts;
  j.run_after = ms(spec.run_after.value_or(t));
  j.created_at = j.updated_at = t;
  state_->jobs[j.id] = j;
  return j;
}

Result<Job> MemoryMetaStore::getJob(std::int64_t id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->jobs.find(id);
  if (it == state_->jobs.end()) return notFound(jobNotFound(id));
  return it->second;
}

Result<std::optional<Job>> MemoryMetaStore::claimJob(std::string_view owner,
                                                     const std::vector<std::string>& kinds,
                                                     std::chrono::milliseconds lease) {
  if (owner.empty()) return invalidArgument("job owner must not be empty");
  if (lease.count() <= 0) return invalidArgument("job lease must be positive");
  std::lock_guard lock(state_->mu);
  const SystemTime t = now();
  Job* best = nullptr;
  for (auto& [id, j] : state_->jobs) {
    if (j.state != JobState::kQueued || j.run_after > t) continue;
    if (!kinds.empty() && std::find(kinds.begin(), kinds.end(), j.kind) == kinds.end()) continue;
    if (best == nullptr || std::tie(j.run_after, j.id) < std::tie(best->run_after, best->id)) {
      best = &j;
    }
  }
  if (best == nullptr) return std::optional<Job>();
  best->state = JobState::kRunning;
  best->owner = std::string(owner);
  best->lease_expires_at = t + lease;
  best->attempts += 1;
  best->updated_at = t;
  return std::optional<Job>(*best);
}

Result<Job> MemoryMetaStore::heartbeatJob(std::int64_t id, std::string_view owner,
                                          std::chrono::milliseconds lease) {
  if (lease.count() <= 0) return invalidArgument("job lease must be positive");
  std::lock_guard lock(state_->mu);
  auto it = state_->jobs.find(id);
  if (it == state_->jobs.end()) return notFound(jobNotFound(id));
  Job& j = it->second;
  if (j.state != JobState::kRunning || j.owner != owner) return notHeld(j, owner);
  const SystemTime t = now();
  j.lease_expires_at = t + lease;
  j.updated_at = t;
  return j;
}

Result<Job> MemoryMetaStore::completeJob(std::int64_t id, std::string_view owner) {
  std::lock_guard lock(state_->mu);
  auto it = state_->jobs.find(id);
  if (it == state_->jobs.end()) return notFound(jobNotFound(id));
  Job& j = it->second;
  if (j.state != JobState::kRunning || j.owner != owner) return notHeld(j, owner);
  j.state = JobState::kSucceeded;
  j.lease_expires_at.reset();
  j.error.reset();
  j.updated_at = now();
  return j;
}

Result<Job> MemoryMetaStore::failJob(std::int64_t id, std::string_view owner,
                                     std::string_view error,
                                     std::optional<std::chrono::milliseconds> retry_after) {
  if (error.empty()) return invalidArgument("a failed job needs an error message");
  std::lock_guard lock(state_->mu);
  auto it = state_->jobs.find(id);
  if (it == state_->jobs.end()) return notFound(jobNotFound(id));
  Job& j = it->second;
  if (j.state != JobState::kRunning || j.owner != owner) return notHeld(j, owner);
  const SystemTime t = now();
  const bool retry = retry_after.has_value() && j.attempts < j.max_attempts;
  j.state = retry ? JobState::kQueued : JobState::kFailed;
  j.error = std::string(error);
  j.updated_at = t;
  j.lease_expires_at.reset();
  if (retry) {
    j.owner.reset();
    j.run_after = t + *retry_after;
  }
  return j;
}

Result<std::vector<Job>> MemoryMetaStore::reclaimExpiredJobs() {
  std::lock_guard lock(state_->mu);
  const SystemTime t = now();
  std::vector<Job> failed;
  std::vector<Job> requeued;
  for (auto& [id, j] : state_->jobs) {
    if (j.state != JobState::kRunning || !j.lease_expires_at || *j.lease_expires_at > t) continue;
    const std::string owner = j.owner.value_or("");
    j.updated_at = t;
    j.lease_expires_at.reset();
    if (j.attempts >= j.max_attempts) {
      j.state = JobState::kFailed;
      j.error = "abandoned by worker " + owner + " (its lease expired) after " +
                std::to_string(j.attempts) + " of " + std::to_string(j.max_attempts) + " attempts";
      failed.push_back(j);
    } else {
      j.state = JobState::kQueued;
      j.owner.reset();
      j.error = "worker " + owner + " lost its lease; retrying";
      requeued.push_back(j);
    }
  }
  for (Job& j : requeued)
    failed.push_back(std::move(j));
  return failed;
}

Result<std::vector<Job>> MemoryMetaStore::listJobs(const JobFilter& filter) {
  std::lock_guard lock(state_->mu);
  std::vector<Job> out;
  for (const auto& [id, j] : state_->jobs) {
    if (static_cast<std::int64_t>(out.size()) >= filter.limit) break;
    if (!filter.states.empty() &&
        std::find(filter.states.begin(), filter.states.end(), j.state) == filter.states.end()) {
      continue;
    }
    if (filter.kind && j.kind != *filter.kind) continue;
    if (filter.snapshot_id && j.snapshot_id != filter.snapshot_id) continue;
    if (filter.owner && j.owner != filter.owner) continue;
    out.push_back(j);
  }
  return out;
}

Result<std::int64_t> MemoryMetaStore::countJobs(JobState state) {
  std::lock_guard lock(state_->mu);
  return static_cast<std::int64_t>(
      std::count_if(state_->jobs.begin(), state_->jobs.end(),
                    [&](const auto& kv) { return kv.second.state == state; }));
}

Result<std::int64_t> MemoryMetaStore::purgeFinishedJobs(SystemTime before) {
  std::lock_guard lock(state_->mu);
  const SystemTime cutoff = ms(before);
  return static_cast<std::int64_t>(std::erase_if(state_->jobs, [&](const auto& kv) {
    const Job& j = kv.second;
    return (j.state == JobState::kSucceeded || j.state == JobState::kFailed) &&
           j.updated_at < cutoff;
  }));
}

// ---- Quotas ---------------------------------------------------------------------------------

Result<QuotaReservation> MemoryMetaStore::reserveSnapshotQuota(std::string_view organization_id,
                                                               std::int64_t max_snapshots,
                                                               std::chrono::milliseconds ttl) {
  if (ttl.count() <= 0) return invalidArgument("quota reservation ttl must be positive");
  std::lock_guard lock(state_->mu);
  const SystemTime t = now();
  if (state_->quotaUsage(organization_id, t) >= max_snapshots) {
    return rules::quotaExceeded(max_snapshots);
  }
  if (state_->orgs.count(std::string(organization_id)) == 0) {
    return notFound("organization " + std::string(organization_id) + " not found");
  }
  QuotaReservation r;
  r.id = uuidV4();
  r.organization_id = std::string(organization_id);
  r.created_at = t;
  r.expires_at = t + ttl;
  state_->reservations[r.id] = r;
  return r;
}

Status MemoryMetaStore::releaseQuotaReservation(std::string_view reservation_id) {
  std::lock_guard lock(state_->mu);
  if (state_->reservations.erase(std::string(reservation_id)) == 0) {
    return notFound("quota reservation " + std::string(reservation_id) + " not found");
  }
  return okStatus();
}

Result<std::int64_t> MemoryMetaStore::countQuotaUsage(std::string_view organization_id) {
  std::lock_guard lock(state_->mu);
  return state_->quotaUsage(organization_id, now());
}

Result<std::int64_t> MemoryMetaStore::purgeExpiredReservations() {
  std::lock_guard lock(state_->mu);
  const SystemTime t = now();
  return static_cast<std::int64_t>(std::erase_if(
      state_->reservations, [&](const auto& kv) { return kv.second.expires_at <= t; }));
}

}  // namespace cairn::meta
