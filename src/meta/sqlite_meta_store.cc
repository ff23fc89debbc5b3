// SqliteMetaStore. Notes for the PostgreSQL port, which must pass the same conformance suite:
// the SQL here is close to portable — RETURNING, ON CONFLICT, partial and expression indexes,
// COALESCE and || all exist there. SQLite-only: json_each() for "IN (list)" (PostgreSQL: = ANY
// ($1::text[])), instr() (strpos()), integer-millisecond timestamps (timestamptz is fine if the
// mapping keeps millisecond precision), and the claim subquery, which relies on SQLite's single
// writer; PostgreSQL needs FOR UPDATE SKIP LOCKED there.
#include "cairn/meta/sqlite_meta_store.h"

#include <sqlite3.h>

#include <concepts>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "cairn/common/json.h"
#include "cairn/common/uuid.h"
#include "sqlite_schema.h"
#include "store_rules.h"

namespace cairn::meta {
namespace {

using std::chrono::milliseconds;

std::int64_t toMs(SystemTime t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}
SystemTime fromMs(std::int64_t ms) {
  return SystemTime(std::chrono::duration_cast<SystemTime::duration>(milliseconds(ms)));
}

const Status& statusOf(const Status& s) {
  return s;
}
template <typename T>
const Status& statusOf(const Result<T>& r) {
  return r.status();
}

//! An SQLite failure as a Status. Constraint violations get codes the callers can act on;
//! callers replace the message where the user should see their own wording.
Status sqliteStatus(sqlite3* db, int rc, std::string_view what) {
  const int extended = db != nullptr ? sqlite3_extended_errcode(db) : rc;
  std::string message = "sqlite: " + std::string(what) + ": " +
                        (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (extended) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return alreadyExists(std::move(message));
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return notFound(std::move(message));
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return unavailable(std::move(message));
    case SQLITE_FULL:
      return resourceExhausted(std::move(message));
    case SQLITE_CONSTRAINT:
      return failedPrecondition(std::move(message));
    default:
      return internalError(std::move(message));
  }
}

std::string toJsonArray(const std::vector<std::string>& items) {
  return Json(items).dump();
}

Result<std::vector<std::string>> fromJsonArray(std::string_view text, std::string_view column) {
  Result<Json> j = parseJson(text);
  if (!j.ok() || !j->is_array()) {
    return internalError("corrupt column " + std::string(column) + ": not a JSON array");
  }
  std::vector<std::string> out;
  for (const Json& item : *j) {
    if (!item.is_string()) {
      return internalError("corrupt column " + std::string(column) + ": non-string element");
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

//! A cached prepared statement borrowed for one use; reset and unbound when it goes away.
class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Stmt(Stmt&& o) noexcept : db_(o.db_), stmt_(std::exchange(o.stmt_, nullptr)) {}
  Stmt& operator=(Stmt&&) = delete;
  Stmt(const Stmt&) = delete;
  ~Stmt() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  Stmt& text(int i, std::string_view v) {
    check(sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
    return *this;
  }
  Stmt& integer(int i, std::int64_t v) {
    check(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  Stmt& real(int i, double v) {
    check(sqlite3_bind_double(stmt_, i, v));
    return *this;
  }
  Stmt& boolean(int i, bool v) { return integer(i, v ? 1 : 0); }
  Stmt& time(int i, SystemTime t) { return integer(i, toMs(t)); }
  Stmt& null(int i) {
    check(sqlite3_bind_null(stmt_, i));
    return *this;
  }
  // A template so that plain strings never convert to it (that would be ambiguous).
  template <typename T>
  requires std::same_as<T, std::optional<std::string>> Stmt& text(int i, const T& v) {
    return v ? text(i, std::string_view(*v)) : null(i);
  }
  Stmt& integer(int i, const std::optional<std::int64_t>& v) {
    return v ? integer(i, *v) : null(i);
  }
  Stmt& time(int i, const std::optional<SystemTime>& t) { return t ? time(i, *t) : null(i); }
  Stmt& json(int i, const std::optional<std::vector<std::string>>& v) {
    return v ? text(i, toJsonArray(*v)) : null(i);
  }

  //! true: a row is available; false: done.
  Result<bool> step() {
    if (bind_rc_ != SQLITE_OK) return sqliteStatus(db_, bind_rc_, sqlOf());
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return sqliteStatus(db_, rc, sqlOf());
  }
  //! Runs to completion; returns the number of rows changed.
  Result<std::int64_t> run() {
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, step());
      if (!row) break;
    }
    return sqlite3_changes64(db_);
  }

  bool isNull(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
  std::int64_t i64(int c) const { return sqlite3_column_int64(stmt_, c); }
  double f64(int c) const { return sqlite3_column_double(stmt_, c); }
  std::string str(int c) const {
    const auto* p = sqlite3_column_text(stmt_, c);
    const int n = sqlite3_column_bytes(stmt_, c);
    return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), n);
  }
  SystemTime timeAt(int c) const { return fromMs(i64(c)); }
  std::optional<std::string> optStr(int c) const {
    if (isNull(c)) return std::nullopt;
    return str(c);
  }
  std::optional<std::int64_t> optI64(int c) const {
    if (isNull(c)) return std::nullopt;
    return i64(c);
  }
  std::optional<SystemTime> optTime(int c) const {
    if (isNull(c)) return std::nullopt;
    return timeAt(c);
  }
  Result<std::optional<std::vector<std::string>>> optJson(int c, std::string_view column) const {
    if (isNull(c)) return std::optional<std::vector<std::string>>();
    CAIRN_ASSIGN_OR_RETURN(auto v, fromJsonArray(str(c), column));
    return std::optional<std::vector<std::string>>(std::move(v));
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }
  std::string sqlOf() const {
    std::string sql = sqlite3_sql(stmt_);
    for (char& ch : sql) {
      if (ch == '\n') ch = ' ';
    }
    return sql.size() > 80 ? sql.substr(0, 80) + "…" : sql;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

//! One SQLite connection and its prepared-statement cache. Used by one thread at a time.
class Connection {
 public:
  static Result<std::unique_ptr<Connection>> open(const std::filesystem::path& path,
                                                  const SqliteOptions& options) {
    sqlite3* db = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    auto conn = std::unique_ptr<Connection>(new Connection(db));
    if (rc != SQLITE_OK) {
      return sqliteStatus(db, rc, "open " + path.string());
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, static_cast<int>(options.busy_timeout.count()));
    // WAL: readers never block the writer nor each other. synchronous=FULL: a commit that
    // returned survives power loss (a create answered with 200 must not vanish).
    CAIRN_RETURN_IF_ERROR(conn->exec("PRAGMA journal_mode=WAL"));
    CAIRN_RETURN_IF_ERROR(conn->exec("PRAGMA synchronous=FULL"));
    CAIRN_RETURN_IF_ERROR(conn->exec("PRAGMA foreign_keys=ON"));
    return conn;
  }

  ~Connection() {
    for (auto& [sql, stmt] : cache_)
      sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  Status exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string what = std::string("exec ") + std::string(sql).substr(0, 40);
      Status s = sqliteStatus(db_, rc, what);
      sqlite3_free(err);
      return s;
    }
    return okStatus();
  }

  Result<Stmt> prepare(const std::string& sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* stmt = nullptr;
      int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                  SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) return sqliteStatus(db_, rc, "prepare " + sql.substr(0, 60));
      it = cache_.emplace(sql, stmt).first;
    }
    return Stmt(db_, it->second);
  }

  sqlite3* db() const { return db_; }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// Column lists, kept next to the readers that index into them.
constexpr const char* kOrgColumns =
    "id, name, suspended, suspension_reason, default_region_id, limits, created_at, updated_at";
constexpr const char* kKeyColumns =
    "id, organization_id, name, key_hash, key_prefix, permissions, created_at, expires_at, "
    "revoked_at, last_used_at";
constexpr const char* kSnapshotColumns =
    "id, organization_id, general, hidden, name, image_name, state, size_bytes, entrypoint, cpu, "
    "gpu, gpu_type, mem, disk, error_reason, created_at, updated_at, last_used_at, "
    "build_dockerfile, build_context_hashes, build_snapshot_ref, build_created_at, "
    "build_updated_at, region_ids, initial_runner_id, ref, sandbox_class, source_sandbox_id, "
    "state_entered_at";
constexpr const char* kBuildColumns =
    "build_ref, state, image_digest, size_bytes, entrypoint, error_reason, created_at, updated_at";
constexpr const char* kJobColumns =
    "id, kind, payload, snapshot_id, state, attempts, max_attempts, owner, lease_expires_at, "
    "error, run_after, created_at, updated_at";

std::string sql(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts)
    out += p;
  return out;
}

Json limitsToJson(const OrganizationLimits& l) {
  Json j = Json::object();
  if (l.max_snapshots) j["maxSnapshots"] = *l.max_snapshots;
  if (l.max_cpu_per_sandbox) j["maxCpuPerSandbox"] = *l.max_cpu_per_sandbox;
  if (l.max_memory_gb_per_sandbox) j["maxMemoryGbPerSandbox"] = *l.max_memory_gb_per_sandbox;
  if (l.max_disk_gb_per_sandbox) j["maxDiskGbPerSandbox"] = *l.max_disk_gb_per_sandbox;
  if (l.max_image_size_gb) j["maxImageSizeGb"] = *l.max_image_size_gb;
  if (l.deactivation_timeout_minutes) {
    j["deactivationTimeoutMinutes"] = *l.deactivation_timeout_minutes;
  }
  return j;
}

Result<OrganizationLimits> limitsFromJson(std::string_view text) {
  Result<Json> parsed = parseJson(text);
  if (!parsed.ok() || !parsed->is_object()) {
    return internalError("corrupt column organizations.limits: not a JSON object");
  }
  const Json& j = *parsed;
  OrganizationLimits l;
  auto getInt = [&](const char* k, std::optional<std::int64_t>& out) {
    if (j.contains(k) && j[k].is_number()) out = j[k].get<std::int64_t>();
  };
  auto getReal = [&](const char* k, std::optional<double>& out) {
    if (j.contains(k) && j[k].is_number()) out = j[k].get<double>();
  };
  getInt("maxSnapshots", l.max_snapshots);
  getReal("maxCpuPerSandbox", l.max_cpu_per_sandbox);
  getReal("maxMemoryGbPerSandbox", l.max_memory_gb_per_sandbox);
  getReal("maxDiskGbPerSandbox", l.max_disk_gb_per_sandbox);
  getReal("maxImageSizeGb", l.max_image_size_gb);
  getInt("deactivationTimeoutMinutes", l.deactivation_timeout_minutes);
  return l;
}

Result<Organization> readOrg(const Stmt& s) {
  Organization o;
  o.id = s.str(0);
  o.name = s.str(1);
  o.suspended = s.i64(2) != 0;
  o.suspension_reason = s.optStr(3);
  o.default_region_id = s.optStr(4);
  CAIRN_ASSIGN_OR_RETURN(o.limits, limitsFromJson(s.str(5)));
  o.created_at = s.timeAt(6);
  o.updated_at = s.timeAt(7);
  return o;
}

Result<ApiKey> readKey(const Stmt& s) {
  ApiKey k;
  k.id = s.str(0);
  k.organization_id = s.str(1);
  k.name = s.str(2);
  k.key_hash = s.str(3);
  k.key_prefix = s.str(4);
  CAIRN_ASSIGN_OR_RETURN(k.permissions, fromJsonArray(s.str(5), "api_keys.permissions"));
  k.created_at = s.timeAt(6);
  k.expires_at = s.optTime(7);
  k.revoked_at = s.optTime(8);
  k.last_used_at = s.optTime(9);
  return k;
}

Result<Snapshot> readSnapshot(const Stmt& s) {
  Snapshot r;
  r.id = s.str(0);
  r.organization_id = s.optStr(1);
  r.general = s.i64(2) != 0;
  r.hidden = s.i64(3) != 0;
  r.name = s.str(4);
  r.image_name = s.str(5);
  CAIRN_ASSIGN_OR_RETURN(r.state, parseSnapshotState(s.str(6)));
  r.size_bytes = s.optI64(7);
  CAIRN_ASSIGN_OR_RETURN(r.entrypoint, s.optJson(8, "snapshots.entrypoint"));
  r.cpu = s.f64(9);
  r.gpu = s.f64(10);
  r.gpu_type = s.optStr(11);
  r.mem = s.f64(12);
  r.disk = s.f64(13);
  r.error_reason = s.optStr(14);
  r.created_at = s.timeAt(15);
  r.updated_at = s.timeAt(16);
  r.last_used_at = s.optTime(17);
  if (!s.isNull(18)) {
    BuildInfo b;
    b.dockerfile_content = s.str(18);
    CAIRN_ASSIGN_OR_RETURN(auto hashes, s.optJson(19, "snapshots.build_context_hashes"));
    b.context_hashes = hashes.value_or(std::vector<std::string>{});
    b.snapshot_ref = s.str(20);
    b.created_at = s.optTime(21).value_or(r.created_at);
    b.updated_at = s.optTime(22).value_or(r.updated_at);
    r.build_info = std::move(b);
  }
  CAIRN_ASSIGN_OR_RETURN(r.region_ids, fromJsonArray(s.str(23), "snapshots.region_ids"));
  r.initial_runner_id = s.optStr(24);
  r.ref = s.optStr(25);
  r.sandbox_class = s.optStr(26);
  r.source_sandbox_id = s.optStr(27);
  r.state_entered_at = s.timeAt(28);
  return r;
}

Result<Build> readBuild(const Stmt& s) {
  Build b;
  b.build_ref = s.str(0);
  CAIRN_ASSIGN_OR_RETURN(b.state, parseBuildState(s.str(1)));
  b.image_digest = s.optStr(2);
  b.size_bytes = s.optI64(3);
  CAIRN_ASSIGN_OR_RETURN(b.entrypoint, s.optJson(4, "builds.entrypoint"));
  b.error_reason = s.optStr(5);
  b.created_at = s.timeAt(6);
  b.updated_at = s.timeAt(7);
  return b;
}

Result<Job> readJob(const Stmt& s) {
  Job j;
  j.id = s.i64(0);
  j.kind = s.str(1);
  j.payload = s.str(2);
  j.snapshot_id = s.optStr(3);
  CAIRN_ASSIGN_OR_RETURN(j.state, parseJobState(s.str(4)));
  j.attempts = static_cast<std::int32_t>(s.i64(5));
  j.max_attempts = static_cast<std::int32_t>(s.i64(6));
  j.owner = s.optStr(7);
  j.lease_expires_at = s.optTime(8);
  j.error = s.optStr(9);
  j.run_after = s.timeAt(10);
  j.created_at = s.timeAt(11);
  j.updated_at = s.timeAt(12);
  return j;
}

//! Runs `s` and reads one row with `reader`, or NotFound(`not_found`).
template <typename Reader>
auto readOne(Stmt& s, Reader reader, const std::string& not_found)
    -> decltype(reader(std::declval<const Stmt&>())) {
  CAIRN_ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) return notFound(not_found);
  return reader(s);
}

template <typename T, typename Reader>
Result<std::vector<T>> readAll(Stmt& s, Reader reader) {
  std::vector<T> out;
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    CAIRN_ASSIGN_OR_RETURN(T item, reader(s));
    out.push_back(std::move(item));
  }
  return out;
}

std::string statesJson(const std::vector<SnapshotState>& states) {
  Json j = Json::array();
  for (SnapshotState st : states)
    j.push_back(std::string(snapshotStateName(st)));
  return j.dump();
}

using rules::checkErrorReason;
using rules::nameTaken;
using rules::snapshotNotFound;

}  // namespace

