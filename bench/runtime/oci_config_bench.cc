// What Cairn's own preparation of a container costs before crun starts: makeOciConfig for a
// `cairn run` sandbox (the default seccomp profile included), the seccomp section on its own,
// and the texts the executor makes from the config (the filter cache's key, config.json).
//
//   ninja -C build/spec runtime_oci_config_bench &&
//   build/spec/bench/runtime/runtime_oci_config_bench
#include <benchmark/benchmark.h>

#include "cairn/runtime/container_spec.h"
#include "cairn/runtime/seccomp_profile.h"
#include "sandbox_config.h"

namespace cairn::runtime {
namespace {

using bench::sandboxInputs;
using bench::sandboxSpec;

// The capability set every Cairn container gets, against which the default profile resolves.
const std::vector<std::string>& kCaps = defaultCapabilities();

void BM_MakeOciConfig(benchmark::State& state) {
  ContainerSpec spec = sandboxSpec();
  OciConfigInputs inputs = sandboxInputs();
  for (auto _ : state) {
    auto config = makeOciConfig(spec, inputs);
    benchmark::DoNotOptimize(config);
  }
}
BENCHMARK(BM_MakeOciConfig);

// makeOciConfig plus what executor.cc does with it on a filter-cache hit today: dump the
// seccomp section for the key, erase it, dump the config as config.json.
void BM_MakeOciConfigAndTexts(benchmark::State& state) {
  ContainerSpec spec = sandboxSpec();
  OciConfigInputs inputs = sandboxInputs();
  for (auto _ : state) {
    auto config = makeOciConfig(spec, inputs);
    std::string key = (*config)["linux"]["seccomp"].dump();
    (*config)["linux"].erase("seccomp");
    std::string text = config->dump(2);
    benchmark::DoNotOptimize(key);
    benchmark::DoNotOptimize(text);
  }
}
BENCHMARK(BM_MakeOciConfigAndTexts);

// The path seccompSectionTextFor is for: the config without the section, the key text, and
// config.json (on a filter-cache hit nothing else is needed).
void BM_MakeOciConfigWithoutSeccompAndKeyText(benchmark::State& state) {
  ContainerSpec spec = sandboxSpec();
  OciConfigInputs inputs = sandboxInputs();
  inputs.with_seccomp = false;
  for (auto _ : state) {
    auto config = makeOciConfig(spec, inputs);
    auto key = seccompSectionTextFor(spec.seccomp, defaultCapabilities());
    std::string text = config->dump(2);
    benchmark::DoNotOptimize(key);
    benchmark::DoNotOptimize(text);
  }
}
BENCHMARK(BM_MakeOciConfigWithoutSeccompAndKeyText);

void BM_MakeOciConfigUnconfined(benchmark::State& state) {
  ContainerSpec spec = sandboxSpec();
  spec.seccomp.mode = SeccompMode::kUnconfined;
  OciConfigInputs inputs = sandboxInputs();
  for (auto _ : state) {
    auto config = makeOciConfig(spec, inputs);
    benchmark::DoNotOptimize(config);
  }
}
BENCHMARK(BM_MakeOciConfigUnconfined);

void BM_DefaultSeccompSection(benchmark::State& state) {
  for (auto _ : state) {
    OrderedJson section = defaultSeccompSection(kCaps);
    benchmark::DoNotOptimize(section);
  }
}
BENCHMARK(BM_DefaultSeccompSection);

void BM_ResolveDefaultProfile(benchmark::State& state) {
  for (auto _ : state) {
    auto section = resolveSeccompProfile(defaultSeccompProfile(), kCaps);
    benchmark::DoNotOptimize(section);
  }
}
BENCHMARK(BM_ResolveDefaultProfile);

void BM_ResolveDefaultProfileText(benchmark::State& state) {
  for (auto _ : state) {
    auto text = resolveSeccompProfileText(defaultSeccompProfile(), kCaps);
    benchmark::DoNotOptimize(text);
  }
}
BENCHMARK(BM_ResolveDefaultProfileText);

void BM_ParseDefaultSectionText(benchmark::State& state) {
  std::string text = defaultSeccompSection(kCaps).dump();
  for (auto _ : state) {
    auto section = parseOrderedJson(text);
    benchmark::DoNotOptimize(section);
  }
}
BENCHMARK(BM_ParseDefaultSectionText);

void BM_DumpDefaultSection(benchmark::State& state) {
  OrderedJson section = defaultSeccompSection(kCaps);
  for (auto _ : state) {
    std::string text = section.dump();
    benchmark::DoNotOptimize(text);
  }
}
BENCHMARK(BM_DumpDefaultSection);

// What a filter-cache miss costs when Cairn compiles the default section itself (instead of a
// `crun create` compiling it).
void BM_CompileDefaultFilter(benchmark::State& state) {
  OrderedJson section = defaultSeccompSection(kCaps);
  auto layout = static_cast<SeccompFilterLayout>(state.range(0));
  for (auto _ : state) {
    auto bpf = compileSeccompFilter(section, layout);
    if (!bpf.ok()) {
      state.SkipWithError(bpf.status().toString().c_str());
      break;
    }
    benchmark::DoNotOptimize(bpf);
  }
  state.SetLabel(layout == SeccompFilterLayout::kLinear ? "linear" : "binary tree");
}
BENCHMARK(BM_CompileDefaultFilter)
    ->Arg(static_cast<int>(SeccompFilterLayout::kLinear))
    ->Arg(static_cast<int>(SeccompFilterLayout::kBinaryTree));

}  // namespace
}  // namespace cairn::runtime

BENCHMARK_MAIN();
