// What a build pays to turn a new layer into a blob. A commit now makes only the hash-only tar
// pass (BM_HashOnlyPass: diff id and size; the image's blob is a note on the layer dir, made into
// a tar when read). BM_CommitExport is what writing the blob would cost: the plain tar
// (level -99) or tar → sha256 = diff id → zstd → sha256 = digest (what commits did before), into
// a fsynced LocalBlobStore, for several zstd levels and worker-thread counts.
//
// The tree is $CAIRN_BENCH_TREE (e.g. the apt layer of the build_vs_peers Dockerfile, an
// unpacked layer dir under <data>/layers/<chain-id>/fs); the store goes to a temp dir. Wall and
// CPU time are both reported (`--benchmark_counters_tabular=true`): on a shared machine the
// CPU time is the fair measure, and the wall time shows what a worker thread buys.
//
//   CAIRN_BENCH_TREE=/path/to/fs build/export/bench/build/build_export_bench
//     --benchmark_repetitions=5 --benchmark_report_aggregates_only=true   (one command line)
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>

#include "cairn/common/fs.h"
#include "cairn/layer/compression.h"
#include "cairn/layer/diff.h"
#include "cairn/store/layer_store.h"
#include "cairn/store/local_blob_store.h"

namespace {

using namespace cairn;
namespace fs = std::filesystem;

fs::path benchTree() {
  const char* env = std::getenv("CAIRN_BENCH_TREE");
  return env && *env ? fs::path(env) : fs::path("/usr/lib/python3.11");
}

// Args: zstd level (0 = the default, 3), worker threads.
void BM_CommitExport(benchmark::State& state) {
  fs::path tree = benchTree();
  if (!fs::is_directory(tree)) {
    state.SkipWithError(("no tree at " + tree.string() + "; set CAIRN_BENCH_TREE").c_str());
    return;
  }
  auto tmp = TempDir::create("export-bench");
  if (!tmp.ok()) {
    state.SkipWithError(tmp.status().toString().c_str());
    return;
  }
  auto blobs = store::LocalBlobStore::open(tmp->path());
  if (!blobs.ok()) {
    state.SkipWithError(blobs.status().toString().c_str());
    return;
  }
  layer::CompressionOptions options{.level = static_cast<int>(state.range(0)),
                                    .threads = static_cast<int>(state.range(1))};
  // level -99: no compression at all (the tar itself is the blob).
  const layer::Compression compression =
      state.range(0) == -99 ? layer::Compression::kNone : layer::Compression::kZstd;
  std::uint64_t tar_bytes = 0, blob_bytes = 0;
  for (auto _ : state) {
    auto out = store::exportDirToBlob(tree, **blobs, compression, {}, options);
    if (!out.ok()) {
      state.SkipWithError(out.status().toString().c_str());
      return;
    }
    tar_bytes = out->tar_size;
    blob_bytes = out->size;
    state.PauseTiming();
    (void)(*blobs)->remove(out->digest);  // every iteration writes the blob anew
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * tar_bytes));
  state.counters["tar_MB"] = static_cast<double>(tar_bytes) / 1e6;
  state.counters["blob_MB"] = static_cast<double>(blob_bytes) / 1e6;
}

// adoptDir's pass: tar → sha256 only. What the one-pass commit saves.
void BM_HashOnlyPass(benchmark::State& state) {
  fs::path tree = benchTree();
  if (!fs::is_directory(tree)) {
    state.SkipWithError(("no tree at " + tree.string() + "; set CAIRN_BENCH_TREE").c_str());
    return;
  }
  for (auto _ : state) {
    layer::NullSink null;
    layer::HashingSink hashed(&null);
    auto r = layer::createLayerTar(tree, hashed);
    if (!r.ok()) {
      state.SkipWithError(r.status().toString().c_str());
      return;
    }
    benchmark::DoNotOptimize(hashed.digest());
  }
}

BENCHMARK(BM_HashOnlyPass)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();
BENCHMARK(BM_CommitExport)
    ->ArgNames({"level", "threads"})
    ->Args({3, 0})
    ->Args({3, 1})
    ->Args({1, 0})
    ->Args({1, 1})
    ->Args({-1, 1})
    ->Args({-99, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();

}  // namespace

BENCHMARK_MAIN();
