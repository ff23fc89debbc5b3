// The SQLite schema as an ordered list of migrations. Never edit a migration that has shipped:
// append a new one. Timestamps are integer milliseconds since the Unix epoch; lists are JSON
// arrays in TEXT columns.
#include "sqlite_schema.h"

namespace cairn::meta::sqlite {

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "organizations, api keys, snapshots, builds", R"sql(
CREATE TABLE organizations (
  id                TEXT PRIMARY KEY,
  name              TEXT NOT NULL UNIQUE,
  suspended         INTEGER NOT NULL DEFAULT 0,
  suspension_reason TEXT,
  default_region_id TEXT,
  limits            TEXT NOT NULL DEFAULT '{}',
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL
);

CREATE TABLE api_keys (
  id              TEXT PRIMARY KEY,
  organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  name            TEXT NOT NULL,
  key_hash        TEXT NOT NULL UNIQUE,
  key_prefix      TEXT NOT NULL DEFAULT '',
  permissions     TEXT NOT NULL DEFAULT '[]',
  created_at      INTEGER NOT NULL,
  expires_at      INTEGER,
  revoked_at      INTEGER,
  last_used_at    INTEGER,
  UNIQUE (organization_id, name)
);

CREATE TABLE snapshots (
  id                   TEXT PRIMARY KEY,
  organization_id      TEXT REFERENCES organizations(id),
  general              INTEGER NOT NULL DEFAULT 0,
  hidden               INTEGER NOT NULL DEFAULT 0,
  name                 TEXT NOT NULL,
  image_name           TEXT NOT NULL DEFAULT '',
  state                TEXT NOT NULL,
  size_bytes           INTEGER,
  entrypoint           TEXT,
  cpu                  REAL NOT NULL,
  gpu                  REAL NOT NULL,
  gpu_type             TEXT,
  mem                  REAL NOT NULL,
  disk                 REAL NOT NULL,
  error_reason         TEXT,
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL,
  last_used_at         INTEGER,
  build_dockerfile     TEXT,
  build_context_hashes TEXT,
  build_snapshot_ref   TEXT,
  build_created_at     INTEGER,
  build_updated_at     INTEGER,
  region_ids           TEXT NOT NULL DEFAULT '[]',
  initial_runner_id    TEXT,
  ref                  TEXT,
  sandbox_class        TEXT,
  source_sandbox_id    TEXT,
  state_entered_at     INTEGER NOT NULL,
  CHECK ((general = 1) = (organization_id IS NULL))
);
-- The name belongs to live snapshots only: a snapshot in `removing` frees it at once (§0.5).
-- General snapshots (no organization) share the '' namespace.
CREATE UNIQUE INDEX snapshots_live_name
  ON snapshots (COALESCE(organization_id, ''), name) WHERE state <> 'removing';
CREATE INDEX snapshots_by_org ON snapshots (organization_id, created_at);
CREATE INDEX snapshots_by_state ON snapshots (state, state_entered_at);
CREATE INDEX snapshots_by_ref ON snapshots (ref);

CREATE TABLE builds (
  build_ref    TEXT PRIMARY KEY,
  state        TEXT NOT NULL,
  image_digest TEXT,
  size_bytes   INTEGER,
  entrypoint   TEXT,
  error_reason TEXT,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
);
)sql"},
      {2, "job queue and quota reservations", R"sql(
CREATE TABLE jobs (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  kind             TEXT NOT NULL,
  payload          TEXT NOT NULL DEFAULT '',
  snapshot_id      TEXT,
  state            TEXT NOT NULL,
  attempts         INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL,
  owner            TEXT,
  lease_expires_at INTEGER,
  error            TEXT,
  run_after        INTEGER NOT NULL,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);
CREATE INDEX jobs_claimable ON jobs (state, run_after, id);
CREATE INDEX jobs_by_snapshot ON jobs (snapshot_id);

CREATE TABLE quota_reservations (
  id              TEXT PRIMARY KEY,
  organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  created_at      INTEGER NOT NULL,
  expires_at      INTEGER NOT NULL
);
CREATE INDEX quota_reservations_by_org ON quota_reservations (organization_id, expires_at);
)sql"},
  };
  return kMigrations;
}

}  // namespace cairn::meta::sqlite