int sqliteLatestSchemaVersion() {
  return sqlite::migrations().back().version;
}

struct SqliteMetaStore::Impl {
  std::filesystem::path path;
  const Clock* clock;
  SqliteOptions options;

  std::mutex pool_mutex;
  std::vector<std::unique_ptr<Connection>> idle;
  //! Serializes writers within this process (see the header for why).
  std::mutex write_mutex;

  //! A pooled connection, returned to the pool when it goes away.
  class Lease {
   public:
    Lease(Impl* impl, std::unique_ptr<Connection> conn) : impl_(impl), conn_(std::move(conn)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      // A connection left inside a transaction (a failed ROLLBACK) would hold its lock and
      // poison the next user: close it instead of pooling it.
      if (conn_ && sqlite3_get_autocommit(conn_->db()) != 0) {
        std::lock_guard lock(impl_->pool_mutex);
        // A handful of idle connections covers the API's threads; more would only hold fds.
        if (impl_->idle.size() < 16) impl_->idle.push_back(std::move(conn_));
      }
    }
    Connection* operator->() { return conn_.get(); }
    Connection& operator*() { return *conn_; }

   private:
    Impl* impl_;
    std::unique_ptr<Connection> conn_;
  };

  Result<Lease> acquire() {
    {
      std::lock_guard lock(pool_mutex);
      if (!idle.empty()) {
        auto conn = std::move(idle.back());
        idle.pop_back();
        return Lease(this, std::move(conn));
      }
    }
    CAIRN_ASSIGN_OR_RETURN(auto conn, Connection::open(path, options));
    return Lease(this, std::move(conn));
  }

