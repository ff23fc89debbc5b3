#include "cairn/build/cache_index.h"

#include <thread>

#include "cairn/common/fs.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::build {
namespace {

using ::testing::UnorderedElementsAre;

Digest d(const std::string& s) {
  return Digest::ofBytes(s);
}

TEST(CacheIndexTest, PutLookupSurvivesReopen) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("cache-index"));
  auto path = dir.path() / "cache" / "index.db";
  {
    ASSERT_OK_AND_ASSIGN(auto index, CacheIndex::open(path));
    ASSERT_OK_AND_ASSIGN(auto miss, index->lookup("k1"));
    EXPECT_FALSE(miss.has_value());
    ASSERT_OK(index->put("k1", {d("c1"), d("d1"), 100}));
    ASSERT_OK(index->putExported(d("d1"),
                                 {d("blob1"), 42, "application/vnd.oci.image.layer.v1.tar+zstd"}));
  }
  ASSERT_OK_AND_ASSIGN(auto index, CacheIndex::open(path));
  ASSERT_OK_AND_ASSIGN(auto hit, index->lookup("k1"));
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->chain_id, d("c1"));
  EXPECT_EQ(hit->size, 100u);
  ASSERT_OK_AND_ASSIGN(auto exported, index->exported(d("d1")));
  ASSERT_TRUE(exported.has_value());
  EXPECT_EQ(exported->digest, d("blob1"));
  EXPECT_EQ(exported->size, 42u);
}

TEST(CacheIndexTest, CompressedCopiesAreKeptPerCompressionAndApartFromTheExport) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("cache-index"));
  auto path = dir.path() / "index.db";
  const std::string tar = "application/vnd.oci.image.layer.v1.tar";
  {
    ASSERT_OK_AND_ASSIGN(auto index, CacheIndex::open(path));
    ASSERT_OK(index->putExported(d("d1"), {d("d1"), 1000, tar}));
    ASSERT_OK_AND_ASSIGN(auto none, index->compressedCopy(d("d1"), "gzip"));
    EXPECT_FALSE(none.has_value());
    ASSERT_OK(index->putCompressedCopy(d("d1"), "gzip", {d("gz"), 300, tar + "+gzip"}));
    ASSERT_OK(index->putCompressedCopy(d("d1"), "zstd", {d("zst"), 250, tar + "+zstd"}));
  }
  ASSERT_OK_AND_ASSIGN(auto index, CacheIndex::open(path));
  ASSERT_OK_AND_ASSIGN(auto gz, index->compressedCopy(d("d1"), "gzip"));
  ASSERT_TRUE(gz.has_value());
  EXPECT_EQ(gz->digest, d("gz"));
  EXPECT_EQ(gz->size, 300u);
  EXPECT_EQ(gz->media_type, tar + "+gzip");
  ASSERT_OK_AND_ASSIGN(auto zst, index->compressedCopy(d("d1"), "zstd"));
  ASSERT_TRUE(zst.has_value());
  EXPECT_EQ(zst->digest, d("zst"));
  // The build's own blob for the layer is untouched: a cached rebuild keeps its manifest.
  ASSERT_OK_AND_ASSIGN(auto exported, index->exported(d("d1")));
  ASSERT_TRUE(exported.has_value());
  EXPECT_EQ(exported->digest, d("d1"));
  // Replaced, not duplicated.
  ASSERT_OK(index->putCompressedCopy(d("d1"), "gzip", {d("gz2"), 301, tar + "+gzip"}));
  ASSERT_OK_AND_ASSIGN(gz, index->compressedCopy(d("d1"), "gzip"));
  EXPECT_EQ(gz->digest, d("gz2"));
}

TEST(CacheIndexTest, EvictsLeastRecentlyUsedUnderBudget) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("cache-index"));
  ASSERT_OK_AND_ASSIGN(auto index, CacheIndex::open(dir.path() / "index.db"));
  ASSERT_OK(index->put("old", {d("c-old"), d("x"), 100}));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_OK(index->put("mid", {d("c-mid"), d("y"), 100}));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_OK(index->put("new", {d("c-new"), d("z"), 100}));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_OK(index->lookup("old").status());  // a hit makes "old" recently used
  ASSERT_OK_AND_ASSIGN(auto total, index->totalSize());
  EXPECT_EQ(total, 300u);
  ASSERT_OK_AND_ASSIGN(std::size_t dropped, index->evict(200));
  EXPECT_EQ(dropped, 1u);
  ASSERT_OK_AND_ASSIGN(auto live, index->liveChainIds());
  EXPECT_THAT(live, UnorderedElementsAre(d("c-old"), d("c-new")));
  ASSERT_OK_AND_ASSIGN(dropped, index->evict(1000));
  EXPECT_EQ(dropped, 0u);
}

TEST(CacheIndexTest, BadPathIsAnError) {
  EXPECT_FALSE(CacheIndex::open("/proc/cairn-no/index.db").ok());
}

}  // namespace
}  // namespace cairn::build
