#!/usr/bin/env bash
# Sandbox start → exit of `true`: `cairn run` against bare `crun run` on the same busybox rootfs
# (and podman when it is installed). Needs root. Prints the median and p90 wall time and the
# median CPU time of N runs each, interleaved so that machine load hits every contender alike.
#
#   bench/runtime/run_vs_crun.sh [path/to/cairn] [N]
set -euo pipefail

CAIRN=${1:-build/runtime/src/cli/cairn}
N=${2:-30}
WORK=$(mktemp -d /tmp/cairn-bench-run.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The busybox rootfs and bare crun's bundle on it.
. "$(dirname "$(realpath "$0")")/busybox_bundle.sh"

# Wall time and CPU time (user + system of every process involved, from getrusage of the
# children): CPU time is what the load on a shared machine does not inflate.
python3 - "$CAIRN" "$N" "$WORK" "$ROOTFS" "$BUNDLE" <<'PY'
import os, resource, shutil, statistics, subprocess, sys, time
cairn, n, work, rootfs, bundle = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
data = os.path.join(work, "data")
contenders = {
    "crun-run": lambda i: ["crun", "run", "--bundle", bundle, f"bench-{os.getpid()}-{i}"],
    "cairn-none": lambda i: [cairn, "--data-dir", data, "run", "--rootfs", rootfs, "--network", "none", "--", "/bin/true"],
    "cairn-default": lambda i: [cairn, "--data-dir", data, "run", "--rootfs", rootfs, "--", "/bin/true"],
}
if shutil.which("podman"):
    contenders["podman-none"] = lambda i: ["podman", "run", "--rm", "--network=none", "--rootfs", rootfs, "/bin/true"]
wall = {k: [] for k in contenders}
cpu = {k: [] for k in contenders}
for i in range(n):
    for name, argv in contenders.items():
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        subprocess.run(argv(i), check=True)
        t1 = time.monotonic()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall[name].append((t1 - t0) * 1000)
        cpu[name].append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000)
base_wall = statistics.median(wall["crun-run"])
base_cpu = statistics.median(cpu["crun-run"])
load = open("/proc/loadavg").read().split()[0]
print(f"N={n} per contender, load average {load}")
print(f"{'contender':<14} {'wall ms':>8} {'p90':>7} {'x crun':>7} {'cpu ms':>8} {'x crun':>7}")
for name in contenders:
    w = sorted(wall[name])
    c = statistics.median(cpu[name])
    p90 = w[max(0, int(len(w) * 0.9) - 1)]
    print(f"{name:<14} {statistics.median(w):8.1f} {p90:7.1f} {statistics.median(w) / base_wall:7.2f} "
          f"{c:8.1f} {c / base_cpu:7.2f}")
PY