  SystemTime now() const {
    // Whole milliseconds, as stored, so that what a call returns equals what a read returns.
    return fromMs(toMs(clock->now()));
  }

  template <typename F>
  auto inTransaction(Connection& conn, const char* begin, F&& f)
      -> std::invoke_result_t<F&, Connection&> {
    CAIRN_RETURN_IF_ERROR(conn.exec(begin));
    auto result = f(conn);
    if (statusOf(result).ok()) {
      Status committed = conn.exec("COMMIT");
      if (!committed.ok()) {
        (void)conn.exec("ROLLBACK");
        return committed;
      }
    } else {
      (void)conn.exec("ROLLBACK");
    }
    return result;
  }

  //! `f(Connection&)` inside BEGIN IMMEDIATE … COMMIT, rolled back when it returns an error.
  template <typename F>
  auto write(F&& f) -> std::invoke_result_t<F&, Connection&> {
    std::lock_guard lock(write_mutex);
    CAIRN_ASSIGN_OR_RETURN(Lease conn, acquire());
    return inTransaction(*conn, "BEGIN IMMEDIATE", f);
  }

  //! `f(Connection&)` inside a read transaction (one consistent snapshot of the database).
  template <typename F>
  auto read(F&& f) -> std::invoke_result_t<F&, Connection&> {
    CAIRN_ASSIGN_OR_RETURN(Lease conn, acquire());
    return inTransaction(*conn, "BEGIN", f);
  }

  Status migrate() {
    CAIRN_ASSIGN_OR_RETURN(Lease conn, acquire());
    CAIRN_RETURN_IF_ERROR(
        conn->exec("CREATE TABLE IF NOT EXISTS schema_version ("
                   "id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"));
    const int latest = sqliteLatestSchemaVersion();
    const int target = options.target_schema_version > 0 ? options.target_schema_version : latest;
    if (target > latest) {
      return invalidArgument("schema version " + std::to_string(target) +
                             " requested, but this build knows only up to " +
                             std::to_string(latest));
    }
    int expected_version = 1;
    for (const sqlite::Migration& m : sqlite::migrations()) {
      if (m.version != expected_version++) {
        // A gap or a reordering would silently skip schema changes on some databases.
        return internalError("SQLite migrations are out of order at version " +
                             std::to_string(m.version));
      }
      if (m.version > target) break;
      Status s = inTransaction(*conn, "BEGIN IMMEDIATE", [&](Connection& c) -> Status {
        // Re-read inside the write lock: another process may have migrated meanwhile.
        CAIRN_ASSIGN_OR_RETURN(int current, versionOf(c));
        if (current > latest) {
          return failedPrecondition(
              path.string() + ": database schema version " + std::to_string(current) +
              " is newer than this cairn supports (" + std::to_string(latest) + ")");
        }
        if (current >= m.version) return okStatus();
        CAIRN_RETURN_IF_ERROR(c.exec(std::string(m.sql).c_str()));
        CAIRN_ASSIGN_OR_RETURN(
            Stmt up, c.prepare("INSERT INTO schema_version (id, version) VALUES (1, ?1) "
                               "ON CONFLICT (id) DO UPDATE SET version = excluded.version"));
        up.integer(1, m.version);
        CAIRN_ASSIGN_OR_RETURN(auto changed, up.run());
        (void)changed;
        return okStatus();
      });
      if (!s.ok()) {
        return std::move(s).withContext("migration " + std::to_string(m.version) + " (" +
                                        std::string(m.description) + ") of " + path.string());
      }
    }
    // A database touched by a newer build must be refused even when no migration ran.
    CAIRN_ASSIGN_OR_RETURN(int current, versionOf(*conn));
    if (current > latest) {
      return failedPrecondition(path.string() + ": database schema version " +
                                std::to_string(current) + " is newer than this cairn supports (" +
                                std::to_string(latest) + ")");
    }
    return okStatus();
  }

  static Result<int> versionOf(Connection& c) {
    CAIRN_ASSIGN_OR_RETURN(Stmt s, c.prepare("SELECT version FROM schema_version WHERE id = 1"));
    CAIRN_ASSIGN_OR_RETURN(bool row, s.step());
    return row ? static_cast<int>(s.i64(0)) : 0;
  }

