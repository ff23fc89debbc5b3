// The MetaStore conformance suite: every MetaStore implementation must pass it.
//
// An implementation's test file includes this header once and instantiates the suite with a
// factory (see sqlite_meta_store_test.cc):
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, MetaStoreConformance,
//                            ::testing::Values(MetaStoreFactory{"sqlite", makeSqlite}),
//                            [](const auto& info) { return info.param.name; });
//
// The factory gets a fresh directory and the test's Clock. Called again with the same
// directory it must open the same database (the tests use that to simulate a restart and a
// second process).
#pragma once

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/common/strings.h"
#include "cairn/common/uuid.h"
#include "cairn/meta/api_key.h"
#include "cairn/meta/meta_store.h"
#include "cairn/testing/fake_clock.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::meta::testing {

using ::cairn::testing::FakeClock;
using ::cairn::testing::IsOk;
using ::cairn::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

struct MetaStoreFactory {
  std::string name;
  std::function<Result<std::unique_ptr<MetaStore>>(const std::filesystem::path& dir,
                                                   const Clock& clock)>
      make;
};

inline void PrintTo(const MetaStoreFactory& f, std::ostream* os) {
  *os << f.name;
}

class MetaStoreConformance : public ::testing::TestWithParam<MetaStoreFactory> {
 protected:
  void SetUp() override {
    auto dir = TempDir::create("meta-conformance");
    ASSERT_OK(dir);
    dir_.emplace(std::move(dir).value());
    auto store = GetParam().make(dir_->path(), clock_);
    ASSERT_OK(store);
    store_ = std::move(store).value();
    ASSERT_OK_AND_ASSIGN(org_, store_->createOrganization(Organization{.name = "acme"}));
    ASSERT_OK_AND_ASSIGN(other_org_, store_->createOrganization(Organization{.name = "globex"}));
  }

  //! A second handle on the same database (another process, or the same one after restart).
  std::unique_ptr<MetaStore> openAgain() {
    auto store = GetParam().make(dir_->path(), clock_);
    EXPECT_OK(store);
    return store.ok() ? std::move(store).value() : nullptr;
  }

  Snapshot snapshotNamed(std::string name, const Organization* org = nullptr) {
    Snapshot s;
    s.name = std::move(name);
    s.organization_id = (org != nullptr ? org : &org_)->id;
    s.image_name = "ubuntu:22.04";
    return s;
  }
  Snapshot generalNamed(std::string name, bool hidden = false) {
    Snapshot s;
    s.name = std::move(name);
    s.general = true;
    s.hidden = hidden;
    s.image_name = "ubuntu:22.04";
    return s;
  }
  Snapshot mustCreate(const Snapshot& s) {
    auto r = store_->createSnapshot(s);
    EXPECT_OK(r);
    return r.ok() ? std::move(r).value() : Snapshot{};
  }
  static std::vector<std::string> names(const std::vector<Snapshot>& items) {
    std::vector<std::string> out;
    for (const Snapshot& s : items)
      out.push_back(s.name);
    return out;
  }

  FakeClock clock_;
  std::optional<TempDir> dir_;
  std::unique_ptr<MetaStore> store_;
  Organization org_;
  Organization other_org_;
};

// ---- Organizations --------------------------------------------------------------------------

TEST_P(MetaStoreConformance, OrganizationRoundTrip) {
  EXPECT_TRUE(isUuid(org_.id));
  EXPECT_EQ(org_.created_at, clock_.now());
  ASSERT_OK_AND_ASSIGN(Organization by_id, store_->getOrganization(org_.id));
  EXPECT_EQ(by_id.name, "acme");
  EXPECT_FALSE(by_id.suspended);
  ASSERT_OK_AND_ASSIGN(Organization by_name, store_->getOrganizationByName("acme"));
  EXPECT_EQ(by_name.id, org_.id);
  ASSERT_OK_AND_ASSIGN(auto all, store_->listOrganizations());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "acme");
  EXPECT_EQ(all[1].name, "globex");
  EXPECT_THAT(store_->getOrganization(uuidV4()), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->getOrganizationByName("nope"),
              StatusIs(StatusCode::kNotFound, HasSubstr("nope")));
}

TEST_P(MetaStoreConformance, OrganizationNamesAreUnique) {
  EXPECT_THAT(store_->createOrganization(Organization{.name = "acme"}),
              StatusIs(StatusCode::kAlreadyExists, HasSubstr("acme")));
  EXPECT_THAT(store_->createOrganization(Organization{.name = ""}),
              StatusIs(StatusCode::kInvalidArgument));
}

TEST_P(MetaStoreConformance, OrganizationUpdateKeepsLimitsAndSuspension) {
  Organization o = org_;
  o.suspended = true;
  o.suspension_reason = "unpaid";
  o.default_region_id = "us";
  o.limits.max_snapshots = 5;
  o.limits.max_cpu_per_sandbox = 2.5;
  o.limits.deactivation_timeout_minutes = 60;
  clock_.advance(5s);
  ASSERT_OK_AND_ASSIGN(Organization updated, store_->updateOrganization(o));
  EXPECT_EQ(updated.updated_at, clock_.now());
  ASSERT_OK_AND_ASSIGN(Organization back, store_->getOrganization(org_.id));
  EXPECT_TRUE(back.suspended);
  EXPECT_EQ(back.suspension_reason, "unpaid");
  EXPECT_EQ(back.default_region_id, "us");
  EXPECT_EQ(back.limits, o.limits);
  EXPECT_EQ(back.created_at, org_.created_at);

  Organization ghost = org_;
  ghost.id = uuidV4();
  EXPECT_THAT(store_->updateOrganization(ghost), StatusIs(StatusCode::kNotFound));
  Organization clash = org_;
  clash.name = "globex";
  EXPECT_THAT(store_->updateOrganization(clash), StatusIs(StatusCode::kAlreadyExists));
}

// ---- API keys -------------------------------------------------------------------------------

TEST_P(MetaStoreConformance, ApiKeyLookupByHashListAndRevoke) {
  GeneratedApiKey g = generateApiKey();
  ApiKey k{.organization_id = org_.id,
           .name = "ci",
           .key_hash = g.hash,
           .key_prefix = g.prefix,
           .permissions = {std::string(kPermissionWriteSnapshots)}};
  ASSERT_OK_AND_ASSIGN(ApiKey created, store_->createApiKey(k));
  EXPECT_TRUE(isUuid(created.id));
  ASSERT_OK_AND_ASSIGN(ApiKey found, store_->getApiKeyByHash(hashApiKey(g.key)));
  EXPECT_EQ(found.id, created.id);
  EXPECT_EQ(found.organization_id, org_.id);
  EXPECT_EQ(found.key_prefix, g.prefix);
  EXPECT_THAT(found.permissions, ElementsAre("write:snapshots"));
  EXPECT_FALSE(found.revoked_at.has_value());
  EXPECT_THAT(store_->getApiKeyByHash(hashApiKey("cairn_other")), StatusIs(StatusCode::kNotFound));

  ASSERT_OK_AND_ASSIGN(auto listed, store_->listApiKeys(org_.id));
  ASSERT_EQ(listed.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto other_listed, store_->listApiKeys(other_org_.id));
  EXPECT_TRUE(other_listed.empty());

  // Another organization cannot revoke it.
  EXPECT_THAT(store_->revokeApiKey(other_org_.id, created.id), StatusIs(StatusCode::kNotFound));
  const SystemTime first_revocation = clock_.now();
  ASSERT_OK_AND_ASSIGN(ApiKey revoked, store_->revokeApiKey(org_.id, created.id));
  EXPECT_EQ(revoked.revoked_at, first_revocation);
  clock_.advance(1h);
  ASSERT_OK_AND_ASSIGN(ApiKey again, store_->revokeApiKey(org_.id, created.id));
  EXPECT_EQ(again.revoked_at, first_revocation);
}

