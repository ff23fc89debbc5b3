// SqliteMetaStore: the conformance suite, plus what only SQLite has (migrations, pragmas).
#include "cairn/meta/sqlite_meta_store.h"

#include <sqlite3.h>

#include "meta_store_conformance.h"

namespace cairn::meta::testing {
namespace {

Result<std::unique_ptr<MetaStore>> makeSqlite(const std::filesystem::path& dir,
                                              const Clock& clock) {
  auto store = SqliteMetaStore::open(dir / "meta.db", clock);
  if (!store.ok()) return store.status();
  return std::unique_ptr<MetaStore>(std::move(store).value());
}

std::string factoryName(const ::testing::TestParamInfo<MetaStoreFactory>& p) {
  return p.param.name;
}

INSTANTIATE_TEST_SUITE_P(Sqlite, MetaStoreConformance,
                         ::testing::Values(MetaStoreFactory{"sqlite", makeSqlite}), factoryName);

//! Runs SQL on the file directly, as another tool (or an older cairn) would.
void rawExec(const std::filesystem::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string message = err != nullptr ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

std::string rawQueryText(const std::filesystem::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open(db_path.c_str(), &db) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      if (text != nullptr) out = reinterpret_cast<const char*>(text);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return out;
}

class SqliteMetaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create("sqlite-meta");
    ASSERT_OK(dir);
    dir_.emplace(std::move(dir).value());
    path_ = dir_->path() / "meta.db";
  }
  FakeClock clock_;
  std::optional<TempDir> dir_;
  std::filesystem::path path_;
};

TEST_F(SqliteMetaStoreTest, NewDatabaseIsAtTheLatestVersionInWalMode) {
  ASSERT_OK_AND_ASSIGN(auto store, SqliteMetaStore::open(path_, clock_));
  ASSERT_OK_AND_ASSIGN(int version, store->schemaVersion());
  EXPECT_EQ(version, sqliteLatestSchemaVersion());
  EXPECT_GE(sqliteLatestSchemaVersion(), 2);
  EXPECT_EQ(rawQueryText(path_, "PRAGMA journal_mode"), "wal");
}

TEST_F(SqliteMetaStoreTest, MigratesAVersion1Database) {
  std::string org_id;
  std::string snapshot_id;
  {
    ASSERT_OK_AND_ASSIGN(
        auto v1, SqliteMetaStore::open(path_, clock_, SqliteOptions{.target_schema_version = 1}));
    ASSERT_OK_AND_ASSIGN(int version, v1->schemaVersion());
    EXPECT_EQ(version, 1);
    ASSERT_OK_AND_ASSIGN(Organization org, v1->createOrganization(Organization{.name = "old"}));
    org_id = org.id;
    Snapshot s;
    s.name = "kept";
    s.organization_id = org.id;
    s.image_name = "alpine:3.19";
    ASSERT_OK_AND_ASSIGN(Snapshot created, v1->createSnapshot(s));
    snapshot_id = created.id;
    // Version 2 tables do not exist yet.
    EXPECT_THAT(v1->enqueueJob(JobSpec{.kind = "build"}), StatusIs(StatusCode::kInternal));
  }
  EXPECT_EQ(rawQueryText(path_, "SELECT version FROM schema_version"), "1");

  ASSERT_OK_AND_ASSIGN(auto latest, SqliteMetaStore::open(path_, clock_));
  ASSERT_OK_AND_ASSIGN(int version, latest->schemaVersion());
  EXPECT_EQ(version, sqliteLatestSchemaVersion());
  ASSERT_OK_AND_ASSIGN(Snapshot kept, latest->findSnapshotByName(org_id, "kept"));
  EXPECT_EQ(kept.id, snapshot_id);
  EXPECT_EQ(kept.image_name, "alpine:3.19");
  EXPECT_OK(latest->enqueueJob(JobSpec{.kind = "build"}));
  EXPECT_OK(latest->reserveSnapshotQuota(org_id, 5, std::chrono::minutes(1)));

  // Opening again is a no-op.
  ASSERT_OK_AND_ASSIGN(auto again, SqliteMetaStore::open(path_, clock_));
  ASSERT_OK_AND_ASSIGN(int same, again->schemaVersion());
  EXPECT_EQ(same, sqliteLatestSchemaVersion());
}

TEST_F(SqliteMetaStoreTest, RefusesADatabaseFromANewerCairn) {
  { ASSERT_OK(SqliteMetaStore::open(path_, clock_)); }
  rawExec(path_, "UPDATE schema_version SET version = 99");
  EXPECT_THAT(
      SqliteMetaStore::open(path_, clock_),
      StatusIs(StatusCode::kFailedPrecondition,
               ::testing::AllOf(HasSubstr("99"), HasSubstr("newer"), HasSubstr(path_.string()))));
}

TEST_F(SqliteMetaStoreTest, RejectsAnUnknownTargetVersion) {
  EXPECT_THAT(SqliteMetaStore::open(path_, clock_, SqliteOptions{.target_schema_version = 1000}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("1000")));
}

TEST_F(SqliteMetaStoreTest, ReportsAnUnopenablePath) {
  EXPECT_THAT(SqliteMetaStore::open(dir_->path() / "missing" / "meta.db", clock_),
              StatusIs(StatusCode::kInternal, HasSubstr("missing/meta.db")));
}

TEST_F(SqliteMetaStoreTest, RejectsAFileThatIsNotADatabase) {
  ASSERT_OK(writeFileDurable(path_, std::string(4096, 'x')));
  auto store = SqliteMetaStore::open(path_, clock_);
  EXPECT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("not a database"));
}

TEST_F(SqliteMetaStoreTest, ForeignKeysAreEnforced) {
  ASSERT_OK_AND_ASSIGN(auto store, SqliteMetaStore::open(path_, clock_));
  ASSERT_OK_AND_ASSIGN(Organization org, store->createOrganization(Organization{.name = "o"}));
  ASSERT_OK(store->createApiKey(
      ApiKey{.organization_id = org.id, .name = "k", .key_hash = generateApiKey().hash}));
  // Deleting the organization outside the store cascades to its keys (FKs are on for every
  // connection the store opens; a raw connection must ask for them too).
  rawExec(path_, "PRAGMA foreign_keys=ON; DELETE FROM organizations WHERE id = '" + org.id + "'");
  ASSERT_OK_AND_ASSIGN(auto keys, store->listApiKeys(org.id));
  EXPECT_TRUE(keys.empty());
}

}  // namespace
}  // namespace cairn::meta::testing