  // Helpers used inside transactions.
  Result<Snapshot> snapshotById(Connection& c, std::string_view id) {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"SELECT ", kSnapshotColumns, " FROM snapshots WHERE id = ?1"})));
    s.text(1, id);
    return readOne(s, readSnapshot, snapshotNotFound(id));
  }

  Result<Job> jobById(Connection& c, std::int64_t id) {
    CAIRN_ASSIGN_OR_RETURN(Stmt s,
                           c.prepare(sql({"SELECT ", kJobColumns, " FROM jobs WHERE id = ?1"})));
    s.integer(1, id);
    return readOne(s, readJob, "job " + std::to_string(id) + " not found");
  }

  //! Why `owner` cannot act on job `id`: NotFound, or FailedPrecondition naming the holder.
  Status notHeld(Connection& c, std::int64_t id, std::string_view owner) {
    CAIRN_ASSIGN_OR_RETURN(Job j, jobById(c, id));
    return failedPrecondition("job " + std::to_string(id) + " is not held by " +
                              std::string(owner) + " (state " + std::string(jobStateName(j.state)) +
                              ", owner " + j.owner.value_or("none") + ")");
  }

  Result<std::int64_t> quotaUsage(Connection& c, std::string_view org) {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare("SELECT (SELECT COUNT(*) FROM snapshots WHERE organization_id = ?1 "
                          "AND state IN ('pending', 'building', 'pulling', 'active')) + "
                          "(SELECT COUNT(*) FROM quota_reservations WHERE organization_id = ?1 "
                          "AND expires_at > ?2)"));
    s.text(1, org).time(2, now());
    CAIRN_ASSIGN_OR_RETURN(bool row, s.step());
    return row ? s.i64(0) : 0;
  }
};

SqliteMetaStore::SqliteMetaStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteMetaStore::~SqliteMetaStore() = default;

Result<std::unique_ptr<SqliteMetaStore>> SqliteMetaStore::open(const std::filesystem::path& path,
                                                               const Clock& clock,
                                                               const SqliteOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->clock = &clock;
  impl->options = options;
  Status s = impl->migrate();
  if (!s.ok()) return s;
  return std::unique_ptr<SqliteMetaStore>(new SqliteMetaStore(std::move(impl)));
}

Result<int> SqliteMetaStore::schemaVersion() {
  return impl_->read([&](Connection& c) { return Impl::versionOf(c); });
}

// ---- Organizations --------------------------------------------------------------------------

Result<Organization> SqliteMetaStore::createOrganization(const Organization& org) {
  if (org.name.empty()) return invalidArgument("organization name must not be empty");
  return impl_->write([&](Connection& c) -> Result<Organization> {
    Organization o = org;
    if (o.id.empty()) o.id = uuidV4();
    o.created_at = o.updated_at = impl_->now();
    CAIRN_ASSIGN_OR_RETURN(Stmt s, c.prepare(sql({"INSERT INTO organizations (", kOrgColumns,
                                                  ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"})));
    s.text(1, o.id)
        .text(2, o.name)
        .boolean(3, o.suspended)
        .text(4, o.suspension_reason)
        .text(5, o.default_region_id)
        .text(6, limitsToJson(o.limits).dump())
        .time(7, o.created_at)
        .time(8, o.updated_at);
    Result<std::int64_t> r = s.run();
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kAlreadyExists) {
        return alreadyExists("organization \"" + o.name + "\" already exists");
      }
      return r.status();
    }
    return o;
  });
}

Result<Organization> SqliteMetaStore::getOrganization(std::string_view id) {
  return impl_->read([&](Connection& c) -> Result<Organization> {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"SELECT ", kOrgColumns, " FROM organizations WHERE id = ?1"})));
    s.text(1, id);
    return readOne(s, readOrg, "organization " + std::string(id) + " not found");
  });
}

Result<Organization> SqliteMetaStore::getOrganizationByName(std::string_view name) {
  return impl_->read([&](Connection& c) -> Result<Organization> {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"SELECT ", kOrgColumns, " FROM organizations WHERE name = ?1"})));
    s.text(1, name);
    return readOne(s, readOrg, "organization \"" + std::string(name) + "\" not found");
  });
}

Result<std::vector<Organization>> SqliteMetaStore::listOrganizations() {
  return impl_->read([&](Connection& c) -> Result<std::vector<Organization>> {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"SELECT ", kOrgColumns, " FROM organizations ORDER BY name"})));
    return readAll<Organization>(s, readOrg);
  });
}

Result<Organization> SqliteMetaStore::updateOrganization(const Organization& org) {
  if (org.name.empty()) return invalidArgument("organization name must not be empty");
  return impl_->write([&](Connection& c) -> Result<Organization> {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"UPDATE organizations SET name = ?2, suspended = ?3, "
                               "suspension_reason = ?4, default_region_id = ?5, limits = ?6, "
                               "updated_at = ?7 WHERE id = ?1 RETURNING ",
                               kOrgColumns})));
    s.text(1, org.id)
        .text(2, org.name)
        .boolean(3, org.suspended)
        .text(4, org.suspension_reason)
        .text(5, org.default_region_id)
        .text(6, limitsToJson(org.limits).dump())
        .time(7, impl_->now());
    Result<Organization> r = readOne(s, readOrg, "organization " + org.id + " not found");
    if (!r.ok() && r.status().code() == StatusCode::kAlreadyExists) {
      return alreadyExists("organization \"" + org.name + "\" already exists");
    }
    return r;
  });
}

// ---- API keys -------------------------------------------------------------------------------

Result<ApiKey> SqliteMetaStore::createApiKey(const ApiKey& key) {
  if (key.name.empty()) return invalidArgument("API key name must not be empty");
  if (key.key_hash.empty()) return invalidArgument("API key hash must not be empty");
  return impl_->write([&](Connection& c) -> Result<ApiKey> {
    ApiKey k = key;
    if (k.id.empty()) k.id = uuidV4();
    k.created_at = impl_->now();
    CAIRN_ASSIGN_OR_RETURN(Stmt s,
                           c.prepare(sql({"INSERT INTO api_keys (", kKeyColumns,
                                          ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"})));
    s.text(1, k.id)
        .text(2, k.organization_id)
        .text(3, k.name)
        .text(4, k.key_hash)
        .text(5, k.key_prefix)
        .text(6, toJsonArray(k.permissions))
        .time(7, k.created_at)
        .time(8, k.expires_at)
        .time(9, k.revoked_at)
        .time(10, k.last_used_at);
    Result<std::int64_t> r = s.run();
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kAlreadyExists) {
        return alreadyExists("API key \"" + k.name + "\" already exists in organization " +
                             k.organization_id);
      }
      if (r.status().code() == StatusCode::kNotFound) {
        return notFound("organization " + k.organization_id + " not found");
      }
      return r.status();
    }
    return k;
  });
}

Result<ApiKey> SqliteMetaStore::getApiKeyByHash(std::string_view key_hash) {
  return impl_->read([&](Connection& c) -> Result<ApiKey> {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"SELECT ", kKeyColumns, " FROM api_keys WHERE key_hash = ?1"})));
    s.text(1, key_hash);
    // Never echo the hash: it is as good as a key for this lookup.
    return readOne(s, readKey, "API key not found");
  });
}

Result<std::vector<ApiKey>> SqliteMetaStore::listApiKeys(std::string_view organization_id) {
  return impl_->read([&](Connection& c) -> Result<std::vector<ApiKey>> {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s,
        c.prepare(sql({"SELECT ", kKeyColumns,
                       " FROM api_keys WHERE organization_id = ?1 ORDER BY created_at, name"})));
    s.text(1, organization_id);
    return readAll<ApiKey>(s, readKey);
  });
}

