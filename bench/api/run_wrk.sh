#!/usr/bin/env bash
# wrk against Cairn's HTTP server (bench/api/json_server.cc, one JSON route) and against nginx
# serving the same JSON as a static file, same machine, same connection count.
#   bench/api/run_wrk.sh BUILD_DIR [DURATION=10s] [CONNECTIONS=64] [THREADS=2]
set -euo pipefail
build=${1:?usage: run_wrk.sh BUILD_DIR [duration] [connections] [threads]}
duration=${2:-10s}
conns=${3:-64}
threads=${4:-2}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/api/wrk_common.sh
source "$here/wrk_common.sh"
make_work_dir cairn-wrk
cp "$here/snapshot.json" "$work/snapshot.json"
chmod 644 "$work/snapshot.json"

# Cairn
"$build/bench/api/api_json_server" --threads "$threads" --file "$work/snapshot.json" >"$work/cairn.out" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/cairn.out" && break; sleep 0.05; done
cairn_url="$(sed -n 's/^listening on //p' "$work/cairn.out")/api/snapshots/ubuntu%2Fpython%3A3.12"

# nginx
start_nginx_static "$work" "$threads"
nginx_url="http://127.0.0.1:$nginx_port/api/snapshots/ubuntu%2Fpython%3A3.12"

cmp <(curl -sf "$cairn_url") <(curl -sf "$nginx_url") && echo "same body from both: $(wc -c <"$work/snapshot.json") bytes"
for name in cairn nginx; do
  url_var="${name}_url"
  echo "== $name: wrk -t$threads -c$conns -d$duration ${!url_var}"
  wrk -t"$threads" -c"$conns" -d"$duration" --latency "${!url_var}" | grep -E 'Requests/sec|Latency|50%|99%|Transfer/sec|requests in'
done
