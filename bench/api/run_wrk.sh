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
work=$(mktemp -d /tmp/cairn-wrk.XXXXXX)
chmod 755 "$work"
cp "$here/snapshot.json" "$work/snapshot.json"
chmod 644 "$work/snapshot.json"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# Cairn
"$build/bench/api/api_json_server" --threads "$threads" --file "$work/snapshot.json" >"$work/cairn.out" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/cairn.out" && break; sleep 0.05; done
cairn_url="$(sed -n 's/^listening on //p' "$work/cairn.out")/api/snapshots/ubuntu%2Fpython%3A3.12"

# nginx, as many workers as Cairn has I/O threads
nginx_port=$(free_port)
cat >"$work/nginx.conf" <<CONF
worker_processes $threads;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/body; proxy_temp_path $work/proxy;
  fastcgi_temp_path $work/fcgi; uwsgi_temp_path $work/uwsgi; scgi_temp_path $work/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work;
    location / { default_type application/json; try_files /snapshot.json =404; }
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work" &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$nginx_port/x" >/dev/null && break; sleep 0.05; done
nginx_url="http://127.0.0.1:$nginx_port/api/snapshots/ubuntu%2Fpython%3A3.12"

cmp <(curl -sf "$cairn_url") <(curl -sf "$nginx_url") && echo "same body from both: $(wc -c <"$work/snapshot.json") bytes"
for name in cairn nginx; do
  url_var="${name}_url"
  echo "== $name: wrk -t$threads -c$conns -d$duration ${!url_var}"
  wrk -t"$threads" -c"$conns" -d"$duration" --latency "${!url_var}" | grep -E 'Requests/sec|Latency|50%|99%|Transfer/sec|requests in'
done
