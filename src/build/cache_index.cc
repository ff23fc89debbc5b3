#include "cairn/build/cache_index.h"

#include <sqlite3.h>

#include <chrono>

namespace cairn::build {
namespace {

struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status sqlError(sqlite3* db, const std::string& what) {
  return internalError("cache index: " + what + ": " + sqlite3_errmsg(db));
}

std::string column(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? reinterpret_cast<const char*>(t) : "";
}

}  // namespace

Result<std::unique_ptr<CacheIndex>> CacheIndex::open(const std::filesystem::path& db_path) {
  std::error_code ec;
  std::filesystem::create_directories(db_path.parent_path(), ec);
  if (ec) return internalError("create " + db_path.parent_path().string() + ": " + ec.message());
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    Status s = internalError("open cache index " + db_path.string() + ": " +
                             (db ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, 10000);
  std::unique_ptr<CacheIndex> index(new CacheIndex(db));
  CAIRN_RETURN_IF_ERROR(index->exec("PRAGMA journal_mode=WAL"));
  // A cache: a crash may lose the last entries (WAL with synchronous=NORMAL stays consistent),
  // which costs a rebuild of those steps, never a wrong hit — a hit is checked against the layer
  // store. Three fewer fsyncs per committed step.
  CAIRN_RETURN_IF_ERROR(index->exec("PRAGMA synchronous=NORMAL"));
  CAIRN_RETURN_IF_ERROR(
      index->exec("CREATE TABLE IF NOT EXISTS steps(key TEXT PRIMARY KEY, chain_id TEXT NOT NULL, "
                  "diff_id TEXT NOT NULL, size INTEGER NOT NULL, last_used INTEGER NOT NULL)"));
  CAIRN_RETURN_IF_ERROR(index->exec(
      "CREATE TABLE IF NOT EXISTS exports(diff_id TEXT PRIMARY KEY, digest TEXT NOT NULL, "
      "size INTEGER NOT NULL, media_type TEXT NOT NULL)"));
  CAIRN_RETURN_IF_ERROR(index->exec(
      "CREATE TABLE IF NOT EXISTS copies(diff_id TEXT NOT NULL, compression TEXT NOT NULL, "
      "digest TEXT NOT NULL, size INTEGER NOT NULL, media_type TEXT NOT NULL, "
      "PRIMARY KEY(diff_id, compression))"));
  return index;
}

CacheIndex::~CacheIndex() {
  sqlite3_close(db_);
}

Status CacheIndex::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = err ? err : "unknown error";
    sqlite3_free(err);
    return internalError(std::string("cache index: ") + message);
  }
  return okStatus();
}

