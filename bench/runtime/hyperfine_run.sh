#!/usr/bin/env bash
# Sandbox start → exit of `true` with hyperfine: bare `crun run` against `cairn run IMAGE true`
# (and `cairn run --rootfs`) on the same busybox-static root filesystem, in ONE hyperfine
# invocation per round so that machine load hits every command alike; prints each round's
# medians and their ratio to crun. Needs root and hyperfine.
#
#   bench/runtime/hyperfine_run.sh path/to/cairn [path/to/other/cairn] [ROUNDS] [RUNS]
#
# A second cairn binary (e.g. one built from an older commit) is measured in the same rounds,
# each with its own data dir, for a before/after comparison.
#
# INTERLEAVED=1 times the same commands with interleaved.py instead (crun, cairn, other, crun,
# …; medians and quartiles): fairer than hyperfine's back-to-back runs while the load moves.
set -euo pipefail

CAIRN=$(realpath "${1:-build/runtime/src/cli/cairn}")
OTHER=${2:-}
[[ -n "$OTHER" ]] && OTHER=$(realpath "$OTHER")
ROUNDS=${3:-3}
RUNS=${4:-40}
WORK=$(mktemp -d /tmp/cairn-bench-hf.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The busybox rootfs and bare crun's bundle on it.
. "$(dirname "$(realpath "$0")")/busybox_bundle.sh"

# The same files as an image in each cairn's store (FROM scratch, one COPY).
mkdir -p "$WORK/ctx"
cp -a "$ROOTFS" "$WORK/ctx/rootfs"
printf 'FROM scratch\nCOPY rootfs/ /\nCMD ["/bin/true"]\n' > "$WORK/ctx/Dockerfile"
"$CAIRN" --data-dir "$WORK/data-new" build --progress plain -t bench-bb:latest "$WORK/ctx" \
  > /dev/null 2>&1
cmds=("crun run --bundle $BUNDLE hf-{round}"
      "$CAIRN --data-dir $WORK/data-new run --network none bench-bb:latest true"
      "$CAIRN --data-dir $WORK/data-new run --network none --rootfs $ROOTFS -- /bin/true")
if [[ -n "$OTHER" ]]; then
  "$OTHER" --data-dir "$WORK/data-old" build --progress plain -t bench-bb:latest "$WORK/ctx" \
    > /dev/null 2>&1
  cmds+=("$OTHER --data-dir $WORK/data-old run --network none bench-bb:latest true")
fi

if [[ "${CPU:-0}" == 1 ]]; then
  # CPU time (user + system of the command and all its children, `perf stat` task-clock):
  # what a start costs the machine, far less disturbed by other load than wall time.
  for c in "${cmds[@]}"; do
    c=${c/\{round\}/cpu}
    ms=$(perf stat -x, -e task-clock -r "$RUNS" $c 2>&1 >/dev/null | awk -F, '/task-clock/{print $1}')
    printf '  %7.2f ms CPU  %s\n' "$ms" "$c"
  done
  exit 0
fi

if [[ "${INTERLEAVED:-0}" == 1 ]]; then
  here=$(dirname "$(realpath "$0")")
  args=()
  for c in "${cmds[@]}"; do args+=(-c "${c/\{round\}/il}"); done
  for round in $(seq 1 "$ROUNDS"); do
    echo "round $round"
    python3 "$here/interleaved.py" --runs "$RUNS" --warmup 3 "${args[@]}"
  done
  exit 0
fi

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round (load $(cut -d' ' -f1-3 /proc/loadavg))"
  hyperfine -N -w 3 -r "$RUNS" --export-json "$WORK/round$round.json" \
    "${cmds[@]/\{round\}/$round}" > /dev/null 2>&1
  python3 - "$WORK/round$round.json" <<'PY'
import json, statistics, sys
results = json.load(open(sys.argv[1]))["results"]
base = statistics.median(results[0]["times"])
for r in results:
    m = statistics.median(r["times"])
    print(f"  {m * 1000:7.1f} ms  x{m / base:4.2f}  {r['command']}")
PY
done
