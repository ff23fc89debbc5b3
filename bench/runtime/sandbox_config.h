// The container `cairn run --network none IMAGE true` asks for, and the bundle paths the
// executor fills in: the input of the makeOciConfig benchmarks (warm loops and the cold first
// call), so that both time the same thing.
#pragma once

#include "cairn/runtime/container_spec.h"

namespace cairn::runtime::bench {

inline ContainerSpec sandboxSpec() {
  ContainerSpec spec;
  spec.rootfs.lower_dirs = {"/data/layers/c488/fs"};
  spec.process.args = {"true"};
  spec.network = NetworkMode::kNone;
  return spec;
}

inline OciConfigInputs sandboxInputs() {
  OciConfigInputs inputs;
  inputs.rootfs_path = "/data/work/run/cairn-0123456789abcdef/rootfs";
  inputs.hosts_file = "/data/work/run/cairn-0123456789abcdef/hosts";
  inputs.resolv_conf_file = "/data/work/run/cairn-0123456789abcdef/resolv.conf";
  inputs.hostname_file = "/data/work/run/cairn-0123456789abcdef/hostname";
  inputs.cgroups_path = "/cairn/cairn-0123456789abcdef";
  inputs.nofile_hard = 20000;
  inputs.nproc_hard = 96364;
  return inputs;
}

}  // namespace cairn::runtime::bench