Result<ApiKey> SqliteMetaStore::revokeApiKey(std::string_view organization_id,
                                             std::string_view key_id) {
  return impl_->write([&](Connection& c) -> Result<ApiKey> {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3) "
                               "WHERE id = ?1 AND organization_id = ?2 RETURNING ",
                               kKeyColumns})));
    s.text(1, key_id).text(2, organization_id).time(3, impl_->now());
    return readOne(s, readKey, "API key " + std::string(key_id) + " not found");
  });
}

Status SqliteMetaStore::touchApiKey(std::string_view key_id, SystemTime used_at) {
  return impl_->write([&](Connection& c) -> Status {
    CAIRN_ASSIGN_OR_RETURN(Stmt s,
                           c.prepare("UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1"));
    s.text(1, key_id).time(2, used_at);
    CAIRN_ASSIGN_OR_RETURN(std::int64_t n, s.run());
    if (n == 0) return notFound("API key " + std::string(key_id) + " not found");
    return okStatus();
  });
}

// ---- Snapshots ------------------------------------------------------------------------------

Result<Snapshot> SqliteMetaStore::createSnapshot(const Snapshot& snapshot,
                                                 std::string_view reservation_id) {
  CAIRN_RETURN_IF_ERROR(rules::checkNewSnapshot(snapshot));
  return impl_->write([&](Connection& c) -> Result<Snapshot> {
    Snapshot r = snapshot;
    if (r.id.empty()) r.id = uuidV4();
    const SystemTime now = impl_->now();
    r.created_at = r.updated_at = r.state_entered_at = now;
    if (r.build_info) {
      // Keep what the caller set (a copied build info), default to now.
      if (r.build_info->created_at == SystemTime{}) r.build_info->created_at = now;
      if (r.build_info->updated_at == SystemTime{}) r.build_info->updated_at = now;
      r.build_info->created_at = fromMs(toMs(r.build_info->created_at));
      r.build_info->updated_at = fromMs(toMs(r.build_info->updated_at));
    }
    if (r.last_used_at) r.last_used_at = fromMs(toMs(*r.last_used_at));

    if (!reservation_id.empty()) {
      CAIRN_ASSIGN_OR_RETURN(
          Stmt del, c.prepare("DELETE FROM quota_reservations WHERE id = ?1 AND expires_at > ?2"));
      del.text(1, reservation_id).time(2, now);
      CAIRN_ASSIGN_OR_RETURN(std::int64_t n, del.run());
      if (n == 0) {
        return notFound("quota reservation " + std::string(reservation_id) +
                        " not found or expired");
      }
    }

    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"INSERT INTO snapshots (", kSnapshotColumns,
                               ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
                               "?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, "
                               "?27, ?28, ?29)"})));
    s.text(1, r.id)
        .text(2, r.organization_id)
        .boolean(3, r.general)
        .boolean(4, r.hidden)
        .text(5, r.name)
        .text(6, r.image_name)
        .text(7, snapshotStateName(r.state))
        .integer(8, r.size_bytes)
        .json(9, r.entrypoint)
        .real(10, r.cpu)
        .real(11, r.gpu)
        .text(12, r.gpu_type)
        .real(13, r.mem)
        .real(14, r.disk)
        .text(15, r.error_reason)
        .time(16, r.created_at)
        .time(17, r.updated_at)
        .time(18, r.last_used_at)
        .text(24, toJsonArray(r.region_ids))
        .text(25, r.initial_runner_id)
        .text(26, r.ref)
        .text(27, r.sandbox_class)
        .text(28, r.source_sandbox_id)
        .time(29, r.state_entered_at);
    if (r.build_info) {
      s.text(19, r.build_info->dockerfile_content)
          .text(20, toJsonArray(r.build_info->context_hashes))
          .text(21, r.build_info->snapshot_ref)
          .time(22, r.build_info->created_at)
          .time(23, r.build_info->updated_at);
    } else {
      s.null(19).null(20).null(21).null(22).null(23);
    }
    Result<std::int64_t> n = s.run();
    if (!n.ok()) {
      if (n.status().code() == StatusCode::kAlreadyExists) {
        // The snapshot id is a fresh UUID, so the clash is the live-name index.
        return alreadyExists(nameTaken(r.name));
      }
      if (n.status().code() == StatusCode::kNotFound) {
        return notFound("organization " + r.organization_id.value_or("") + " not found");
      }
      return n.status();
    }
    return r;
  });
}

Result<Snapshot> SqliteMetaStore::getSnapshot(std::string_view id) {
  return impl_->read([&](Connection& c) { return impl_->snapshotById(c, id); });
}

Result<Snapshot> SqliteMetaStore::findSnapshotByName(std::string_view organization_id,
                                                     std::string_view name) {
  return impl_->read([&](Connection& c) -> Result<Snapshot> {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"SELECT ", kSnapshotColumns,
                               " FROM snapshots WHERE COALESCE(organization_id, '') = ?1 "
                               "AND name = ?2 AND state <> 'removing'"})));
    s.text(1, organization_id).text(2, name);
    return readOne(s, readSnapshot, snapshotNotFound(name));
  });
}

Result<Snapshot> SqliteMetaStore::findGeneralSnapshotByName(std::string_view name) {
  return findSnapshotByName("", name);
}

Result<SnapshotPage> SqliteMetaStore::listSnapshots(std::string_view organization_id,
                                                    const SnapshotListQuery& query) {
  if (query.page < 1) return invalidArgument("page must not be less than 1");
  if (query.limit < 1) return invalidArgument("limit must not be less than 1");
  if (query.limit > 200) return invalidArgument("limit must not be greater than 200");
  const char* column = "last_used_at";
  switch (query.sort) {
    case SnapshotSortField::kLastUsedAt:
      column = "last_used_at";
      break;
    case SnapshotSortField::kCreatedAt:
      column = "created_at";
      break;
    case SnapshotSortField::kName:
      column = "name";
      break;
    case SnapshotSortField::kState:
      column = "state";
      break;
  }
  const char* dir = query.order == SortOrder::kAsc ? " ASC" : " DESC";
  // ?1 org, ?2 name substring, ?3 source sandbox, ?4 include removing.
  const std::string where =
      " FROM snapshots WHERE (organization_id = ?1 OR (general = 1 AND hidden = 0))"
      " AND (?2 IS NULL OR instr(lower(name), lower(?2)) > 0)"
      " AND (?3 IS NULL OR source_sandbox_id = ?3)"
      " AND (?4 = 1 OR state <> 'removing')";
  // Sort only the keys, then fetch the page's rows by primary key: sorting whole rows (with
  // their Dockerfiles) made a page of 1 000 snapshots several times slower.
  const std::string order = sql({"pg ASC, pk IS NULL, pk", dir, ", pc DESC, pid ASC"});
  const std::string page_sql =
      sql({"WITH page AS (SELECT id AS pid, general AS pg, ", column, " AS pk, created_at AS pc",
           where, " ORDER BY ", order, " LIMIT ?5 OFFSET ?6) SELECT ", kSnapshotColumns,
           " FROM page JOIN snapshots ON snapshots.id = page.pid ORDER BY ", order});
  const std::string count_sql = "SELECT COUNT(*)" + where;
  return impl_->read([&](Connection& c) -> Result<SnapshotPage> {
    SnapshotPage page;
    {
      CAIRN_ASSIGN_OR_RETURN(Stmt s, c.prepare(count_sql));
      s.text(1, organization_id)
          .text(2, query.name_contains)
          .text(3, query.source_sandbox_id)
          .boolean(4, query.include_removing);
      CAIRN_ASSIGN_OR_RETURN(bool row, s.step());
      page.total = row ? s.i64(0) : 0;
    }
    CAIRN_ASSIGN_OR_RETURN(Stmt s, c.prepare(page_sql));
    s.text(1, organization_id)
        .text(2, query.name_contains)
        .text(3, query.source_sandbox_id)
        .boolean(4, query.include_removing)
        .integer(5, query.limit)
        .integer(6, (query.page - 1) * query.limit);
    CAIRN_ASSIGN_OR_RETURN(page.items, readAll<Snapshot>(s, readSnapshot));
    return page;
  });
}

