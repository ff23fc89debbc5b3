// MemoryMetaStore, the test double, against the same conformance suite as SqliteMetaStore.
#include "cairn/meta/memory_meta_store.h"

#include <map>
#include <mutex>

#include "meta_store_conformance.h"

namespace cairn::meta::testing {
namespace {

//! The same directory must open the same "database": keep one State per directory.
Result<std::unique_ptr<MetaStore>> makeMemory(const std::filesystem::path& dir,
                                              const Clock& clock) {
  static std::mutex mu;
  static std::map<std::filesystem::path, std::shared_ptr<MemoryMetaStore::State>> states;
  std::lock_guard lock(mu);
  auto& state = states[dir];
  if (!state) state = MemoryMetaStore::newState();
  return std::unique_ptr<MetaStore>(std::make_unique<MemoryMetaStore>(clock, state));
}

std::string factoryName(const ::testing::TestParamInfo<MetaStoreFactory>& p) {
  return p.param.name;
}

INSTANTIATE_TEST_SUITE_P(Memory, MetaStoreConformance,
                         ::testing::Values(MetaStoreFactory{"memory", makeMemory}), factoryName);

TEST(MemoryMetaStoreTest, SeparateStatesAreSeparateDatabases) {
  FakeClock clock;
  MemoryMetaStore a(clock);
  MemoryMetaStore b(clock);
  ASSERT_OK(a.createOrganization(Organization{.name = "acme"}));
  EXPECT_THAT(b.getOrganizationByName("acme"), StatusIs(StatusCode::kNotFound));
  auto shared = MemoryMetaStore::newState();
  MemoryMetaStore c(clock, shared);
  MemoryMetaStore d(clock, shared);
  ASSERT_OK(c.createOrganization(Organization{.name = "acme"}));
  EXPECT_OK(d.getOrganizationByName("acme"));
}

}  // namespace
}  // namespace cairn::meta::testing
