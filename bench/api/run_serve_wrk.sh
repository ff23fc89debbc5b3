#!/usr/bin/env bash
# wrk on the real `cairn serve` (SQLite, auth, service) — GET /api/snapshots/{name} with 1 000
# snapshots stored — next to nginx serving the same JSON body as a static file.
#   bench/api/run_serve_wrk.sh BUILD_DIR [DURATION=10s] [CONNECTIONS=64] [THREADS=2] [COUNT=1000]
# BUILDS=N (env, default 0; needs root and busybox-static): wrk runs again while N snapshot
# builds run in the same server, each a RUN step that keeps one CPU busy for the whole
# measurement (the base image is made from busybox-static with `cairn build` first).
set -euo pipefail
build=${1:?usage: run_serve_wrk.sh BUILD_DIR [duration] [connections] [threads] [count]}
duration=${2:-10s}
conns=${3:-64}
threads=${4:-2}
count=${5:-1000}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/api/wrk_common.sh
source "$here/wrk_common.sh"
builds=${BUILDS:-0}
make_work_dir cairn-serve-wrk
cairn="$build/src/cli/cairn"
if [ "$builds" -gt 0 ]; then
  mkdir -p "$work/base"
  cp /bin/busybox "$work/base/busybox"
  printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n' \
    >"$work/base/Dockerfile"
  "$cairn" --data-dir "$work/data" build --progress plain -t bench-busybox:1 "$work/base" >/dev/null
fi

"$cairn" --data-dir "$work/data" serve --listen 127.0.0.1:0 --io-threads "$threads" --max-snapshots $((count + 10)) \
  >"$work/cairn.out" 2>&1 &
pids+=($!)
for _ in $(seq 200); do grep -q listening "$work/cairn.out" && break; sleep 0.05; done
base=$(sed -n 's/^listening on //p' "$work/cairn.out")
key=$(cat "$work/data/initial-api-key")
auth="Authorization: Bearer $key"
echo "creating $count snapshots..."
for i in $(seq "$count"); do
  curl -sf -o /dev/null -H "$auth" -H 'Content-Type: application/json' \
    -d "{\"name\":\"bench/snap-$i:1.0\",\"imageName\":\"alpine:3.19\"}" "$base/api/snapshots"
done
sleep 2  # let the (engine-less) workers settle every snapshot into its final state
cairn_url="$base/api/snapshots/bench%2Fsnap-500%3A1.0"
curl -sf -H "$auth" "$cairn_url" >"$work/snapshot.json"
chmod 644 "$work/snapshot.json"

start_nginx_static "$work" "$threads"
measure_cairn() {
  wrk -t"$threads" -c"$conns" -d"$duration" --latency -H "$auth" "$cairn_url" |
    grep -E 'Requests/sec|Latency|50%|99%|requests in|Non-2xx'
}
nginx_url="http://127.0.0.1:$nginx_port/api/snapshots/bench%2Fsnap-500%3A1.0"
echo "body: $(wc -c <"$work/snapshot.json") bytes"
echo "== cairn serve: wrk -t$threads -c$conns -d$duration"
measure_cairn
echo "== nginx: wrk -t$threads -c$conns -d$duration"
wrk -t"$threads" -c"$conns" -d"$duration" --latency "$nginx_url" |
  grep -E 'Requests/sec|Latency|50%|99%|requests in|Non-2xx'

if [ "$builds" -gt 0 ]; then
  # Each build spins one CPU for longer than wrk runs (a distinct definition each, so no dedup).
  secs=$(( ${duration%s} + 20 ))
  for i in $(seq "$builds"); do
    df="FROM bench-busybox:1\nRUN end=\$((\$(date +%s) + $secs)); while [ \$(date +%s) -lt \$end ]; do :; done; echo build $i"
    curl -sf -o /dev/null -H "$auth" -H 'Content-Type: application/json' \
      -d "{\"name\":\"busy-$i\",\"buildInfo\":{\"dockerfileContent\":\"$df\",\"contextHashes\":[]}}" \
      "$base/api/snapshots"
  done
  for _ in $(seq 100); do  # until every build's RUN step is running
    n=$(curl -sf -H "$auth" "$base/api/snapshots?limit=200" | grep -o '"state":"building"' | wc -l)
    [ "$n" -ge "$builds" ] && break
    sleep 0.2
  done
  sleep 2
  echo "== cairn serve while $builds builds run ($n building): wrk -t$threads -c$conns -d$duration"
  measure_cairn
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