Result<std::vector<Snapshot>> SqliteMetaStore::findSnapshots(const SnapshotFilter& filter) {
  return impl_->read([&](Connection& c) -> Result<std::vector<Snapshot>> {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s,
        c.prepare(sql({"SELECT ", kSnapshotColumns,
                       " FROM snapshots WHERE (?1 IS NULL OR state IN (SELECT value FROM "
                       "json_each(?1))) AND (?2 IS NULL OR organization_id = ?2)"
                       " AND (?3 IS NULL OR ref = ?3) AND (?4 IS NULL OR state_entered_at < ?4)"
                       " AND (?5 IS NULL OR COALESCE(last_used_at, created_at) < ?5)"
                       " ORDER BY state_entered_at, id LIMIT ?6"})));
    if (filter.states.empty()) {
      s.null(1);
    } else {
      s.text(1, statesJson(filter.states));
    }
    s.text(2, filter.organization_id)
        .text(3, filter.ref)
        .time(4, filter.state_entered_before)
        .time(5, filter.last_used_before)
        .integer(6, filter.limit);
    return readAll<Snapshot>(s, readSnapshot);
  });
}

Result<Snapshot> SqliteMetaStore::updateSnapshotState(std::string_view id, SnapshotState expected,
                                                      SnapshotState next,
                                                      const SnapshotUpdate& update) {
  CAIRN_RETURN_IF_ERROR(checkErrorReason(next, expected != next, update.error_reason));
  return impl_->write([&](Connection& c) -> Result<Snapshot> {
    const SystemTime now = impl_->now();
    // error_reason: replaced when given, kept in error→error, cleared otherwise (§0.4).
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"UPDATE snapshots SET state = ?3, updated_at = ?4, "
                               "state_entered_at = CASE WHEN state <> ?3 THEN ?4 "
                               "ELSE state_entered_at END, "
                               "size_bytes = COALESCE(?5, size_bytes), "
                               "entrypoint = COALESCE(?6, entrypoint), "
                               "error_reason = CASE WHEN ?11 = 1 THEN COALESCE(?7, error_reason) "
                               "ELSE NULL END, "
                               "last_used_at = COALESCE(?8, last_used_at), "
                               "initial_runner_id = COALESCE(?9, initial_runner_id), "
                               "ref = COALESCE(?10, ref), "
                               "image_name = COALESCE(?12, image_name) "
                               "WHERE id = ?1 AND state = ?2 RETURNING ",
                               kSnapshotColumns})));
    s.text(1, id)
        .text(2, snapshotStateName(expected))
        .text(3, snapshotStateName(next))
        .time(4, now)
        .integer(5, update.size_bytes)
        .json(6, update.entrypoint)
        .text(7, update.error_reason)
        .time(8, update.last_used_at)
        .text(9, update.initial_runner_id)
        .text(10, update.ref)
        .boolean(11, isErrorState(next))
        .text(12, update.image_name);
    CAIRN_ASSIGN_OR_RETURN(bool row, s.step());
    if (row) {
      Result<Snapshot> r = readSnapshot(s);
      return r;
    }
    CAIRN_ASSIGN_OR_RETURN(Snapshot current, impl_->snapshotById(c, id));
    return failedPrecondition("snapshot " + std::string(id) + " is in state " +
                              std::string(snapshotStateName(current.state)) + ", not " +
                              std::string(snapshotStateName(expected)));
  });
}

Result<Snapshot> SqliteMetaStore::markSnapshotRemoving(std::string_view id) {
  return impl_->write([&](Connection& c) -> Result<Snapshot> {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"UPDATE snapshots SET state = 'removing', updated_at = ?2, "
                               "state_entered_at = ?2, error_reason = NULL "
                               "WHERE id = ?1 AND state <> 'removing' RETURNING ",
                               kSnapshotColumns})));
    s.text(1, id).time(2, impl_->now());
    CAIRN_ASSIGN_OR_RETURN(bool row, s.step());
    if (row) return readSnapshot(s);
    CAIRN_ASSIGN_OR_RETURN(Snapshot current, impl_->snapshotById(c, id));
    (void)current;
    return failedPrecondition("snapshot " + std::string(id) + " is already being removed");
  });
}

Status SqliteMetaStore::touchSnapshot(std::string_view id, SystemTime used_at) {
  return impl_->write([&](Connection& c) -> Status {
    CAIRN_ASSIGN_OR_RETURN(Stmt s,
                           c.prepare("UPDATE snapshots SET last_used_at = ?2 WHERE id = ?1"));
    s.text(1, id).time(2, used_at);
    CAIRN_ASSIGN_OR_RETURN(std::int64_t n, s.run());
    if (n == 0) return notFound(snapshotNotFound(id));
    return okStatus();
  });
}

Status SqliteMetaStore::deleteSnapshot(std::string_view id) {
  return impl_->write([&](Connection& c) -> Status {
    CAIRN_ASSIGN_OR_RETURN(Stmt s, c.prepare("DELETE FROM snapshots WHERE id = ?1"));
    s.text(1, id);
    CAIRN_ASSIGN_OR_RETURN(std::int64_t n, s.run());
    if (n == 0) return notFound(snapshotNotFound(id));
    return okStatus();
  });
}

// ---- Builds ---------------------------------------------------------------------------------

Result<MetaStore::BuildClaim> SqliteMetaStore::getOrCreateBuild(std::string_view build_ref) {
  if (build_ref.empty()) return invalidArgument("build ref must not be empty");
  return impl_->write([&](Connection& c) -> Result<BuildClaim> {
    const SystemTime now = impl_->now();
    BuildClaim claim;
    {
      CAIRN_ASSIGN_OR_RETURN(Stmt ins,
                             c.prepare("INSERT INTO builds (build_ref, state, created_at, "
                                       "updated_at) VALUES (?1, 'pending', ?2, ?2) "
                                       "ON CONFLICT (build_ref) DO NOTHING"));
      ins.text(1, build_ref).time(2, now);
      CAIRN_ASSIGN_OR_RETURN(std::int64_t n, ins.run());
      claim.created = n == 1;
    }
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"SELECT ", kBuildColumns, " FROM builds WHERE build_ref = ?1"})));
    s.text(1, build_ref);
    CAIRN_ASSIGN_OR_RETURN(claim.build,
                           readOne(s, readBuild, "build " + std::string(build_ref) + " not found"));
    return claim;
  });
}

