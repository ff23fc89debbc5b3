#!/usr/bin/env bash
# wrk on the real `cairn serve` (SQLite, auth, service) — GET /api/snapshots/{name} with 1 000
# snapshots stored — next to nginx serving the same JSON body as a static file.
#   bench/api/run_serve_wrk.sh BUILD_DIR [DURATION=10s] [CONNECTIONS=64] [THREADS=2] [COUNT=1000]
set -euo pipefail
build=${1:?usage: run_serve_wrk.sh BUILD_DIR [duration] [connections] [threads] [count]}
duration=${2:-10s}
conns=${3:-64}
threads=${4:-2}
count=${5:-1000}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/api/wrk_common.sh
source "$here/wrk_common.sh"
make_work_dir cairn-serve-wrk

"$build/src/cli/cairn" --data-dir "$work/data" serve --listen 127.0.0.1:0 --io-threads "$threads" --max-snapshots $((count + 10)) \
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
nginx_url="http://127.0.0.1:$nginx_port/api/snapshots/bench%2Fsnap-500%3A1.0"
echo "body: $(wc -c <"$work/snapshot.json") bytes"
echo "== cairn serve: wrk -t$threads -c$conns -d$duration"
wrk -t"$threads" -c"$conns" -d"$duration" --latency -H "$auth" "$cairn_url" |
  grep -E 'Requests/sec|Latency|50%|99%|requests in|Non-2xx'
echo "== nginx: wrk -t$threads -c$conns -d$duration"
wrk -t"$threads" -c"$conns" -d"$duration" --latency "$nginx_url" |
  grep -E 'Requests/sec|Latency|50%|99%|requests in|Non-2xx'
