#!/usr/bin/env bash
# Pull + unpack of a Debian bookworm base with python3 from a local docker-registry:
#   cairn image pull REF               (blobs into the store, layers unpacked into <data>/layers)
# vs
#   skopeo copy docker://REF oci:DIR && umoci unpack --image DIR BUNDLE
#
# usage: bench/registry/pull_unpack.sh [BUILD_DIR] [RUNS]
#   COMPRESSION=gzip|zstd (default gzip: what umoci and every registry client read)
#   WORK_ROOT=DIR   where both unpack (default /tmp: the disk; /dev/shm takes file creation
#                   cost out and shows the CPU side of the pipeline)
#   CAIRN_BASELINE=PATH   another cairn binary to time in the same runs (before/after)
# The base image is built once with `cairn base bootstrap` (~50 s) and cached in
# BUILD_DIR/bench-registry/. Runs hyperfine (all contenders in one invocation, --runs RUNS),
# then RUNS interleaved rounds (cairn, peers, cairn, ...: load changes hit all alike) with
# wall and CPU times (user+sys of all processes), and prints the medians.
set -euo pipefail

BUILD_DIR=${1:-build/oci}
RUNS=${2:-5}
COMPRESSION=${COMPRESSION:-gzip}
CAIRN="$(realpath "$BUILD_DIR")/src/cli/cairn"
CACHE="$(realpath "$BUILD_DIR")/bench-registry"
WORK=$(mktemp -d "${WORK_ROOT:-/tmp}/cairn-bench-XXXXXX")
REG_PID=
cleanup() {
  # Under set -e a failing `wait` (the registry dies of SIGTERM) would skip the rm.
  if [ -n "$REG_PID" ]; then
    kill "$REG_PID" 2>/dev/null || true
    wait "$REG_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in docker-registry skopeo umoci mmdebstrap python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
[ -x "$CAIRN" ] || { echo "build $CAIRN first (ninja -C $BUILD_DIR cairn)" >&2; exit 1; }

# 1. A private registry on a free loopback port.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$WORK/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$WORK/registry.yml" >/dev/null 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done
REF="127.0.0.1:$PORT/bench/debian-python:bookworm"

# 2. The base image, built once (cached), pushed to the registry.
mkdir -p "$CACHE"
if ! "$CAIRN" --data-dir "$CACHE/data-$COMPRESSION" image inspect bench/debian-python:bookworm >/dev/null 2>&1; then
  "$CAIRN" --data-dir "$CACHE/data-$COMPRESSION" base bootstrap --suite bookworm --variant minbase \
    --include python3 --compression "$COMPRESSION" --tag bench/debian-python:bookworm
fi
"$CAIRN" --data-dir "$CACHE/data-$COMPRESSION" image push bench/debian-python:bookworm "$REF" >/dev/null
SIZE=$(skopeo inspect --raw --tls-verify=false "docker://$REF" | python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))')
echo "image: $REF ($COMPRESSION, compressed layer $((SIZE / 1000000)) MB)"

PEERS="skopeo copy -q --src-tls-verify=false docker://$REF oci:$WORK/oci:t && umoci unpack --image $WORK/oci:t $WORK/bundle >/dev/null"
CLEAN="rm -rf $WORK/c $WORK/oci $WORK/bundle; sync"

if command -v hyperfine >/dev/null; then
  args=(--runs "$RUNS" --prepare "$CLEAN" --export-json "$CACHE/hyperfine-$COMPRESSION.json")
  [ -n "${CAIRN_BASELINE:-}" ] &&
    args+=(-n cairn-baseline "$CAIRN_BASELINE --data-dir $WORK/c image pull $REF")
  hyperfine "${args[@]}" -n cairn "$CAIRN --data-dir $WORK/c image pull $REF" \
    -n skopeo+umoci "$PEERS"
fi

# Interleaved rounds: wall and CPU (user+sys, children included) per contender.
timed() {  # prints "wall cpu"
  /usr/bin/time -o "$WORK/time" -f '%e %U %S' bash -c "$1" >/dev/null 2>&1
  tail -1 "$WORK/time" | awk '{printf "%.2f %.2f\n", $1, $2 + $3}'
}
declare -A wall cpu
contenders=(cairn skopeo+umoci)
[ -n "${CAIRN_BASELINE:-}" ] && contenders=(cairn-baseline "${contenders[@]}")
for i in $(seq "$RUNS"); do
  line="round $i:"
  for c in "${contenders[@]}"; do
    case $c in
      cairn) cmd="$CAIRN --data-dir $WORK/c image pull $REF" ;;
      cairn-baseline) cmd="$CAIRN_BASELINE --data-dir $WORK/c image pull $REF" ;;
      skopeo+umoci) cmd="$PEERS" ;;
    esac
    bash -c "$CLEAN"
    read -r w u < <(timed "$cmd")
    wall[$c]+="$w "; cpu[$c]+="$u "
    line+="  $c ${w}s (cpu ${u}s)"
  done
  echo "$line"
done
median() { printf '%s\n' $@ | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for c in "${contenders[@]}"; do
  printf 'median %-15s wall %6.2f s   cpu %6.2f s\n' "$c" "$(median ${wall[$c]})" "$(median ${cpu[$c]})"
done
printf 'ratio cairn / skopeo+umoci: wall %.2f   cpu %.2f\n' \
  "$(echo "$(median ${wall[cairn]}) / $(median ${wall[skopeo+umoci]})" | bc -l)" \
  "$(echo "$(median ${cpu[cairn]}) / $(median ${cpu[skopeo+umoci]})" | bc -l)"
