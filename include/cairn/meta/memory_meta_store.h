// MemoryMetaStore: the MetaStore test double — everything in maps under one mutex, nothing on
// disk. It passes the same conformance suite as SqliteMetaStore, so the service layer's tests
// can use it for speed and trust that it behaves like the real store (same errors, same
// messages, same ordering, timestamps truncated to milliseconds the same way).
//
// Handles made from the same State share one "database", which is how tests simulate a second
// process or a restart:
//
//   auto state = MemoryMetaStore::newState();
//   MemoryMetaStore a(clock, state), b(clock, state);  // two "processes"
#pragma once

#include <memory>

#include "cairn/common/time.h"
#include "cairn/meta/meta_store.h"

namespace cairn::meta {

class MemoryMetaStore final : public MetaStore {
 public:
  struct State;
  static std::shared_ptr<State> newState();

  //! A store with a fresh, empty State. `clock` must outlive the store.
  explicit MemoryMetaStore(const Clock& clock);
  MemoryMetaStore(const Clock& clock, std::shared_ptr<State> state);
  ~MemoryMetaStore() override;

  using MetaStore::createSnapshot;

  Result<Organization> createOrganization(const Organization& org) override;
  Result<Organization> getOrganization(std::string_view id) override;
  Result<Organization> getOrganizationByName(std::string_view name) override;
  Result<std::vector<Organization>> listOrganizations() override;
  Result<Organization> updateOrganization(const Organization& org) override;

  Result<ApiKey> createApiKey(const ApiKey& key) override;
  Result<ApiKey> getApiKeyByHash(std::string_view key_hash) override;
  Result<std::vector<ApiKey>> listApiKeys(std::string_view organization_id) override;
  Result<ApiKey> revokeApiKey(std::string_view organization_id, std::string_view key_id) override;
  Status touchApiKey(std::string_view key_id, SystemTime used_at) override;

  Result<Snapshot> createSnapshot(const Snapshot& snapshot,
                                  std::string_view reservation_id) override;
  Result<Snapshot> getSnapshot(std::string_view id) override;
  Result<Snapshot> findSnapshotByName(std::string_view organization_id,
                                      std::string_view name) override;
  Result<Snapshot> findGeneralSnapshotByName(std::string_view name) override;
  Result<SnapshotPage> listSnapshots(std::string_view organization_id,
                                     const SnapshotListQuery& query) override;
  Result<std::vector<Snapshot>> findSnapshots(const SnapshotFilter& filter) override;
  Result<Snapshot> updateSnapshotState(std::string_view id, SnapshotState expected,
                                       SnapshotState next, const SnapshotUpdate& update) override;
  Result<Snapshot> markSnapshotRemoving(std::string_view id) override;
  Status touchSnapshot(std::string_view id, SystemTime used_at) override;
  Status deleteSnapshot(std::string_view id) override;

  Result<BuildClaim> getOrCreateBuild(std::string_view build_ref) override;
  Result<Build> getBuild(std::string_view build_ref) override;
  Result<Build> updateBuildState(std::string_view build_ref, BuildState expected, BuildState next,
                                 const BuildUpdate& update) override;
  Status deleteBuild(std::string_view build_ref) override;
  Result<std::vector<Build>> listBuilds() override;

  Result<Job> enqueueJob(const JobSpec& spec) override;
  Result<Job> getJob(std::int64_t id) override;
  Result<std::optional<Job>> claimJob(std::string_view owner, const std::vector<std::string>& kinds,
                                      std::chrono::milliseconds lease) override;
  Result<Job> heartbeatJob(std::int64_t id, std::string_view owner,
                           std::chrono::milliseconds lease) override;
  Result<Job> completeJob(std::int64_t id, std::string_view owner) override;
  Result<Job> failJob(std::int64_t id, std::string_view owner, std::string_view error,
                      std::optional<std::chrono::milliseconds> retry_after) override;
  Result<std::vector<Job>> reclaimExpiredJobs() override;
  Result<std::vector<Job>> listJobs(const JobFilter& filter) override;
  Result<std::int64_t> countJobs(JobState state) override;
  Result<std::int64_t> purgeFinishedJobs(SystemTime before) override;

  Result<QuotaReservation> reserveSnapshotQuota(std::string_view organization_id,
                                                std::int64_t max_snapshots,
                                                std::chrono::milliseconds ttl) override;
  Status releaseQuotaReservation(std::string_view reservation_id) override;
  Result<std::int64_t> countQuotaUsage(std::string_view organization_id) override;
  Result<std::int64_t> purgeExpiredReservations() override;

 private:
  SystemTime now() const;
  const Clock& clock_;
  std::shared_ptr<State> state_;
};

}  // namespace cairn::meta
