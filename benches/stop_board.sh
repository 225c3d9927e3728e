#!/usr/bin/env bash
# The stop board over HTTP under wrk, side by side with Debian's nginx
# serving the same JSON as a static file, on loopback on this machine.
#
#   bash benches/stop_board.sh [seconds per run, default 15]
#
# It runs `cityos demo` (a generated city whose simulated buses report over
# MQTT), picks a stop a bus is heading to, saves that stop's board as a
# file for nginx, then loads each with the same wrk settings and prints
# throughput, p99 latency and the ratio. Needs Debian's `wrk` and `nginx`
# (apt-get install wrk nginx-light).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || { echo "needs $tool (apt-get install wrk nginx-light curl python3)"; exit 1; }
done
cargo build --release --quiet -p cityos
tmp=$(mktemp -d)
cleanup() { kill "${demo:-}" "${nginx_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port=$(free_port)
CITYOS_LOG=warn target/release/cityos --data-dir "$tmp/data" demo --no-open \
  --listen "127.0.0.1:$api_port" --mqtt-listen 127.0.0.1:0 >"$tmp/demo.log" 2>&1 &
demo=$!
base="http://127.0.0.1:$api_port"
echo "waiting for the demo's buses to report…"
stop=""
for _ in $(seq 1 120); do
  stop=$(curl -fs "$base/api/v1/vehicles" 2>/dev/null | python3 -c '
import json, sys
vehicles = json.load(sys.stdin)["vehicles"]
stops = [v["next_stop_id"] for v in vehicles if v.get("next_stop_id")]
print(max(set(stops), key=stops.count) if stops else "")' 2>/dev/null || true)
  [[ -n "$stop" ]] && break
  sleep 1
done
[[ -n "$stop" ]] || { echo "no bus reported within two minutes"; cat "$tmp/demo.log"; exit 1; }
# Let the demo finish starting up (keys, connections, riders' cards) before measuring.
sleep 15
path="/api/v1/stops/$stop/departures"
mkdir -p "$tmp/www"
curl -fs "$base$path" >"$tmp/www/board.json"
# nginx's workers run as www-data: let them read the file.
chmod -R a+rX "$tmp"
realtime=$(python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); print(sum(i["realtime"] for i in b["items"]), len(b["items"]))' "$tmp/www/board.json")
echo "stop $stop: $(wc -c <"$tmp/www/board.json") bytes, $realtime (real-time, items)"

nginx_port=$(free_port)
cat >"$tmp/nginx.conf" <<CONF
worker_processes auto;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  server {
    listen 127.0.0.1:$nginx_port;
    root $tmp/www;
  }
}
CONF
/usr/sbin/nginx -c "$tmp/nginx.conf" -p "$tmp" -g 'daemon off;' &
nginx_pid=$!
sleep 1

# A short warm-up first, so both are measured hot.
load() { wrk -t2 -c64 -d3s "$1" >/dev/null; wrk -t2 -c64 -d"${seconds}s" --latency "$1"; }
parse() { python3 -c '
import re, sys
text = sys.stdin.read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"{rps:.0f} {p99:.2f} {errors.group(1) if errors else 0}")'; }

echo "nginx, static file ($seconds s)…"
read -r nginx_rps nginx_p99 nginx_bad < <(load "http://127.0.0.1:$nginx_port/board.json" | parse)
echo "cityos, live stop board ($seconds s)…"
read -r cityos_rps cityos_p99 cityos_bad < <(load "$base$path" | parse)
echo
printf '%-28s %12s %10s %8s\n' "" "requests/s" "p99 (ms)" "errors"
printf '%-28s %12s %10s %8s\n' "nginx (same JSON, static)" "$nginx_rps" "$nginx_p99" "$nginx_bad"
printf '%-28s %12s %10s %8s\n' "cityos stop board (live)" "$cityos_rps" "$cityos_p99" "$cityos_bad"
python3 -c "import sys; c, n = float(sys.argv[1]), float(sys.argv[2]); print(f'cityos / nginx = {c / n:.2f} (target >= 0.5); cityos p99 {sys.argv[3]} ms (target < 5)')" "$cityos_rps" "$nginx_rps" "$cityos_p99"