Result<Build> SqliteMetaStore::getBuild(std::string_view build_ref) {
  return impl_->read([&](Connection& c) -> Result<Build> {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"SELECT ", kBuildColumns, " FROM builds WHERE build_ref = ?1"})));
    s.text(1, build_ref);
    return readOne(s, readBuild, "build " + std::string(build_ref) + " not found");
  });
}

Result<Build> SqliteMetaStore::updateBuildState(std::string_view build_ref, BuildState expected,
                                                BuildState next, const BuildUpdate& update) {
  if (next == BuildState::kFailed && expected != next &&
      (!update.error_reason || update.error_reason->empty())) {
    return invalidArgument("a failed build requires an error reason");
  }
  return impl_->write([&](Connection& c) -> Result<Build> {
    CAIRN_ASSIGN_OR_RETURN(Stmt s, c.prepare(sql({"UPDATE builds SET state = ?3, updated_at = ?4, "
                                                  "image_digest = COALESCE(?5, image_digest), "
                                                  "size_bytes = COALESCE(?6, size_bytes), "
                                                  "entrypoint = COALESCE(?7, entrypoint), "
                                                  "error_reason = CASE WHEN ?3 = 'failed' "
                                                  "THEN COALESCE(?8, error_reason) ELSE NULL END "
                                                  "WHERE build_ref = ?1 AND state = ?2 RETURNING ",
                                                  kBuildColumns})));
    s.text(1, build_ref)
        .text(2, buildStateName(expected))
        .text(3, buildStateName(next))
        .time(4, impl_->now())
        .text(5, update.image_digest)
        .integer(6, update.size_bytes)
        .json(7, update.entrypoint)
        .text(8, update.error_reason);
    CAIRN_ASSIGN_OR_RETURN(bool row, s.step());
    if (row) return readBuild(s);
    CAIRN_ASSIGN_OR_RETURN(
        Stmt g, c.prepare(sql({"SELECT ", kBuildColumns, " FROM builds WHERE build_ref = ?1"})));
    g.text(1, build_ref);
    CAIRN_ASSIGN_OR_RETURN(Build current,
                           readOne(g, readBuild, "build " + std::string(build_ref) + " not found"));
    return failedPrecondition("build " + std::string(build_ref) + " is in state " +
                              std::string(buildStateName(current.state)) + ", not " +
                              std::string(buildStateName(expected)));
  });
}

Status SqliteMetaStore::deleteBuild(std::string_view build_ref) {
  return impl_->write([&](Connection& c) -> Status {
    CAIRN_ASSIGN_OR_RETURN(Stmt s, c.prepare("DELETE FROM builds WHERE build_ref = ?1"));
    s.text(1, build_ref);
    CAIRN_ASSIGN_OR_RETURN(std::int64_t n, s.run());
    if (n == 0) return notFound("build " + std::string(build_ref) + " not found");
    return okStatus();
  });
}

Result<std::vector<Build>> SqliteMetaStore::listBuilds() {
  return impl_->read([&](Connection& c) -> Result<std::vector<Build>> {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s,
        c.prepare(sql({"SELECT ", kBuildColumns, " FROM builds ORDER BY created_at, build_ref"})));
    return readAll<Build>(s, readBuild);
  });
}

// ---- Jobs -----------------------------------------------------------------------------------

Result<Job> SqliteMetaStore::enqueueJob(const JobSpec& spec) {
  if (spec.kind.empty()) return invalidArgument("job kind must not be empty");
  if (spec.max_attempts < 1) return invalidArgument("job max_attempts must be at least 1");
  return impl_->write([&](Connection& c) -> Result<Job> {
    const SystemTime now = impl_->now();
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"INSERT INTO jobs (kind, payload, snapshot_id, state, attempts, "
                               "max_attempts, run_after, created_at, updated_at) "
                               "VALUES (?1, ?2, ?3, 'queued', 0, ?4, ?5, ?6, ?6) RETURNING ",
                               kJobColumns})));
    s.text(1, spec.kind)
        .text(2, spec.payload)
        .text(3, spec.snapshot_id)
        .integer(4, spec.max_attempts)
        .time(5, spec.run_after.value_or(now))
        .time(6, now);
    return readOne(s, readJob, "job insert returned nothing");
  });
}

Result<Job> SqliteMetaStore::getJob(std::int64_t id) {
  return impl_->read([&](Connection& c) { return impl_->jobById(c, id); });
}

Result<std::optional<Job>> SqliteMetaStore::claimJob(std::string_view owner,
                                                     const std::vector<std::string>& kinds,
                                                     std::chrono::milliseconds lease) {
  if (owner.empty()) return invalidArgument("job owner must not be empty");
  if (lease.count() <= 0) return invalidArgument("job lease must be positive");
  return impl_->write([&](Connection& c) -> Result<std::optional<Job>> {
    const SystemTime now = impl_->now();
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"UPDATE jobs SET state = 'running', owner = ?1, "
                               "lease_expires_at = ?2, attempts = attempts + 1, updated_at = ?3 "
                               "WHERE id = (SELECT id FROM jobs WHERE state = 'queued' "
                               "AND run_after <= ?3 AND (?4 IS NULL OR kind IN "
                               "(SELECT value FROM json_each(?4))) ORDER BY run_after, id LIMIT 1) "
                               "RETURNING ",
                               kJobColumns})));
    s.text(1, owner).time(2, now + lease).time(3, now);
    if (kinds.empty()) {
      s.null(4);
    } else {
      s.text(4, toJsonArray(kinds));
    }
    CAIRN_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) return std::optional<Job>();
    CAIRN_ASSIGN_OR_RETURN(Job j, readJob(s));
    return std::optional<Job>(std::move(j));
  });
}

Result<Job> SqliteMetaStore::heartbeatJob(std::int64_t id, std::string_view owner,
                                          std::chrono::milliseconds lease) {
  if (lease.count() <= 0) return invalidArgument("job lease must be positive");
  return impl_->write([&](Connection& c) -> Result<Job> {
    const SystemTime now = impl_->now();
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"UPDATE jobs SET lease_expires_at = ?3, updated_at = ?4 "
                               "WHERE id = ?1 AND owner = ?2 AND state = 'running' RETURNING ",
                               kJobColumns})));
    s.integer(1, id).text(2, owner).time(3, now + lease).time(4, now);
    CAIRN_ASSIGN_OR_RETURN(bool row, s.step());
    if (row) return readJob(s);
    return impl_->notHeld(c, id, owner);
  });
}

Result<Job> SqliteMetaStore::completeJob(std::int64_t id, std::string_view owner) {
  return impl_->write([&](Connection& c) -> Result<Job> {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"UPDATE jobs SET state = 'succeeded', lease_expires_at = NULL, "
                               "error = NULL, updated_at = ?3 "
                               "WHERE id = ?1 AND owner = ?2 AND state = 'running' RETURNING ",
                               kJobColumns})));
    s.integer(1, id).text(2, owner).time(3, impl_->now());
    CAIRN_ASSIGN_OR_RETURN(bool row, s.step());
    if (row) return readJob(s);
    return impl_->notHeld(c, id, owner);
  });
}

