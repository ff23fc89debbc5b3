// What one `cairn run` pays for makeOciConfig: the first call in a fresh process (nothing
// memoized, code and heap cold), which Google Benchmark's warm loops do not show. Run it many
// times and take the median:
//
//   for i in $(seq 50); do build/spec/bench/runtime/runtime_oci_config_cold json; done | sort -n
//
//   ... runtime_oci_config_cold text   # the same with seccompSectionTextFor
//
// Prints the microseconds of the first makeOciConfig plus the filter cache's key, and of the
// config.json text made after it, on one line.
#include <time.h>

#include <cstdio>
#include <string_view>

#include "cairn/runtime/container_spec.h"
#include "cairn/runtime/seccomp_profile.h"
#include "sandbox_config.h"

namespace {

double nowUs() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cairn::runtime;
  ContainerSpec spec = bench::sandboxSpec();
  OciConfigInputs inputs = bench::sandboxInputs();
  fillHostRlimits(inputs);

  // "json": what Executor::run did before the seccomp section was made as text (the section
  // built into the config, dumped for the key, erased): kept for comparison. "text": what it
  // does now, the config without the section plus seccompSectionTextFor's key.
  bool text_mode = argc > 1 && std::string_view(argv[1]) == "text";
  inputs.with_seccomp = !text_mode;
  double t0 = nowUs();
  auto config = makeOciConfig(spec, inputs);
  if (!config.ok()) {
    std::fprintf(stderr, "makeOciConfig: %s\n", config.status().toString().c_str());
    return 1;
  }
  std::string key;
  if (text_mode) {
    auto section = seccompSectionTextFor(spec.seccomp, defaultCapabilities());
    if (!section.ok() || !*section) return 1;
    key = std::move((*section)->text);
  } else {
    key = (*config)["linux"]["seccomp"].dump();
    (*config)["linux"].erase("seccomp");
  }
  double t1 = nowUs();
  std::string text = config->dump(2);
  double t2 = nowUs();
  std::printf("%.1f us config+key, %.1f us config.json (%zu bytes, key %zu bytes)\n", t1 - t0,
              t2 - t1, text.size(), key.size());
  return 0;
}