TEST_P(MetaStoreConformance, ApiKeyConstraints) {
  ApiKey k{.organization_id = org_.id, .name = "ci", .key_hash = generateApiKey().hash};
  ASSERT_OK(store_->createApiKey(k));
  ApiKey same_name = k;
  same_name.key_hash = generateApiKey().hash;
  EXPECT_THAT(store_->createApiKey(same_name), StatusIs(StatusCode::kAlreadyExists));
  same_name.organization_id = other_org_.id;
  EXPECT_OK(store_->createApiKey(same_name));
  ApiKey same_hash = k;
  same_hash.name = "other";
  EXPECT_THAT(store_->createApiKey(same_hash), StatusIs(StatusCode::kAlreadyExists));
  ApiKey orphan{.organization_id = uuidV4(), .name = "x", .key_hash = generateApiKey().hash};
  EXPECT_THAT(store_->createApiKey(orphan), StatusIs(StatusCode::kNotFound));
  ApiKey no_hash{.organization_id = org_.id, .name = "y"};
  EXPECT_THAT(store_->createApiKey(no_hash), StatusIs(StatusCode::kInvalidArgument));
}

TEST_P(MetaStoreConformance, AuthenticateApiKeyReportsExpiryAndRevocation) {
  GeneratedApiKey good = generateApiKey();
  GeneratedApiKey expiring = generateApiKey();
  ASSERT_OK_AND_ASSIGN(ApiKey good_key,
                       store_->createApiKey(ApiKey{
                           .organization_id = org_.id, .name = "good", .key_hash = good.hash}));
  ASSERT_OK(store_->createApiKey(ApiKey{.organization_id = org_.id,
                                        .name = "expiring",
                                        .key_hash = expiring.hash,
                                        .expires_at = clock_.now() + 1h}));
  ASSERT_OK_AND_ASSIGN(ApiKey who, authenticateApiKey(*store_, good.key, clock_.now()));
  EXPECT_EQ(who.organization_id, org_.id);
  EXPECT_OK(authenticateApiKey(*store_, expiring.key, clock_.now()));

  clock_.advance(2h);
  EXPECT_THAT(authenticateApiKey(*store_, expiring.key, clock_.now()),
              StatusIs(StatusCode::kUnauthenticated, "This API key has expired"));
  ASSERT_OK(store_->revokeApiKey(org_.id, good_key.id));
  EXPECT_THAT(authenticateApiKey(*store_, good.key, clock_.now()),
              StatusIs(StatusCode::kUnauthenticated, "This API key has been revoked"));
  EXPECT_THAT(authenticateApiKey(*store_, generateApiKey().key, clock_.now()),
              StatusIs(StatusCode::kUnauthenticated, "Invalid API key"));
  EXPECT_THAT(authenticateApiKey(*store_, "", clock_.now()),
              StatusIs(StatusCode::kUnauthenticated, "Invalid API key"));

  ASSERT_OK(store_->touchApiKey(good_key.id, clock_.now()));
  ASSERT_OK_AND_ASSIGN(ApiKey touched, store_->getApiKeyByHash(good.hash));
  EXPECT_EQ(touched.last_used_at, clock_.now());
  EXPECT_THAT(store_->touchApiKey(uuidV4(), clock_.now()), StatusIs(StatusCode::kNotFound));
}

// ---- Snapshots: create, get, names ---------------------------------------------------------

TEST_P(MetaStoreConformance, SnapshotRoundTripsEveryField) {
  Snapshot s = snapshotNamed("team/app:1.0");
  s.image_name = "";
  s.state = SnapshotState::kPending;
  s.hidden = false;
  s.size_bytes = 123456789;
  s.entrypoint = std::vector<std::string>{"sleep", "infinity"};
  s.cpu = 2.5;
  s.gpu = 1;
  s.gpu_type = "H100";
  s.mem = 4;
  s.disk = 10;
  s.last_used_at = clock_.now() - 1h;
  s.build_info = BuildInfo{.dockerfile_content = "FROM alpine:3.19\nRUN echo hi\n",
                           .context_hashes = {"ce59da7c62f89381d47e17c745ff7194"},
                           .snapshot_ref = "daytona-69a5:daytona"};
  s.region_ids = {"us", "eu"};
  s.initial_runner_id = "runner-1";
  s.ref = "registry:6000/daytona/daytona-69a5:daytona";
  s.sandbox_class = "container";
  s.source_sandbox_id = "sbx-1";
  ASSERT_OK_AND_ASSIGN(Snapshot created, store_->createSnapshot(s));
  EXPECT_TRUE(isUuid(created.id));
  EXPECT_EQ(created.created_at, clock_.now());
  EXPECT_EQ(created.updated_at, clock_.now());
  EXPECT_EQ(created.state_entered_at, clock_.now());

  ASSERT_OK_AND_ASSIGN(Snapshot r, store_->getSnapshot(created.id));
  EXPECT_EQ(r.id, created.id);
  EXPECT_EQ(r.organization_id, org_.id);
  EXPECT_FALSE(r.general);
  EXPECT_FALSE(r.hidden);
  EXPECT_EQ(r.name, "team/app:1.0");
  EXPECT_EQ(r.image_name, "");
  EXPECT_EQ(r.state, SnapshotState::kPending);
  EXPECT_EQ(r.size_bytes, 123456789);
  EXPECT_EQ(r.entrypoint, s.entrypoint);
  EXPECT_EQ(r.cpu, 2.5);
  EXPECT_EQ(r.gpu, 1);
  EXPECT_EQ(r.gpu_type, "H100");
  EXPECT_EQ(r.mem, 4);
  EXPECT_EQ(r.disk, 10);
  EXPECT_FALSE(r.error_reason.has_value());
  EXPECT_EQ(r.created_at, created.created_at);
  EXPECT_EQ(r.updated_at, created.updated_at);
  EXPECT_EQ(r.last_used_at, s.last_used_at);
  ASSERT_TRUE(r.build_info.has_value());
  EXPECT_EQ(r.build_info->dockerfile_content, s.build_info->dockerfile_content);
  EXPECT_EQ(r.build_info->context_hashes, s.build_info->context_hashes);
  EXPECT_EQ(r.build_info->snapshot_ref, "daytona-69a5:daytona");
  EXPECT_EQ(r.build_info->created_at, clock_.now());
  EXPECT_EQ(r.region_ids, s.region_ids);
  EXPECT_EQ(r.initial_runner_id, "runner-1");
  EXPECT_EQ(r.ref, s.ref);
  EXPECT_EQ(r.sandbox_class, "container");
  EXPECT_EQ(r.source_sandbox_id, "sbx-1");
  EXPECT_EQ(r.state_entered_at, created.state_entered_at);

  // Defaults and nulls survive too.
  ASSERT_OK_AND_ASSIGN(Snapshot plain, store_->createSnapshot(snapshotNamed("plain")));
  ASSERT_OK_AND_ASSIGN(Snapshot p, store_->getSnapshot(plain.id));
  EXPECT_FALSE(p.size_bytes.has_value());
  EXPECT_FALSE(p.entrypoint.has_value());
  EXPECT_FALSE(p.build_info.has_value());
  EXPECT_FALSE(p.last_used_at.has_value());
  EXPECT_FALSE(p.gpu_type.has_value());
  EXPECT_TRUE(p.region_ids.empty());
  EXPECT_EQ(p.cpu, 1);
  EXPECT_EQ(p.gpu, 0);
  EXPECT_EQ(p.mem, 1);
  EXPECT_EQ(p.disk, 3);
}

