#!/usr/bin/env bash
# Sandbox start → exit of `true`: `cairn run` against bare `crun run` on the same busybox rootfs
# (and podman when it is installed). Needs root. Prints the median and p90 of N runs each,
# interleaved so that machine load hits every contender alike.
#
#   bench/runtime/run_vs_crun.sh [path/to/cairn] [N]
set -euo pipefail

CAIRN=${1:-build/runtime/src/cli/cairn}
N=${2:-30}
WORK=$(mktemp -d /tmp/cairn-bench-run.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS/bin" "$ROOTFS/etc"
cp "$(command -v busybox)" "$ROOTFS/bin/busybox"
for a in sh true echo; do ln -s busybox "$ROOTFS/bin/$a"; done

# Bare crun: its default spec (new netns with loopback only, no cgroup limits) running `true`.
BUNDLE=$WORK/bundle
mkdir -p "$BUNDLE"
(cd "$BUNDLE" && crun spec && python3 - "$ROOTFS" <<'PY'
import json, sys
c = json.load(open("config.json"))
c["root"] = {"path": sys.argv[1], "readonly": True}
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open("config.json", "w"))
PY
)

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
declare -A samples
contenders=("crun-run" "cairn-none" "cairn-default")
command -v podman >/dev/null && contenders+=("podman-none")
for i in $(seq 1 "$N"); do
  for c in "${contenders[@]}"; do
    t=$(date +%s%N)
    case $c in
      crun-run) crun run --bundle "$BUNDLE" "bench-$$-$i" ;;
      cairn-none) "$CAIRN" --data-dir "$WORK/data" run --rootfs "$ROOTFS" --network none -- /bin/true ;;
      cairn-default) "$CAIRN" --data-dir "$WORK/data" run --rootfs "$ROOTFS" -- /bin/true ;;
      podman-none) podman run --rm --network=none --rootfs "$ROOTFS" /bin/true ;;
    esac
    samples[$c]+="$(ms "$t") "
  done
done

printf '%-14s %8s %8s   (N=%s, load %s)\n' contender median_ms p90_ms "$N" "$(cut -d' ' -f1 /proc/loadavg)"
for c in "${contenders[@]}"; do
  python3 - "$c" ${samples[$c]} <<'PY'
import statistics, sys
name, xs = sys.argv[1], sorted(int(x) for x in sys.argv[2:])
print(f"{name:<14} {statistics.median(xs):8.1f} {xs[int(len(xs) * 0.9) - 1]:8d}")
PY
done
