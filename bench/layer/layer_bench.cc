// Layer export (dir → tar → zstd/gzip, one pass with both hashes) and store hashing
// throughput. The tree is $CAIRN_BENCH_TREE (default /usr/lib/python3.11); compare.sh runs the
// same tree through `tar c | zstd -3`, `tar c | gzip` and `openssl dgst -sha256`.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>

#include "cairn/common/crypto.h"
#include "cairn/common/fs.h"
#include "cairn/layer/apply.h"
#include "cairn/layer/compression.h"
#include "cairn/layer/diff.h"
#include "cairn/store/local_blob_store.h"

namespace {

using namespace cairn;
namespace fs = std::filesystem;

fs::path benchTree() {
  const char* env = std::getenv("CAIRN_BENCH_TREE");
  return env && *env ? fs::path(env) : fs::path("/usr/lib/python3.11");
}

void exportTree(benchmark::State& state, layer::Compression c, int threads = 0) {
  fs::path tree = benchTree();
  if (!fs::is_directory(tree)) {
    state.SkipWithError(("no tree at " + tree.string() + "; set CAIRN_BENCH_TREE").c_str());
    return;
  }
  std::uint64_t tar_bytes = 0, out_bytes = 0;
  for (auto _ : state) {
    layer::NullSink null;
    layer::LayerEncoder enc(c, &null, {.level = 0, .threads = threads});
    auto r = layer::createLayerTar(tree, enc);
    if (!r.ok()) {
      state.SkipWithError(r.status().toString().c_str());
      return;
    }
    auto out = enc.finishLayer();
    if (!out.ok()) {
      state.SkipWithError(out.status().toString().c_str());
      return;
    }
    tar_bytes = out->tar_size;
    out_bytes = out->size;
    benchmark::DoNotOptimize(out->digest);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * tar_bytes));
  state.counters["tar_MB"] = static_cast<double>(tar_bytes) / 1e6;
  state.counters["ratio"] = out_bytes ? static_cast<double>(tar_bytes) / out_bytes : 0;
}

void BM_ExportTarOnly(benchmark::State& s) {
  exportTree(s, layer::Compression::kNone);
}
void BM_ExportZstd(benchmark::State& s) {
  exportTree(s, layer::Compression::kZstd);
}
void BM_ExportZstdWorker(benchmark::State& s) {
  exportTree(s, layer::Compression::kZstd, static_cast<int>(s.range(0)));
}
void BM_ExportGzip(benchmark::State& s) {
  exportTree(s, layer::Compression::kGzip);
}
BENCHMARK(BM_ExportTarOnly)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ExportZstd)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ExportZstdWorker)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ExportGzip)->Unit(benchmark::kMillisecond)->UseRealTime();

// Unpacking the same tree's tar (plain, in memory) into a fresh directory.
void BM_ApplyTar(benchmark::State& state) {
  fs::path tree = benchTree();
  std::string tar;
  layer::StringSink sink(&tar);
  if (!fs::is_directory(tree) || !layer::createLayerTar(tree, sink).ok()) {
    state.SkipWithError(("cannot tar " + tree.string() + "; set CAIRN_BENCH_TREE").c_str());
    return;
  }
  auto dir = TempDir::create("apply-bench");
  int n = 0;
  for (auto _ : state) {
    fs::path target = dir->path() / std::to_string(n++);
    fs::create_directories(target);
    layer::StringSource src(tar);
    layer::ApplyOptions o;
    o.whiteouts = layer::WhiteoutMode::kFlatten;
    auto r = layer::applyLayerTar(src, target, o);
    if (!r.ok()) {
      state.SkipWithError(r.status().toString().c_str());
      return;
    }
    state.PauseTiming();
    fs::remove_all(target);
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * tar.size()));
}
BENCHMARK(BM_ApplyTar)->Unit(benchmark::kMillisecond)->UseRealTime();

// Re-hashing a committed blob the way fsck and digest verification read it.
void BM_StoreSha256(benchmark::State& state) {
  auto dir = TempDir::create("sha-bench");
  auto store = store::LocalBlobStore::open(dir->path());
  std::size_t size = static_cast<std::size_t>(state.range(0)) << 20;
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i)
    data[i] = static_cast<char>((i * 2654435761u) >> 13);
  auto info = store::writeBlob(**store, data);
  if (!info.ok()) {
    state.SkipWithError(info.status().toString().c_str());
    return;
  }
  std::string buf(1 << 20, '\0');
  for (auto _ : state) {
    auto stream = (*store)->openRead(info->digest);
    Sha256 sha;
    for (;;) {
      auto n = (*stream)->read(buf.data(), buf.size());
      if (!n.ok() || *n == 0) break;
      sha.update(buf.data(), *n);
    }
    benchmark::DoNotOptimize(sha.finishHex());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}
BENCHMARK(BM_StoreSha256)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
