#!/usr/bin/env bash
# Pull + unpack of a Debian bookworm base with python3 from a local docker-registry:
#   cairn image pull REF               (blobs into the store, layers unpacked into <data>/layers)
# vs
#   skopeo copy docker://REF oci:DIR && umoci unpack --image DIR BUNDLE
#
# usage: bench/registry/pull_unpack.sh [BUILD_DIR] [RUNS]
#   COMPRESSION=gzip|zstd (default gzip: what umoci and every registry client read)
# The base image is built once with `cairn base bootstrap` (~50 s) and cached in
# BUILD_DIR/bench-registry/. Prints one line per run and the medians.
set -euo pipefail

BUILD_DIR=${1:-build/oci}
RUNS=${2:-5}
COMPRESSION=${COMPRESSION:-gzip}
CAIRN="$BUILD_DIR/src/cli/cairn"
CACHE="$(realpath "$BUILD_DIR")/bench-registry"
WORK=$(mktemp -d /tmp/cairn-bench-XXXXXX)
REG_PID=
cleanup() {
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
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
SIZE=$(skopeo inspect --tls-verify=false "docker://$REF" | python3 -c 'import json,sys; print(sum(json.load(sys.stdin)["LayersData"][i]["Size"] for i in range(1)))')
echo "image: $REF ($COMPRESSION, compressed layer $((SIZE / 1000000)) MB)"

now() { date +%s.%N; }
cairn_times=(); peer_times=()
for i in $(seq "$RUNS"); do
  rm -rf "$WORK/c" "$WORK/oci" "$WORK/bundle"; sync
  t0=$(now)
  "$CAIRN" --data-dir "$WORK/c" image pull "$REF" >/dev/null
  t1=$(now)
  skopeo copy -q --src-tls-verify=false "docker://$REF" "oci:$WORK/oci:t" >/dev/null
  umoci unpack --image "$WORK/oci:t" "$WORK/bundle" >/dev/null
  t2=$(now)
  c=$(echo "$t1 - $t0" | bc); p=$(echo "$t2 - $t1" | bc)
  cairn_times+=("$c"); peer_times+=("$p")
  printf 'run %d: cairn %.2f s   skopeo+umoci %.2f s\n' "$i" "$c" "$p"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mc=$(median "${cairn_times[@]}"); mp=$(median "${peer_times[@]}")
printf 'median: cairn %.2f s   skopeo+umoci %.2f s   ratio %.2f\n' "$mc" "$mp" "$(echo "$mc / $mp" | bc -l)"
