// SqliteMetaStore: the embedded MetaStore (`<data>/meta.db`), SQLite in WAL mode.
//
// Threads: a small pool of connections. Any thread may call any method. Reads take a pooled
// connection of their own, so they run in parallel under WAL and never wait for a writer;
// writes are serialized by one in-process mutex and run in `BEGIN IMMEDIATE` transactions
// (with busy_timeout for other processes on the same file). Serializing writes in-process
// costs nothing — SQLite admits one writer at a time anyway — and spares threads from spinning
// in the busy handler against each other.
//
// Schema: versioned migrations in a `schema_version` table, applied in order, each in its own
// transaction, when the store opens. A database newer than this build is refused.
#pragma once

#include <filesystem>
#include <memory>

#include "cairn/common/status.h"
#include "cairn/common/time.h"
#include "cairn/meta/meta_store.h"

namespace cairn::meta {

struct SqliteOptions {
  std::chrono::milliseconds busy_timeout{5000};
  //! Migrate only up to this version (0 = latest). For migration tests.
  int target_schema_version = 0;
};

//! The newest schema version this build knows.
int sqliteLatestSchemaVersion();

class SqliteMetaStore final : public MetaStore {
 public:
  //! Opens (creating if needed) the database at `path` and migrates it. `clock` must outlive
  //! the store.
  static Result<std::unique_ptr<SqliteMetaStore>> open(const std::filesystem::path& path,
                                                       const Clock& clock,
                                                       const SqliteOptions& options = {});
  ~SqliteMetaStore() override;
  SqliteMetaStore(const SqliteMetaStore&) = delete;
  SqliteMetaStore& operator=(const SqliteMetaStore&) = delete;

  //! The schema version of the open database.
  Result<int> schemaVersion();

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

  struct Impl;

 private:
  explicit SqliteMetaStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::meta