Result<std::optional<CacheEntry>> CacheIndex::lookup(const std::string& key) {
  std::lock_guard lock(mu_);
  Stmt q;
  if (sqlite3_prepare_v2(db_, "SELECT chain_id, diff_id, size FROM steps WHERE key = ?", -1, &q.s,
                         nullptr) != SQLITE_OK) {
    return sqlError(db_, "lookup");
  }
  sqlite3_bind_text(q.s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(q.s);
  if (rc == SQLITE_DONE) return std::optional<CacheEntry>();
  if (rc != SQLITE_ROW) return sqlError(db_, "lookup");
  auto chain = Digest::parse(column(q.s, 0));
  auto diff = Digest::parse(column(q.s, 1));
  if (!chain.ok() || !diff.ok()) return internalError("cache index: corrupt entry for " + key);
  CacheEntry entry{*chain, *diff, static_cast<std::uint64_t>(sqlite3_column_int64(q.s, 2))};
  Stmt touch;
  if (sqlite3_prepare_v2(db_, "UPDATE steps SET last_used = ? WHERE key = ?", -1, &touch.s,
                         nullptr) == SQLITE_OK) {
    sqlite3_bind_int64(touch.s, 1, nowMs());
    sqlite3_bind_text(touch.s, 2, key.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_step(touch.s);
  }
  return std::optional<CacheEntry>(entry);
}

Status CacheIndex::put(const std::string& key, const CacheEntry& entry) {
  std::lock_guard lock(mu_);
  Stmt q;
  if (sqlite3_prepare_v2(db_,
                         "INSERT OR REPLACE INTO steps(key, chain_id, diff_id, size, last_used) "
                         "VALUES(?, ?, ?, ?, ?)",
                         -1, &q.s, nullptr) != SQLITE_OK) {
    return sqlError(db_, "put");
  }
  std::string chain = entry.chain_id.str(), diff = entry.diff_id.str();
  sqlite3_bind_text(q.s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(q.s, 2, chain.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(q.s, 3, diff.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(q.s, 4, static_cast<sqlite3_int64>(entry.size));
  sqlite3_bind_int64(q.s, 5, nowMs());
  if (sqlite3_step(q.s) != SQLITE_DONE) return sqlError(db_, "put");
  return okStatus();
}

Status CacheIndex::remove(const std::string& key) {
  std::lock_guard lock(mu_);
  Stmt q;
  if (sqlite3_prepare_v2(db_, "DELETE FROM steps WHERE key = ?", -1, &q.s, nullptr) != SQLITE_OK) {
    return sqlError(db_, "remove");
  }
  sqlite3_bind_text(q.s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(q.s) != SQLITE_DONE) return sqlError(db_, "remove");
  return okStatus();
}

Result<std::optional<ExportedLayer>> CacheIndex::exported(const Digest& diff_id) {
  std::lock_guard lock(mu_);
  Stmt q;
  if (sqlite3_prepare_v2(db_, "SELECT digest, size, media_type FROM exports WHERE diff_id = ?", -1,
                         &q.s, nullptr) != SQLITE_OK) {
    return sqlError(db_, "exported");
  }
  std::string diff = diff_id.str();
  sqlite3_bind_text(q.s, 1, diff.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(q.s);
  if (rc == SQLITE_DONE) return std::optional<ExportedLayer>();
  if (rc != SQLITE_ROW) return sqlError(db_, "exported");
  auto digest = Digest::parse(column(q.s, 0));
  if (!digest.ok()) return internalError("cache index: corrupt export of " + diff);
  return std::optional<ExportedLayer>(ExportedLayer{
      *digest, static_cast<std::uint64_t>(sqlite3_column_int64(q.s, 1)), column(q.s, 2)});
}

Status CacheIndex::putExported(const Digest& diff_id, const ExportedLayer& layer) {
  std::lock_guard lock(mu_);
  Stmt q;
  if (sqlite3_prepare_v2(db_,
                         "INSERT OR REPLACE INTO exports(diff_id, digest, size, media_type) "
                         "VALUES(?, ?, ?, ?)",
                         -1, &q.s, nullptr) != SQLITE_OK) {
    return sqlError(db_, "putExported");
  }
  std::string diff = diff_id.str(), digest = layer.digest.str();
  sqlite3_bind_text(q.s, 1, diff.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(q.s, 2, digest.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(q.s, 3, static_cast<sqlite3_int64>(layer.size));
  sqlite3_bind_text(q.s, 4, layer.media_type.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(q.s) != SQLITE_DONE) return sqlError(db_, "putExported");
  return okStatus();
}

Result<std::optional<ExportedLayer>> CacheIndex::compressedCopy(const Digest& diff_id,
                                                                std::string_view compression) {
  std::lock_guard lock(mu_);
  Stmt q;
  if (sqlite3_prepare_v2(db_,
                         "SELECT digest, size, media_type FROM copies WHERE diff_id = ? AND "
                         "compression = ?",
                         -1, &q.s, nullptr) != SQLITE_OK) {
    return sqlError(db_, "compressedCopy");
  }
  std::string diff = diff_id.str();
  sqlite3_bind_text(q.s, 1, diff.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(q.s, 2, compression.data(), static_cast<int>(compression.size()),
                    SQLITE_TRANSIENT);
  int rc = sqlite3_step(q.s);
  if (rc == SQLITE_DONE) return std::optional<ExportedLayer>();
  if (rc != SQLITE_ROW) return sqlError(db_, "compressedCopy");
  auto digest = Digest::parse(column(q.s, 0));
  if (!digest.ok()) return internalError("cache index: corrupt compressed copy of " + diff);
  return std::optional<ExportedLayer>(ExportedLayer{
      *digest, static_cast<std::uint64_t>(sqlite3_column_int64(q.s, 1)), column(q.s, 2)});
}

Status CacheIndex::putCompressedCopy(const Digest& diff_id, std::string_view compression,
                                     const ExportedLayer& layer) {
  std::lock_guard lock(mu_);
  Stmt q;
  if (sqlite3_prepare_v2(db_,
                         "INSERT OR REPLACE INTO copies(diff_id, compression, digest, size, "
                         "media_type) VALUES(?, ?, ?, ?, ?)",
                         -1, &q.s, nullptr) != SQLITE_OK) {
    return sqlError(db_, "putCompressedCopy");
  }
  std::string diff = diff_id.str(), digest = layer.digest.str();
  sqlite3_bind_text(q.s, 1, diff.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(q.s, 2, compression.data(), static_cast<int>(compression.size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_text(q.s, 3, digest.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(q.s, 4, static_cast<sqlite3_int64>(layer.size));
  sqlite3_bind_text(q.s, 5, layer.media_type.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(q.s) != SQLITE_DONE) return sqlError(db_, "putCompressedCopy");
  return okStatus();
}

Result<std::vector<Digest>> CacheIndex::liveChainIds() {
  std::lock_guard lock(mu_);
  Stmt q;
  if (sqlite3_prepare_v2(db_, "SELECT DISTINCT chain_id FROM steps", -1, &q.s, nullptr) !=
      SQLITE_OK) {
    return sqlError(db_, "liveChainIds");
  }
  std::vector<Digest> out;
  while (sqlite3_step(q.s) == SQLITE_ROW) {
    if (auto d = Digest::parse(column(q.s, 0)); d.ok()) out.push_back(*d);
  }
  return out;
}

Result<std::uint64_t> CacheIndex::totalSize() {
  std::lock_guard lock(mu_);
  Stmt q;
  if (sqlite3_prepare_v2(db_,
                         "SELECT COALESCE(SUM(size), 0) FROM (SELECT chain_id, MAX(size) AS size "
                         "FROM steps GROUP BY chain_id)",
                         -1, &q.s, nullptr) != SQLITE_OK ||
      sqlite3_step(q.s) != SQLITE_ROW) {
    return sqlError(db_, "totalSize");
  }
  return static_cast<std::uint64_t>(sqlite3_column_int64(q.s, 0));
}

Result<std::size_t> CacheIndex::evict(std::uint64_t budget_bytes) {
  CAIRN_ASSIGN_OR_RETURN(std::uint64_t total, totalSize());
  std::size_t dropped = 0;
  while (total > budget_bytes) {
    std::string key;
    std::uint64_t size = 0;
    {
      std::lock_guard lock(mu_);
      Stmt q;
      if (sqlite3_prepare_v2(db_, "SELECT key, size FROM steps ORDER BY last_used ASC LIMIT 1", -1,
                             &q.s, nullptr) != SQLITE_OK) {
        return sqlError(db_, "evict");
      }
      if (sqlite3_step(q.s) != SQLITE_ROW) break;
      key = column(q.s, 0);
      size = static_cast<std::uint64_t>(sqlite3_column_int64(q.s, 1));
    }
    CAIRN_RETURN_IF_ERROR(remove(key));
    ++dropped;
    total = total > size ? total - size : 0;
  }
  return dropped;
}

}  // namespace cairn::build
