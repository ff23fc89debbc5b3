// issueApiKey and bootstrapInitialApiKey over a real (SQLite) store.
#include <thread>

#include "cairn/common/fs.h"
#include "cairn/meta/api_key.h"
#include "cairn/meta/sqlite_meta_store.h"
#include "cairn/testing/fake_clock.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::meta {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

class BootstrapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create("meta-bootstrap");
    ASSERT_OK(dir);
    dir_.emplace(std::move(dir).value());
    auto store = SqliteMetaStore::open(dir_->path() / "meta.db", clock_);
    ASSERT_OK(store);
    store_ = std::move(store).value();
  }
  ::cairn::testing::FakeClock clock_;
  std::optional<TempDir> dir_;
  std::unique_ptr<SqliteMetaStore> store_;
};

TEST_F(BootstrapTest, IssuedKeyAuthenticatesAndIsStoredOnlyAsAHash) {
  ASSERT_OK_AND_ASSIGN(Organization org, store_->createOrganization(Organization{.name = "acme"}));
  ASSERT_OK_AND_ASSIGN(IssuedApiKey issued,
                       issueApiKey(*store_, org.id, "ci", {"write:snapshots"}, clock_.now() + 1h));
  EXPECT_TRUE(looksLikeApiKey(issued.key));
  EXPECT_EQ(issued.record.key_hash, hashApiKey(issued.key));
  // The secret is nowhere in the database files; its hash is (so the search looks right).
  std::string all_bytes;
  for (const char* file : {"meta.db", "meta.db-wal"}) {
    auto bytes = readFile(dir_->path() / file);
    if (bytes.ok()) all_bytes += *bytes;
  }
  EXPECT_NE(all_bytes.find(issued.record.key_hash), std::string::npos);
  EXPECT_EQ(all_bytes.find(issued.key), std::string::npos);
  EXPECT_EQ(all_bytes.find(issued.key.substr(kApiKeyPrefix.size())), std::string::npos);
  ASSERT_OK_AND_ASSIGN(ApiKey who, authenticateApiKey(*store_, issued.key, clock_.now()));
  EXPECT_EQ(who.organization_id, org.id);
  EXPECT_TRUE(hasPermission(who, kPermissionWriteSnapshots));
  clock_.advance(2h);
  EXPECT_THAT(authenticateApiKey(*store_, issued.key, clock_.now()),
              StatusIs(StatusCode::kUnauthenticated, "This API key has expired"));

  EXPECT_THAT(issueApiKey(*store_, org.id, "bad", {"sudo"}, std::nullopt),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("sudo")));
  EXPECT_THAT(issueApiKey(*store_, org.id, "ci", {}, std::nullopt),
              StatusIs(StatusCode::kAlreadyExists));
}

TEST_F(BootstrapTest, FirstStartCreatesOrganizationAndKeyOnce) {
  ASSERT_OK_AND_ASSIGN(auto first, bootstrapInitialApiKey(*store_, "default"));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->record.name, "initial");
  ASSERT_OK_AND_ASSIGN(ApiKey who, authenticateApiKey(*store_, first->key, clock_.now()));
  ASSERT_OK_AND_ASSIGN(Organization org, store_->getOrganization(who.organization_id));
  EXPECT_EQ(org.name, "default");
  for (const std::string& p : allPermissions())
    EXPECT_TRUE(hasPermission(who, p)) << p;

  ASSERT_OK_AND_ASSIGN(auto second, bootstrapInitialApiKey(*store_, "default"));
  EXPECT_FALSE(second.has_value()) << "the key is printed once, on the first start only";
  // Revoking the initial key does not make a later start mint a new one.
  ASSERT_OK(store_->revokeApiKey(org.id, who.id));
  ASSERT_OK_AND_ASSIGN(auto third, bootstrapInitialApiKey(*store_, "default"));
  EXPECT_FALSE(third.has_value());
}

TEST_F(BootstrapTest, LeavesAConfiguredServerAlone) {
  ASSERT_OK(store_->createOrganization(Organization{.name = "ops"}));
  ASSERT_OK_AND_ASSIGN(auto r, bootstrapInitialApiKey(*store_, "default"));
  EXPECT_FALSE(r.has_value());
  ASSERT_OK_AND_ASSIGN(auto orgs, store_->listOrganizations());
  EXPECT_EQ(orgs.size(), 1u);
}

TEST_F(BootstrapTest, CompletesAStartThatCrashedHalfway) {
  // The previous start created the organization and died before the key.
  ASSERT_OK(store_->createOrganization(Organization{.name = "default"}));
  ASSERT_OK_AND_ASSIGN(auto r, bootstrapInitialApiKey(*store_, "default"));
  ASSERT_TRUE(r.has_value());
  EXPECT_OK(authenticateApiKey(*store_, r->key, clock_.now()));
}

TEST_F(BootstrapTest, ConcurrentFirstStartsMintOneKey) {
  auto other = SqliteMetaStore::open(dir_->path() / "meta.db", clock_);
  ASSERT_OK(other);
  std::atomic<int> minted{0}, errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    MetaStore* store = i % 2 == 0 ? static_cast<MetaStore*>(store_.get()) : other->get();
    threads.emplace_back([&, store] {
      auto r = bootstrapInitialApiKey(*store, "default");
      if (!r.ok()) ++errors;
      if (r.ok() && r->has_value()) ++minted;
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(minted.load(), 1);
  ASSERT_OK_AND_ASSIGN(auto orgs, store_->listOrganizations());
  ASSERT_EQ(orgs.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto keys, store_->listApiKeys(orgs[0].id));
  EXPECT_EQ(keys.size(), 1u);
}

}  // namespace
}  // namespace cairn::meta