Result<Job> SqliteMetaStore::failJob(std::int64_t id, std::string_view owner,
                                     std::string_view error,
                                     std::optional<std::chrono::milliseconds> retry_after) {
  if (error.empty()) return invalidArgument("a failed job needs an error message");
  return impl_->write([&](Connection& c) -> Result<Job> {
    const SystemTime now = impl_->now();
    CAIRN_ASSIGN_OR_RETURN(Job j, impl_->jobById(c, id));
    if (j.state != JobState::kRunning || j.owner != std::optional<std::string>(owner)) {
      return impl_->notHeld(c, id, owner);
    }
    const bool retry = retry_after.has_value() && j.attempts < j.max_attempts;
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"UPDATE jobs SET state = ?2, error = ?3, updated_at = ?4, "
                               "lease_expires_at = NULL, "
                               "owner = CASE WHEN ?2 = 'queued' THEN NULL ELSE owner END, "
                               "run_after = COALESCE(?5, run_after) WHERE id = ?1 RETURNING ",
                               kJobColumns})));
    s.integer(1, id)
        .text(2, retry ? "queued" : "failed")
        .text(3, error)
        .time(4, now)
        .time(5, retry ? std::optional<SystemTime>(now + *retry_after) : std::nullopt);
    return readOne(s, readJob, "job " + std::to_string(id) + " not found");
  });
}

Result<std::vector<Job>> SqliteMetaStore::reclaimExpiredJobs() {
  return impl_->write([&](Connection& c) -> Result<std::vector<Job>> {
    const SystemTime now = impl_->now();
    std::vector<Job> out;
    {
      CAIRN_ASSIGN_OR_RETURN(
          Stmt s,
          c.prepare(sql({"UPDATE jobs SET state = 'failed', lease_expires_at = NULL, "
                         "updated_at = ?1, error = 'abandoned by worker ' || owner || "
                         "' (its lease expired) after ' || attempts || ' of ' || max_attempts "
                         "|| ' attempts' WHERE state = 'running' AND lease_expires_at <= ?1 "
                         "AND attempts >= max_attempts RETURNING ",
                         kJobColumns})));
      s.time(1, now);
      CAIRN_ASSIGN_OR_RETURN(out, readAll<Job>(s, readJob));
    }
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s, c.prepare(sql({"UPDATE jobs SET state = 'queued', owner = NULL, "
                               "lease_expires_at = NULL, updated_at = ?1, "
                               "error = 'worker ' || owner || ' lost its lease; retrying' "
                               "WHERE state = 'running' AND lease_expires_at <= ?1 "
                               "AND attempts < max_attempts RETURNING ",
                               kJobColumns})));
    s.time(1, now);
    CAIRN_ASSIGN_OR_RETURN(auto requeued, readAll<Job>(s, readJob));
    for (Job& j : requeued)
      out.push_back(std::move(j));
    return out;
  });
}

Result<std::vector<Job>> SqliteMetaStore::listJobs(const JobFilter& filter) {
  return impl_->read([&](Connection& c) -> Result<std::vector<Job>> {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt s,
        c.prepare(sql({"SELECT ", kJobColumns,
                       " FROM jobs WHERE (?1 IS NULL OR state IN (SELECT value FROM "
                       "json_each(?1))) AND (?2 IS NULL OR kind = ?2) "
                       "AND (?3 IS NULL OR snapshot_id = ?3) AND (?4 IS NULL OR owner = ?4) "
                       "ORDER BY id LIMIT ?5"})));
    if (filter.states.empty()) {
      s.null(1);
    } else {
      Json states = Json::array();
      for (JobState st : filter.states)
        states.push_back(std::string(jobStateName(st)));
      s.text(1, states.dump());
    }
    s.text(2, filter.kind)
        .text(3, filter.snapshot_id)
        .text(4, filter.owner)
        .integer(5, filter.limit);
    return readAll<Job>(s, readJob);
  });
}

Result<std::int64_t> SqliteMetaStore::countJobs(JobState state) {
  return impl_->read([&](Connection& c) -> Result<std::int64_t> {
    CAIRN_ASSIGN_OR_RETURN(Stmt s, c.prepare("SELECT COUNT(*) FROM jobs WHERE state = ?1"));
    s.text(1, jobStateName(state));
    CAIRN_ASSIGN_OR_RETURN(bool row, s.step());
    return row ? s.i64(0) : 0;
  });
}

Result<std::int64_t> SqliteMetaStore::purgeFinishedJobs(SystemTime before) {
  return impl_->write([&](Connection& c) -> Result<std::int64_t> {
    CAIRN_ASSIGN_OR_RETURN(Stmt s, c.prepare("DELETE FROM jobs WHERE state IN ('succeeded', "
                                             "'failed') AND updated_at < ?1"));
    s.time(1, before);
    return s.run();
  });
}

// ---- Quotas ---------------------------------------------------------------------------------

Result<QuotaReservation> SqliteMetaStore::reserveSnapshotQuota(std::string_view organization_id,
                                                               std::int64_t max_snapshots,
                                                               std::chrono::milliseconds ttl) {
  if (ttl.count() <= 0) return invalidArgument("quota reservation ttl must be positive");
  return impl_->write([&](Connection& c) -> Result<QuotaReservation> {
    CAIRN_ASSIGN_OR_RETURN(std::int64_t used, impl_->quotaUsage(c, organization_id));
    if (used >= max_snapshots) {
      return rules::quotaExceeded(max_snapshots);
    }
    QuotaReservation r;
    r.id = uuidV4();
    r.organization_id = std::string(organization_id);
    r.created_at = impl_->now();
    r.expires_at = r.created_at + ttl;
    CAIRN_ASSIGN_OR_RETURN(Stmt s, c.prepare("INSERT INTO quota_reservations (id, organization_id, "
                                             "created_at, expires_at) VALUES (?1, ?2, ?3, ?4)"));
    s.text(1, r.id).text(2, r.organization_id).time(3, r.created_at).time(4, r.expires_at);
    Result<std::int64_t> n = s.run();
    if (!n.ok()) {
      if (n.status().code() == StatusCode::kNotFound) {
        return notFound("organization " + r.organization_id + " not found");
      }
      return n.status();
    }
    return r;
  });
}

Status SqliteMetaStore::releaseQuotaReservation(std::string_view reservation_id) {
  return impl_->write([&](Connection& c) -> Status {
    CAIRN_ASSIGN_OR_RETURN(Stmt s, c.prepare("DELETE FROM quota_reservations WHERE id = ?1"));
    s.text(1, reservation_id);
    CAIRN_ASSIGN_OR_RETURN(std::int64_t n, s.run());
    if (n == 0) return notFound("quota reservation " + std::string(reservation_id) + " not found");
    return okStatus();
  });
}

Result<std::int64_t> SqliteMetaStore::countQuotaUsage(std::string_view organization_id) {
  return impl_->read([&](Connection& c) { return impl_->quotaUsage(c, organization_id); });
}

Result<std::int64_t> SqliteMetaStore::purgeExpiredReservations() {
  return impl_->write([&](Connection& c) -> Result<std::int64_t> {
    CAIRN_ASSIGN_OR_RETURN(Stmt s,
                           c.prepare("DELETE FROM quota_reservations WHERE expires_at <= ?1"));
    s.time(1, impl_->now());
    return s.run();
  });
}

}  // namespace cairn::meta