TEST_P(MetaStoreConformance, SnapshotCreateRejectsBadRecords) {
  EXPECT_THAT(store_->createSnapshot(snapshotNamed("")), StatusIs(StatusCode::kInvalidArgument));
  Snapshot both = generalNamed("g");
  both.organization_id = org_.id;
  EXPECT_THAT(store_->createSnapshot(both), StatusIs(StatusCode::kInvalidArgument));
  Snapshot neither = snapshotNamed("n");
  neither.organization_id.reset();
  EXPECT_THAT(store_->createSnapshot(neither), StatusIs(StatusCode::kInvalidArgument));
  Snapshot error_without_reason = snapshotNamed("e");
  error_without_reason.state = SnapshotState::kError;
  EXPECT_THAT(store_->createSnapshot(error_without_reason),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("errorReason")));
  Snapshot orphan = snapshotNamed("o");
  orphan.organization_id = uuidV4();
  EXPECT_THAT(store_->createSnapshot(orphan), StatusIs(StatusCode::kNotFound));
}

TEST_P(MetaStoreConformance, DuplicateNameInOrganizationIsAlreadyExists) {
  mustCreate(snapshotNamed("web"));
  EXPECT_THAT(store_->createSnapshot(snapshotNamed("web")),
              StatusIs(StatusCode::kAlreadyExists,
                       "Snapshot with name \"web\" already exists for this organization"));
  // Names are per organization; general snapshots have their own namespace.
  EXPECT_OK(store_->createSnapshot(snapshotNamed("web", &other_org_)));
  EXPECT_OK(store_->createSnapshot(generalNamed("web")));
  EXPECT_THAT(store_->createSnapshot(generalNamed("web")), StatusIs(StatusCode::kAlreadyExists));
  // Names are case-sensitive.
  EXPECT_OK(store_->createSnapshot(snapshotNamed("WEB")));
}

