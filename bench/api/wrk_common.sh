# Sourced by the wrk scripts (run_wrk.sh, run_serve_wrk.sh).
#   make_work_dir PREFIX              sets work to a fresh /tmp/PREFIX.XXXXXX that nginx workers
#                                     can read; on exit every pid in pids is killed and work removed.
#   start_nginx_static WORK THREADS   nginx serving WORK/snapshot.json for every path, the static
#                                     baseline Cairn's JSON routes are measured against; its pid
#                                     joins pids, and nginx_port is set once it answers.

make_work_dir() {
  work=$(mktemp -d "/tmp/$1.XXXXXX")
  chmod 755 "$work"
  pids=()
  trap _wrk_cleanup EXIT
}

_wrk_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

start_nginx_static() {
  local work=$1 threads=$2
  nginx_port=$(free_port)
  # As many workers as Cairn has I/O threads; keep-alive as long as wrk wants.
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
}