TEST_P(MetaStoreConformance, ConcurrentCreatesWithTheSameNameHaveOneWinner) {
  constexpr int kThreads = 8;
  std::atomic<int> ok{0}, exists{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      auto r = store_->createSnapshot(snapshotNamed("race"));
      if (r.ok()) {
        ++ok;
      } else if (r.status().code() == StatusCode::kAlreadyExists) {
        ++exists;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(exists.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
}

TEST_P(MetaStoreConformance, ConcurrentCreatesFromTwoHandlesHaveOneWinner) {
  auto second = openAgain();
  ASSERT_NE(second, nullptr);
  std::atomic<int> ok{0}, exists{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    MetaStore* store = i % 2 == 0 ? store_.get() : second.get();
    threads.emplace_back([&, store] {
      auto r = store->createSnapshot(snapshotNamed("race2"));
      if (r.ok()) ++ok;
      if (r.status().code() == StatusCode::kAlreadyExists) ++exists;
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(exists.load(), 5);
}

TEST_P(MetaStoreConformance, RemovingFreesTheNameAtOnce) {
  Snapshot old = mustCreate(snapshotNamed("app"));
  clock_.advance(1s);
  ASSERT_OK_AND_ASSIGN(Snapshot removing, store_->markSnapshotRemoving(old.id));
  EXPECT_EQ(removing.state, SnapshotState::kRemoving);
  EXPECT_EQ(removing.state_entered_at, clock_.now());

  EXPECT_THAT(store_->findSnapshotByName(org_.id, "app"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(resolveSnapshot(*store_, org_.id, "app"),
              StatusIs(StatusCode::kNotFound, "Snapshot app not found"));
  ASSERT_OK_AND_ASSIGN(Snapshot fresh, store_->createSnapshot(snapshotNamed("app")));
  EXPECT_NE(fresh.id, old.id);
  ASSERT_OK_AND_ASSIGN(Snapshot by_name, store_->findSnapshotByName(org_.id, "app"));
  EXPECT_EQ(by_name.id, fresh.id);

  // The old row lingers, by id, until removal finishes.
  ASSERT_OK_AND_ASSIGN(Snapshot lingering, store_->getSnapshot(old.id));
  EXPECT_EQ(lingering.state, SnapshotState::kRemoving);
  EXPECT_THAT(store_->markSnapshotRemoving(old.id),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("already being removed")));
  // Deleting the new one too while the old lingers: two removing rows with one name is fine.
  ASSERT_OK(store_->markSnapshotRemoving(fresh.id));
  ASSERT_OK(store_->deleteSnapshot(old.id));
  EXPECT_THAT(store_->getSnapshot(old.id), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->deleteSnapshot(old.id), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->markSnapshotRemoving(uuidV4()), StatusIs(StatusCode::kNotFound));
}

// ---- Snapshots: state machine ---------------------------------------------------------------

TEST_P(MetaStoreConformance, UpdateStateIsCompareAndSet) {
  Snapshot s = mustCreate(snapshotNamed("cas"));
  clock_.advance(10s);
  ASSERT_OK_AND_ASSIGN(
      Snapshot building,
      store_->updateSnapshotState(s.id, SnapshotState::kPending, SnapshotState::kBuilding,
                                  SnapshotUpdate{.initial_runner_id = "local"}));
  EXPECT_EQ(building.state, SnapshotState::kBuilding);
  EXPECT_EQ(building.initial_runner_id, "local");
  EXPECT_EQ(building.state_entered_at, clock_.now());
  EXPECT_EQ(building.updated_at, clock_.now());
  EXPECT_EQ(building.created_at, s.created_at);
  EXPECT_EQ(building.image_name, "ubuntu:22.04");

  // Lost race: the state is no longer the expected one.
  EXPECT_THAT(
      store_->updateSnapshotState(s.id, SnapshotState::kPending, SnapshotState::kPulling, {}),
      StatusIs(StatusCode::kFailedPrecondition, HasSubstr("building")));
  EXPECT_THAT(
      store_->updateSnapshotState(uuidV4(), SnapshotState::kPending, SnapshotState::kBuilding, {}),
      StatusIs(StatusCode::kNotFound));

  // Same-state update changes fields but not state_entered_at.
  const SystemTime entered = building.state_entered_at;
  clock_.advance(10s);
  ASSERT_OK_AND_ASSIGN(Snapshot same, store_->updateSnapshotState(
                                          s.id, SnapshotState::kBuilding, SnapshotState::kBuilding,
                                          SnapshotUpdate{.ref = "reg/daytona/x:daytona"}));
  EXPECT_EQ(same.state_entered_at, entered);
  EXPECT_EQ(same.updated_at, clock_.now());
  EXPECT_EQ(same.ref, "reg/daytona/x:daytona");
  EXPECT_EQ(same.initial_runner_id, "local");

  ASSERT_OK_AND_ASSIGN(
      Snapshot active,
      store_->updateSnapshotState(s.id, SnapshotState::kBuilding, SnapshotState::kActive,
                                  SnapshotUpdate{.size_bytes = 1 << 20,
                                                 .entrypoint = std::vector<std::string>{"/bin/sh"},
                                                 .last_used_at = clock_.now()}));
  EXPECT_EQ(active.size_bytes, 1 << 20);
  EXPECT_EQ(active.entrypoint, std::vector<std::string>{"/bin/sh"});
  EXPECT_EQ(active.last_used_at, clock_.now());
  ASSERT_OK_AND_ASSIGN(Snapshot reread, store_->getSnapshot(s.id));
  EXPECT_EQ(reread.state, SnapshotState::kActive);
  EXPECT_EQ(reread.ref, "reg/daytona/x:daytona");
}

TEST_P(MetaStoreConformance, ErrorReasonOnlyInErrorStates) {
  Snapshot s = mustCreate(snapshotNamed("err"));
  EXPECT_THAT(store_->updateSnapshotState(s.id, SnapshotState::kPending, SnapshotState::kError, {}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("errorReason")));
  EXPECT_THAT(store_->updateSnapshotState(s.id, SnapshotState::kPending, SnapshotState::kError,
                                          SnapshotUpdate{.error_reason = ""}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->updateSnapshotState(s.id, SnapshotState::kPending, SnapshotState::kActive,
                                          SnapshotUpdate{.error_reason = "x"}),
              StatusIs(StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(
      Snapshot failed,
      store_->updateSnapshotState(s.id, SnapshotState::kPending, SnapshotState::kError,
                                  SnapshotUpdate{.error_reason = "step 2/3 RUN make: exit 2"}));
  EXPECT_EQ(failed.error_reason, "step 2/3 RUN make: exit 2");
  // error → error keeps the reason when none is given.
  ASSERT_OK_AND_ASSIGN(Snapshot still, store_->updateSnapshotState(s.id, SnapshotState::kError,
                                                                   SnapshotState::kError, {}));
  EXPECT_EQ(still.error_reason, "step 2/3 RUN make: exit 2");
  // Leaving the error state clears it.
  ASSERT_OK_AND_ASSIGN(Snapshot retried, store_->updateSnapshotState(s.id, SnapshotState::kError,
                                                                     SnapshotState::kPending, {}));
  EXPECT_FALSE(retried.error_reason.has_value());
  ASSERT_OK_AND_ASSIGN(Snapshot reread, store_->getSnapshot(s.id));
  EXPECT_FALSE(reread.error_reason.has_value());
}

TEST_P(MetaStoreConformance, ConcurrentTransitionsHaveOneWinner) {
  Snapshot s = mustCreate(snapshotNamed("contended"));
  constexpr int kThreads = 8;
  std::atomic<int> ok{0}, lost{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto r = store_->updateSnapshotState(
          s.id, SnapshotState::kPending, SnapshotState::kBuilding,
          SnapshotUpdate{.initial_runner_id = "worker-" + std::to_string(i)});
      if (r.ok()) ++ok;
      if (r.status().code() == StatusCode::kFailedPrecondition) ++lost;
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(lost.load(), kThreads - 1);
}

TEST_P(MetaStoreConformance, RemovalBeatsARacingWorker) {
  Snapshot s = mustCreate(snapshotNamed("doomed"));
  ASSERT_OK(
      store_->updateSnapshotState(s.id, SnapshotState::kPending, SnapshotState::kBuilding, {}));
  ASSERT_OK(store_->markSnapshotRemoving(s.id));
  // The worker finishing the build loses: the snapshot was deleted meanwhile.
  EXPECT_THAT(
      store_->updateSnapshotState(s.id, SnapshotState::kBuilding, SnapshotState::kActive, {}),
      StatusIs(StatusCode::kFailedPrecondition, HasSubstr("removing")));
}

TEST_P(MetaStoreConformance, CompareAndSetIntoRemovingFreesTheName) {
  Snapshot s = mustCreate(snapshotNamed("cas-remove"));
  ASSERT_OK_AND_ASSIGN(
      Snapshot removing,
      store_->updateSnapshotState(s.id, SnapshotState::kPending, SnapshotState::kRemoving, {}));
  EXPECT_EQ(removing.state, SnapshotState::kRemoving);
  EXPECT_OK(store_->createSnapshot(snapshotNamed("cas-remove")));
  // A removing snapshot is still reachable by id for its organization (spec §0.5), not others.
  ASSERT_OK_AND_ASSIGN(Snapshot by_id, resolveSnapshot(*store_, org_.id, s.id));
  EXPECT_EQ(by_id.state, SnapshotState::kRemoving);
  EXPECT_THAT(resolveSnapshot(*store_, other_org_.id, s.id), StatusIs(StatusCode::kNotFound));
}

TEST_P(MetaStoreConformance, TouchSnapshotSetsLastUsed) {
  Snapshot s = mustCreate(snapshotNamed("touched"));
  clock_.advance(1min);
  ASSERT_OK(store_->touchSnapshot(s.id, clock_.now()));
  ASSERT_OK_AND_ASSIGN(Snapshot r, store_->getSnapshot(s.id));
  EXPECT_EQ(r.last_used_at, clock_.now());
  EXPECT_EQ(r.state, SnapshotState::kPending);
  EXPECT_THAT(store_->touchSnapshot(uuidV4(), clock_.now()), StatusIs(StatusCode::kNotFound));
}

// ---- Snapshots: resolution and isolation (§1.3) --------------------------------------------

TEST_P(MetaStoreConformance, ResolveFollowsSpecOrder) {
  Snapshot general = mustCreate(generalNamed("base"));
  Snapshot own = mustCreate(snapshotNamed("base"));
  Snapshot only_general = mustCreate(generalNamed("python:3.12"));
  Snapshot foreign = mustCreate(snapshotNamed("secret", &other_org_));

  ASSERT_OK_AND_ASSIGN(Snapshot r1, resolveSnapshot(*store_, org_.id, "base"));
  EXPECT_EQ(r1.id, own.id) << "the organization's own snapshot wins over a general one";
  ASSERT_OK_AND_ASSIGN(Snapshot r2, resolveSnapshot(*store_, other_org_.id, "base"));
  EXPECT_EQ(r2.id, general.id);
  ASSERT_OK_AND_ASSIGN(Snapshot r3, resolveSnapshot(*store_, org_.id, "python:3.12"));
  EXPECT_EQ(r3.id, only_general.id);
  ASSERT_OK_AND_ASSIGN(Snapshot r4, resolveSnapshot(*store_, org_.id, own.id));
  EXPECT_EQ(r4.id, own.id);
  ASSERT_OK_AND_ASSIGN(Snapshot r5, resolveSnapshot(*store_, org_.id, toUpperAscii(own.id)));
  EXPECT_EQ(r5.id, own.id);
  ASSERT_OK_AND_ASSIGN(Snapshot r6, resolveSnapshot(*store_, org_.id, general.id));
  EXPECT_EQ(r6.id, general.id);

  // Another organization's snapshot: the same 404 as an unknown one, by name and by id.
  EXPECT_THAT(resolveSnapshot(*store_, org_.id, "secret"),
              StatusIs(StatusCode::kNotFound, "Snapshot secret not found"));
  EXPECT_THAT(resolveSnapshot(*store_, org_.id, foreign.id),
              StatusIs(StatusCode::kNotFound, "Snapshot " + foreign.id + " not found"));
  const std::string unknown = uuidV4();
  EXPECT_THAT(resolveSnapshot(*store_, org_.id, unknown),
              StatusIs(StatusCode::kNotFound, "Snapshot " + unknown + " not found"));
  EXPECT_THAT(getSnapshotForOrganization(*store_, org_.id, foreign.id),
              StatusIs(StatusCode::kNotFound, "Snapshot " + foreign.id + " not found"));
  ASSERT_OK_AND_ASSIGN(Snapshot scoped, getSnapshotForOrganization(*store_, org_.id, general.id));
  EXPECT_EQ(scoped.id, general.id);

  // A name that looks like an id is still looked up as a name first.
  Snapshot uuid_named = mustCreate(snapshotNamed(foreign.id));
  ASSERT_OK_AND_ASSIGN(Snapshot r7, resolveSnapshot(*store_, org_.id, foreign.id));
  EXPECT_EQ(r7.id, uuid_named.id);
}

// ---- Snapshots: listing (§1.4) --------------------------------------------------------------

TEST_P(MetaStoreConformance, ListShowsOwnAndVisibleGeneralOnly) {
  mustCreate(generalNamed("g-visible"));
  mustCreate(generalNamed("g-hidden", /*hidden=*/true));
  clock_.advance(1s);
  mustCreate(snapshotNamed("mine"));
  mustCreate(snapshotNamed("theirs", &other_org_));

  ASSERT_OK_AND_ASSIGN(SnapshotPage page, store_->listSnapshots(org_.id, {}));
  EXPECT_EQ(page.total, 2);
  // Non-general first, whatever the sort.
  EXPECT_THAT(names(page.items), ElementsAre("mine", "g-visible"));
  SnapshotListQuery by_name{.sort = SnapshotSortField::kName, .order = SortOrder::kAsc};
  ASSERT_OK_AND_ASSIGN(SnapshotPage sorted, store_->listSnapshots(org_.id, by_name));
  EXPECT_THAT(names(sorted.items), ElementsAre("mine", "g-visible"));

  ASSERT_OK_AND_ASSIGN(SnapshotPage theirs, store_->listSnapshots(other_org_.id, {}));
  EXPECT_THAT(names(theirs.items), ElementsAre("theirs", "g-visible"));
}

TEST_P(MetaStoreConformance, ListPagesWithTotal) {
  for (int i = 0; i < 25; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "snap-%02d", i);
    mustCreate(snapshotNamed(name));
    clock_.advance(1s);
  }
  SnapshotListQuery q{
      .page = 1, .limit = 10, .sort = SnapshotSortField::kName, .order = SortOrder::kAsc};
  ASSERT_OK_AND_ASSIGN(SnapshotPage p1, store_->listSnapshots(org_.id, q));
  EXPECT_EQ(p1.total, 25);
  ASSERT_EQ(p1.items.size(), 10u);
  EXPECT_EQ(p1.items.front().name, "snap-00");
  q.page = 3;
  ASSERT_OK_AND_ASSIGN(SnapshotPage p3, store_->listSnapshots(org_.id, q));
  EXPECT_EQ(p3.total, 25);
  EXPECT_THAT(names(p3.items), ElementsAre("snap-20", "snap-21", "snap-22", "snap-23", "snap-24"));
  q.page = 4;
  ASSERT_OK_AND_ASSIGN(SnapshotPage p4, store_->listSnapshots(org_.id, q));
  EXPECT_EQ(p4.total, 25);
  EXPECT_TRUE(p4.items.empty());
  // Default: 100 per page, everything.
  ASSERT_OK_AND_ASSIGN(SnapshotPage all, store_->listSnapshots(org_.id, {}));
  EXPECT_EQ(all.items.size(), 25u);
}

TEST_P(MetaStoreConformance, ListSortsNullsLastThenCreatedAtDesc) {
  Snapshot a = mustCreate(snapshotNamed("a"));  // never used
  clock_.advance(1s);
  Snapshot b = mustCreate(snapshotNamed("b"));  // never used, newer than a
  clock_.advance(1s);
  Snapshot c = mustCreate(snapshotNamed("c"));
  clock_.advance(1s);
  Snapshot d = mustCreate(snapshotNamed("d"));
  ASSERT_OK(store_->touchSnapshot(c.id, clock_.now() + 10s));
  ASSERT_OK(store_->touchSnapshot(d.id, clock_.now() + 20s));

  // Default sort: lastUsedAt DESC, NULLS LAST, ties by createdAt DESC.
  ASSERT_OK_AND_ASSIGN(SnapshotPage desc, store_->listSnapshots(org_.id, {}));
  EXPECT_THAT(names(desc.items), ElementsAre("d", "c", "b", "a"));
  ASSERT_OK_AND_ASSIGN(SnapshotPage asc,
                       store_->listSnapshots(org_.id, {.order = SortOrder::kAsc}));
  EXPECT_THAT(names(asc.items), ElementsAre("c", "d", "b", "a"));

  ASSERT_OK_AND_ASSIGN(SnapshotPage created_asc,
                       store_->listSnapshots(org_.id, {.sort = SnapshotSortField::kCreatedAt,
                                                       .order = SortOrder::kAsc}));
  EXPECT_THAT(names(created_asc.items), ElementsAre("a", "b", "c", "d"));
  ASSERT_OK_AND_ASSIGN(SnapshotPage name_desc,
                       store_->listSnapshots(org_.id, {.sort = SnapshotSortField::kName}));
  EXPECT_THAT(names(name_desc.items), ElementsAre("d", "c", "b", "a"));

  // State sort: ties (same state) fall back to createdAt DESC.
  ASSERT_OK(store_->updateSnapshotState(a.id, SnapshotState::kPending, SnapshotState::kActive, {}));
  ASSERT_OK_AND_ASSIGN(SnapshotPage by_state,
                       store_->listSnapshots(
                           org_.id, {.sort = SnapshotSortField::kState, .order = SortOrder::kAsc}));
  EXPECT_THAT(names(by_state.items), ElementsAre("a", "d", "c", "b"));
  (void)b;
}

TEST_P(MetaStoreConformance, ListFiltersNameCaseInsensitivelyAndLiterally) {
  mustCreate(snapshotNamed("Web-Server"));
  mustCreate(snapshotNamed("webhook"));
  mustCreate(snapshotNamed("db"));
  mustCreate(snapshotNamed("100%_done"));
  mustCreate(snapshotNamed("1000-done"));
  ASSERT_OK_AND_ASSIGN(SnapshotPage web,
                       store_->listSnapshots(org_.id, {.name_contains = "WEB",
                                                       .sort = SnapshotSortField::kName,
                                                       .order = SortOrder::kAsc}));
  EXPECT_THAT(names(web.items), ElementsAre("Web-Server", "webhook"));
  EXPECT_EQ(web.total, 2);
  // `%` and `_` are plain characters, not wildcards.
  ASSERT_OK_AND_ASSIGN(SnapshotPage pct, store_->listSnapshots(org_.id, {.name_contains = "0%_"}));
  EXPECT_THAT(names(pct.items), ElementsAre("100%_done"));
  ASSERT_OK_AND_ASSIGN(SnapshotPage none, store_->listSnapshots(org_.id, {.name_contains = "zzz"}));
  EXPECT_EQ(none.total, 0);
  EXPECT_TRUE(none.items.empty());
}

TEST_P(MetaStoreConformance, ListFiltersBySourceSandboxAndHidesRemoving) {
  Snapshot from = snapshotNamed("from-sbx");
  from.source_sandbox_id = "sbx-9";
  mustCreate(from);
  Snapshot gone = mustCreate(snapshotNamed("gone"));
  ASSERT_OK(store_->markSnapshotRemoving(gone.id));
  ASSERT_OK_AND_ASSIGN(SnapshotPage by_src,
                       store_->listSnapshots(org_.id, {.source_sandbox_id = "sbx-9"}));
  EXPECT_THAT(names(by_src.items), ElementsAre("from-sbx"));
  ASSERT_OK_AND_ASSIGN(SnapshotPage live, store_->listSnapshots(org_.id, {}));
  EXPECT_THAT(names(live.items), ElementsAre("from-sbx"));
  ASSERT_OK_AND_ASSIGN(SnapshotPage with_removing,
                       store_->listSnapshots(org_.id, {.include_removing = true}));
  EXPECT_EQ(with_removing.total, 2);
}

TEST_P(MetaStoreConformance, ListRejectsBadPaging) {
  EXPECT_THAT(store_->listSnapshots(org_.id, {.page = 0}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("page")));
  EXPECT_THAT(store_->listSnapshots(org_.id, {.limit = 0}),
              StatusIs(StatusCode::kInvalidArgument, "limit must not be less than 1"));
  EXPECT_THAT(store_->listSnapshots(org_.id, {.limit = 201}),
              StatusIs(StatusCode::kInvalidArgument, "limit must not be greater than 200"));
  EXPECT_OK(store_->listSnapshots(org_.id, {.limit = 200}));
}

TEST_P(MetaStoreConformance, FindSnapshotsForDeadlinesAndRefs) {
  Snapshot old_pending = mustCreate(snapshotNamed("old-pending"));
  clock_.advance(20min);
  Snapshot new_pending = mustCreate(snapshotNamed("new-pending"));
  Snapshot building = mustCreate(snapshotNamed("building"));
  ASSERT_OK(store_->updateSnapshotState(building.id, SnapshotState::kPending,
                                        SnapshotState::kBuilding,
                                        SnapshotUpdate{.ref = "reg/x:daytona"}));
  Snapshot same_ref = snapshotNamed("same-ref");
  same_ref.ref = "reg/x:daytona";
  same_ref.state = SnapshotState::kActive;
  mustCreate(same_ref);

  ASSERT_OK_AND_ASSIGN(auto expired,
                       store_->findSnapshots({.states = {SnapshotState::kPending},
                                              .state_entered_before = clock_.now() - 15min}));
  EXPECT_THAT(names(expired), ElementsAre("old-pending"));
  ASSERT_OK_AND_ASSIGN(auto pending, store_->findSnapshots({.states = {SnapshotState::kPending}}));
  EXPECT_EQ(pending.size(), 2u);
  ASSERT_OK_AND_ASSIGN(auto by_ref, store_->findSnapshots({.ref = "reg/x:daytona"}));
  EXPECT_EQ(by_ref.size(), 2u);
  ASSERT_OK_AND_ASSIGN(auto active_ref, store_->findSnapshots({.states = {SnapshotState::kActive},
                                                               .ref = "reg/x:daytona"}));
  EXPECT_THAT(names(active_ref), ElementsAre("same-ref"));
  ASSERT_OK_AND_ASSIGN(auto other, store_->findSnapshots({.organization_id = other_org_.id}));
  EXPECT_TRUE(other.empty());
  // Unused since: last_used_at, or created_at when never used.
  ASSERT_OK_AND_ASSIGN(auto idle, store_->findSnapshots({.last_used_before = clock_.now() - 1min}));
  EXPECT_THAT(names(idle), ElementsAre("old-pending"));
  ASSERT_OK_AND_ASSIGN(auto limited, store_->findSnapshots({.limit = 1}));
  EXPECT_EQ(limited.size(), 1u);
  (void)old_pending;
  (void)new_pending;
}

// ---- Builds ---------------------------------------------------------------------------------

TEST_P(MetaStoreConformance, BuildRecordsAreCreatedOnce) {
  const std::string ref =
      "daytona-69a5124d7f362ef7fdfd04928ceacfd1efc5f509d5c974d8fe48a969b9a88156:daytona";
  ASSERT_OK_AND_ASSIGN(auto first, store_->getOrCreateBuild(ref));
  EXPECT_TRUE(first.created);
  EXPECT_EQ(first.build.state, BuildState::kPending);
  ASSERT_OK_AND_ASSIGN(auto second, store_->getOrCreateBuild(ref));
  EXPECT_FALSE(second.created);

  std::atomic<int> creators{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r = store_->getOrCreateBuild("daytona-race:daytona");
      if (r.ok() && r->created) ++creators;
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(creators.load(), 1);
  EXPECT_THAT(store_->getOrCreateBuild(""), StatusIs(StatusCode::kInvalidArgument));
}

TEST_P(MetaStoreConformance, BuildStateIsCompareAndSet) {
  const std::string ref = "daytona-abc:daytona";
  ASSERT_OK(store_->getOrCreateBuild(ref));
  ASSERT_OK(store_->updateBuildState(ref, BuildState::kPending, BuildState::kBuilding, {}));
  EXPECT_THAT(store_->updateBuildState(ref, BuildState::kPending, BuildState::kBuilding, {}),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("building")));
  EXPECT_THAT(store_->updateBuildState(ref, BuildState::kBuilding, BuildState::kFailed, {}),
              StatusIs(StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(
      Build ready, store_->updateBuildState(
                       ref, BuildState::kBuilding, BuildState::kReady,
                       BuildUpdate{.image_digest = "sha256:" + std::string(64, 'a'),
                                   .size_bytes = 4096,
                                   .entrypoint = std::vector<std::string>{"sleep", "infinity"}}));
  EXPECT_EQ(ready.state, BuildState::kReady);
  ASSERT_OK_AND_ASSIGN(Build back, store_->getBuild(ref));
  EXPECT_EQ(back.image_digest, "sha256:" + std::string(64, 'a'));
  EXPECT_EQ(back.size_bytes, 4096);
  EXPECT_EQ(back.entrypoint, (std::vector<std::string>{"sleep", "infinity"}));
  EXPECT_FALSE(back.error_reason.has_value());

  ASSERT_OK(store_->getOrCreateBuild("daytona-bad:daytona"));
  ASSERT_OK_AND_ASSIGN(
      Build failed,
      store_->updateBuildState("daytona-bad:daytona", BuildState::kPending, BuildState::kFailed,
                               BuildUpdate{.error_reason = "pull denied"}));
  EXPECT_EQ(failed.error_reason, "pull denied");
  ASSERT_OK_AND_ASSIGN(auto all, store_->listBuilds());
  EXPECT_EQ(all.size(), 2u);
  ASSERT_OK(store_->deleteBuild("daytona-bad:daytona"));
  EXPECT_THAT(store_->getBuild("daytona-bad:daytona"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->deleteBuild("daytona-bad:daytona"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->updateBuildState("nope", BuildState::kPending, BuildState::kBuilding, {}),
              StatusIs(StatusCode::kNotFound));
}

// ---- Jobs -----------------------------------------------------------------------------------

TEST_P(MetaStoreConformance, JobLifecycle) {
  ASSERT_OK_AND_ASSIGN(
      Job queued, store_->enqueueJob(
                      JobSpec{.kind = "build", .payload = R"({"x":1})", .snapshot_id = "snap-1"}));
  EXPECT_GT(queued.id, 0);
  EXPECT_EQ(queued.state, JobState::kQueued);
  EXPECT_EQ(queued.attempts, 0);
  ASSERT_OK_AND_ASSIGN(std::int64_t depth, store_->countJobs(JobState::kQueued));
  EXPECT_EQ(depth, 1);

  ASSERT_OK_AND_ASSIGN(auto claimed, store_->claimJob("worker-a", {}, 30s));
  ASSERT_TRUE(claimed.has_value());
  EXPECT_EQ(claimed->id, queued.id);
  EXPECT_EQ(claimed->state, JobState::kRunning);
  EXPECT_EQ(claimed->owner, "worker-a");
  EXPECT_EQ(claimed->attempts, 1);
  EXPECT_EQ(claimed->lease_expires_at, clock_.now() + 30s);
  EXPECT_EQ(claimed->payload, R"({"x":1})");
  EXPECT_EQ(claimed->snapshot_id, "snap-1");
  ASSERT_OK_AND_ASSIGN(auto nothing, store_->claimJob("worker-b", {}, 30s));
  EXPECT_FALSE(nothing.has_value());

  EXPECT_THAT(store_->completeJob(queued.id, "worker-b"),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("worker-a")));
  ASSERT_OK_AND_ASSIGN(Job done, store_->completeJob(queued.id, "worker-a"));
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_THAT(store_->completeJob(queued.id, "worker-a"),
              StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(store_->getJob(99999), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->enqueueJob(JobSpec{.kind = ""}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->claimJob("", {}, 30s), StatusIs(StatusCode::kInvalidArgument));
}

TEST_P(MetaStoreConformance, ClaimIsFifoAndHonoursKindsAndRunAfter) {
  ASSERT_OK_AND_ASSIGN(
      Job later, store_->enqueueJob(JobSpec{.kind = "build", .run_after = clock_.now() + 1min}));
  ASSERT_OK_AND_ASSIGN(Job pull, store_->enqueueJob(JobSpec{.kind = "pull"}));
  ASSERT_OK_AND_ASSIGN(Job build1, store_->enqueueJob(JobSpec{.kind = "build"}));
  ASSERT_OK_AND_ASSIGN(Job build2, store_->enqueueJob(JobSpec{.kind = "build"}));

  ASSERT_OK_AND_ASSIGN(auto a, store_->claimJob("w", {"build"}, 30s));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->id, build1.id);
  ASSERT_OK_AND_ASSIGN(auto b, store_->claimJob("w", {"build", "remove"}, 30s));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->id, build2.id);
  ASSERT_OK_AND_ASSIGN(auto c, store_->claimJob("w", {"build"}, 30s));
  EXPECT_FALSE(c.has_value()) << "the delayed job is not claimable yet";
  ASSERT_OK_AND_ASSIGN(auto d, store_->claimJob("w", {}, 30s));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->id, pull.id);
  clock_.advance(1min);
  ASSERT_OK_AND_ASSIGN(auto e, store_->claimJob("w", {"build"}, 30s));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->id, later.id);
}

TEST_P(MetaStoreConformance, ExpiredLeaseIsTakenOverByAnotherWorker) {
  ASSERT_OK_AND_ASSIGN(Job job, store_->enqueueJob(JobSpec{.kind = "build"}));
  ASSERT_OK_AND_ASSIGN(auto claimed, store_->claimJob("worker-a", {}, 30s));
  ASSERT_TRUE(claimed.has_value());

  clock_.advance(20s);
  ASSERT_OK_AND_ASSIGN(auto none, store_->reclaimExpiredJobs());
  EXPECT_TRUE(none.empty());
  ASSERT_OK_AND_ASSIGN(Job beat, store_->heartbeatJob(job.id, "worker-a", 30s));
  EXPECT_EQ(beat.lease_expires_at, clock_.now() + 30s);
  EXPECT_THAT(store_->heartbeatJob(job.id, "worker-b", 30s),
              StatusIs(StatusCode::kFailedPrecondition));

  clock_.advance(29s);
  ASSERT_OK_AND_ASSIGN(auto still_none, store_->reclaimExpiredJobs());
  EXPECT_TRUE(still_none.empty()) << "the heartbeat extended the lease";

  // worker-a dies: no more heartbeats.
  clock_.advance(2s);
  ASSERT_OK_AND_ASSIGN(auto reclaimed, store_->reclaimExpiredJobs());
  ASSERT_EQ(reclaimed.size(), 1u);
  EXPECT_EQ(reclaimed[0].id, job.id);
  EXPECT_EQ(reclaimed[0].state, JobState::kQueued);
  EXPECT_FALSE(reclaimed[0].owner.has_value());
  EXPECT_THAT(reclaimed[0].error.value_or(""), HasSubstr("worker-a"));

  ASSERT_OK_AND_ASSIGN(auto taken, store_->claimJob("worker-b", {}, 30s));
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->id, job.id);
  EXPECT_EQ(taken->attempts, 2);
  // The old owner, back from the dead, can no longer act on it.
  EXPECT_THAT(store_->completeJob(job.id, "worker-a"),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("worker-b")));
  EXPECT_THAT(store_->heartbeatJob(job.id, "worker-a", 30s),
              StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_OK(store_->completeJob(job.id, "worker-b"));
}

TEST_P(MetaStoreConformance, ExpiredLeaseWithoutAttemptsLeftFails) {
  ASSERT_OK_AND_ASSIGN(Job job, store_->enqueueJob(JobSpec{.kind = "pull", .max_attempts = 1}));
  ASSERT_OK(store_->claimJob("worker-a", {}, 10s));
  clock_.advance(11s);
  ASSERT_OK_AND_ASSIGN(auto changed, store_->reclaimExpiredJobs());
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0].state, JobState::kFailed);
  EXPECT_THAT(changed[0].error.value_or(""), HasSubstr("worker-a"));
  EXPECT_THAT(changed[0].error.value_or(""), HasSubstr("1 of 1"));
  ASSERT_OK_AND_ASSIGN(auto nothing, store_->claimJob("worker-b", {}, 10s));
  EXPECT_FALSE(nothing.has_value());
  ASSERT_OK_AND_ASSIGN(Job back, store_->getJob(job.id));
  EXPECT_EQ(back.state, JobState::kFailed);
}

TEST_P(MetaStoreConformance, FailJobRetriesThenFails) {
  ASSERT_OK_AND_ASSIGN(Job job, store_->enqueueJob(JobSpec{.kind = "build", .max_attempts = 2}));
  ASSERT_OK(store_->claimJob("w", {}, 30s));
  EXPECT_THAT(store_->failJob(job.id, "w", "", 1s), StatusIs(StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(Job retry, store_->failJob(job.id, "w", "registry timeout", 5s));
  EXPECT_EQ(retry.state, JobState::kQueued);
  EXPECT_EQ(retry.run_after, clock_.now() + 5s);
  EXPECT_EQ(retry.error, "registry timeout");
  ASSERT_OK_AND_ASSIGN(auto too_early, store_->claimJob("w", {}, 30s));
  EXPECT_FALSE(too_early.has_value());
  clock_.advance(5s);
  ASSERT_OK_AND_ASSIGN(auto second, store_->claimJob("w", {}, 30s));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->attempts, 2);
  ASSERT_OK_AND_ASSIGN(Job final_fail, store_->failJob(job.id, "w", "registry timeout", 5s));
  EXPECT_EQ(final_fail.state, JobState::kFailed) << "no attempts left";
  EXPECT_THAT(store_->failJob(job.id, "w", "again", std::nullopt),
              StatusIs(StatusCode::kFailedPrecondition));

  // Without retry_after the first failure is final.
  ASSERT_OK_AND_ASSIGN(Job other, store_->enqueueJob(JobSpec{.kind = "build"}));
  ASSERT_OK(store_->claimJob("w", {}, 30s));
  ASSERT_OK_AND_ASSIGN(Job failed, store_->failJob(other.id, "w", "bad Dockerfile", std::nullopt));
  EXPECT_EQ(failed.state, JobState::kFailed);
}

TEST_P(MetaStoreConformance, ConcurrentWorkersClaimEachJobOnce) {
  constexpr int kJobs = 60;
  for (int i = 0; i < kJobs; ++i)
    ASSERT_OK(store_->enqueueJob(JobSpec{.kind = "build"}));
  auto second = openAgain();
  ASSERT_NE(second, nullptr);
  std::mutex mu;
  std::vector<std::int64_t> claimed_ids;
  std::atomic<int> errors{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    MetaStore* store = w % 2 == 0 ? store_.get() : second.get();
    workers.emplace_back([&, w, store] {
      const std::string owner = "worker-" + std::to_string(w);
      for (int i = 0; i < kJobs; ++i) {  // bounded: never more claims than jobs
        auto job = store->claimJob(owner, {"build"}, 60s);
        if (!job.ok()) {
          ++errors;
          return;
        }
        if (!job->has_value()) return;
        if (!store->completeJob((*job)->id, owner).ok()) ++errors;
        std::lock_guard lock(mu);
        claimed_ids.push_back((*job)->id);
      }
    });
  }
  for (auto& t : workers)
    t.join();
  EXPECT_EQ(errors.load(), 0);
  std::set<std::int64_t> unique(claimed_ids.begin(), claimed_ids.end());
  EXPECT_EQ(claimed_ids.size(), static_cast<std::size_t>(kJobs));
  EXPECT_EQ(unique.size(), static_cast<std::size_t>(kJobs));
  ASSERT_OK_AND_ASSIGN(std::int64_t succeeded, store_->countJobs(JobState::kSucceeded));
  EXPECT_EQ(succeeded, kJobs);
}

TEST_P(MetaStoreConformance, ListAndPurgeJobs) {
  ASSERT_OK_AND_ASSIGN(Job a, store_->enqueueJob(JobSpec{.kind = "build", .snapshot_id = "s1"}));
  ASSERT_OK(store_->enqueueJob(JobSpec{.kind = "remove", .snapshot_id = "s2"}));
  ASSERT_OK(store_->claimJob("w", {"build"}, 30s));
  ASSERT_OK_AND_ASSIGN(auto running, store_->listJobs({.states = {JobState::kRunning}}));
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].id, a.id);
  ASSERT_OK_AND_ASSIGN(auto by_snapshot, store_->listJobs({.snapshot_id = "s2"}));
  ASSERT_EQ(by_snapshot.size(), 1u);
  EXPECT_EQ(by_snapshot[0].kind, "remove");
  ASSERT_OK_AND_ASSIGN(auto by_owner, store_->listJobs({.owner = "w"}));
  EXPECT_EQ(by_owner.size(), 1u);
  ASSERT_OK(store_->completeJob(a.id, "w"));
  clock_.advance(1h);
  ASSERT_OK_AND_ASSIGN(std::int64_t purged, store_->purgeFinishedJobs(clock_.now() - 30min));
  EXPECT_EQ(purged, 1);
  ASSERT_OK_AND_ASSIGN(auto left, store_->listJobs({}));
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].kind, "remove") << "queued jobs are never purged";
}

// ---- Quotas ---------------------------------------------------------------------------------

TEST_P(MetaStoreConformance, QuotaReservationsCountUntilReleased) {
  ASSERT_OK_AND_ASSIGN(QuotaReservation r1, store_->reserveSnapshotQuota(org_.id, 2, 1min));
  ASSERT_OK_AND_ASSIGN(QuotaReservation r2, store_->reserveSnapshotQuota(org_.id, 2, 1min));
  EXPECT_THAT(
      store_->reserveSnapshotQuota(org_.id, 2, 1min),
      StatusIs(StatusCode::kResourceExhausted, "Snapshot quota exceeded. Maximum allowed: 2"));
  // Another organization has its own quota.
  EXPECT_OK(store_->reserveSnapshotQuota(other_org_.id, 2, 1min));
  ASSERT_OK(store_->releaseQuotaReservation(r1.id));
  EXPECT_THAT(store_->releaseQuotaReservation(r1.id), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(std::int64_t used, store_->countQuotaUsage(org_.id));
  EXPECT_EQ(used, 1);
  EXPECT_OK(store_->reserveSnapshotQuota(org_.id, 2, 1min));
  (void)r2;
  EXPECT_THAT(store_->reserveSnapshotQuota(uuidV4(), 2, 1min), StatusIs(StatusCode::kNotFound));
}

TEST_P(MetaStoreConformance, QuotaCountsLiveStatesOnly) {
  Snapshot active = snapshotNamed("active");
  active.state = SnapshotState::kActive;
  mustCreate(active);
  Snapshot inactive = snapshotNamed("inactive");
  inactive.state = SnapshotState::kInactive;
  mustCreate(inactive);
  Snapshot failed = snapshotNamed("failed");
  failed.state = SnapshotState::kError;
  failed.error_reason = "boom";
  mustCreate(failed);
  Snapshot removing = mustCreate(snapshotNamed("removing"));
  ASSERT_OK(store_->markSnapshotRemoving(removing.id));
  mustCreate(snapshotNamed("pending"));
  ASSERT_OK_AND_ASSIGN(std::int64_t used, store_->countQuotaUsage(org_.id));
  EXPECT_EQ(used, 2);  // active + pending
  EXPECT_OK(store_->reserveSnapshotQuota(org_.id, 3, 1min));
  EXPECT_THAT(store_->reserveSnapshotQuota(org_.id, 3, 1min),
              StatusIs(StatusCode::kResourceExhausted));
}

TEST_P(MetaStoreConformance, CreateConsumesTheReservation) {
  ASSERT_OK_AND_ASSIGN(QuotaReservation r, store_->reserveSnapshotQuota(org_.id, 5, 1min));
  ASSERT_OK(store_->createSnapshot(snapshotNamed("reserved"), r.id));
  ASSERT_OK_AND_ASSIGN(std::int64_t used, store_->countQuotaUsage(org_.id));
  EXPECT_EQ(used, 1) << "the snapshot replaces its reservation";
  EXPECT_THAT(store_->createSnapshot(snapshotNamed("again"), r.id),
              StatusIs(StatusCode::kNotFound, HasSubstr("reservation")));
  EXPECT_THAT(store_->findSnapshotByName(org_.id, "again"), StatusIs(StatusCode::kNotFound))
      << "a create that failed on its reservation leaves nothing behind";

  // A create that fails (duplicate name) keeps the reservation, for the caller to release.
  ASSERT_OK_AND_ASSIGN(QuotaReservation r2, store_->reserveSnapshotQuota(org_.id, 5, 1min));
  EXPECT_THAT(store_->createSnapshot(snapshotNamed("reserved"), r2.id),
              StatusIs(StatusCode::kAlreadyExists));
  ASSERT_OK_AND_ASSIGN(std::int64_t with_pending, store_->countQuotaUsage(org_.id));
  EXPECT_EQ(with_pending, 2);
  ASSERT_OK(store_->releaseQuotaReservation(r2.id));
  ASSERT_OK_AND_ASSIGN(std::int64_t after, store_->countQuotaUsage(org_.id));
  EXPECT_EQ(after, 1);
}

TEST_P(MetaStoreConformance, ReservationsExpire) {
  ASSERT_OK_AND_ASSIGN(QuotaReservation r, store_->reserveSnapshotQuota(org_.id, 1, 30s));
  EXPECT_EQ(r.expires_at, clock_.now() + 30s);
  EXPECT_THAT(store_->reserveSnapshotQuota(org_.id, 1, 30s),
              StatusIs(StatusCode::kResourceExhausted));
  clock_.advance(31s);
  ASSERT_OK_AND_ASSIGN(std::int64_t used, store_->countQuotaUsage(org_.id));
  EXPECT_EQ(used, 0) << "a crashed process cannot leak quota";
  EXPECT_THAT(store_->createSnapshot(snapshotNamed("late"), r.id), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(std::int64_t purged, store_->purgeExpiredReservations());
  EXPECT_EQ(purged, 1);
  EXPECT_OK(store_->reserveSnapshotQuota(org_.id, 1, 30s));
}

TEST_P(MetaStoreConformance, ConcurrentReservationsNeverExceedTheQuota) {
  constexpr int kThreads = 10;
  constexpr int kMax = 4;
  std::atomic<int> ok{0}, exhausted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      auto r = store_->reserveSnapshotQuota(org_.id, kMax, 1min);
      if (r.ok()) ++ok;
      if (r.status().code() == StatusCode::kResourceExhausted) ++exhausted;
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(ok.load(), kMax);
  EXPECT_EQ(exhausted.load(), kThreads - kMax);
}

// ---- Durability -----------------------------------------------------------------------------

TEST_P(MetaStoreConformance, DataSurvivesARestart) {
  Snapshot s = mustCreate(snapshotNamed("durable"));
  ASSERT_OK_AND_ASSIGN(Job job, store_->enqueueJob(JobSpec{.kind = "build"}));
  ASSERT_OK(store_->claimJob("dead-worker", {}, 30s));
  store_.reset();  // the process goes away

  store_ = openAgain();
  ASSERT_NE(store_, nullptr);
  ASSERT_OK_AND_ASSIGN(Snapshot back, store_->findSnapshotByName(org_.id, "durable"));
  EXPECT_EQ(back.id, s.id);
  clock_.advance(31s);
  ASSERT_OK_AND_ASSIGN(auto reclaimed, store_->reclaimExpiredJobs());
  ASSERT_EQ(reclaimed.size(), 1u);
  EXPECT_EQ(reclaimed[0].id, job.id);
}

}  // namespace cairn::meta::testing
