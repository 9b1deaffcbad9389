#!/usr/bin/env bash
# New connections/s, alternating fresh processes: uWebSockets.js, an empty actix-web WebSocket
# server (bench/actix-floor) and Switchboard, ROUNDS times, 8 s apart (so the loopback ports
# the last run left in TIME_WAIT don't stall the next). Prints connections/s, the server's CPU
# ticks (1/100 s) over the 10,000 handshakes, and RSS per socket.
#
#   bench/handshakes.sh            # 3 rounds
#   ROUNDS=5 SB_BIN=/tmp/other/switchboard bench/handshakes.sh
set -eu
repo=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
peers=$repo/../shared/bench
lg=$peers/loadgen/target/release/loadgen
[ -x "$lg" ] || (cd "$peers/loadgen" && cargo build --release -q)
[ -d "$peers/peers/node_modules" ] || (cd "$peers/peers" && npm install --no-audit --no-fund)
(cd "$repo/bench/actix-floor" && CARGO_TARGET_DIR=$repo/target cargo build --release -q)
if [ -z "${SB_BIN:-}" ]; then
  (cd "$repo" && cargo build --release -q)
  SB_BIN=$repo/target/release/switchboard
fi
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
run() {
  local name=$1 port=$2 pid url proto dir
  case $name in
    uws) (cd "$peers/peers" && PORT=$port exec node uws-hub.js >/dev/null 2>&1) & pid=$!
         url=ws://127.0.0.1:$port/ proto=raw ;;
    floor) PORT=$port "$repo/target/release/actix-floor" >/dev/null 2>&1 & pid=$!
         url=ws://127.0.0.1:$port/ws proto=sb ;;
    sb) dir=$(mktemp -d)
        SWITCHBOARD_HANDSHAKE_RATE_PER_IP=1000000 SWITCHBOARD_MAX_CONNECTIONS_PER_IP=1000000 \
        SWITCHBOARD_JWT_SECRET=bench-secret-0123456789 RUST_LOG=warn "$SB_BIN" serve \
          --rate-limit-per-sec 1000000 --rate-limit-burst 1000000 --bind 127.0.0.1:$port \
          --database-url "sqlite://$dir/b.db" >"$dir/log" 2>&1 & pid=$!
        url=ws://127.0.0.1:$port/ws proto=sb ;;
  esac
  sleep 1.5
  local r0 t0 t1 r1 out
  r0=$(rss_kb $pid); t0=$(ticks $pid)
  out=$(mktemp)
  "$lg" idle --proto $proto --url $url --n 10000 --hold 3 --src-ips 4 >"$out" 2>&1 &
  local lgp=$!
  sleep 2; t1=$(ticks $pid); r1=$(rss_kb $pid); wait $lgp
  echo "$name $(grep -o 'conn_per_s=[0-9]*' "$out") server_ticks=$((t1 - t0)) bytes_per_conn=$(( (r1 - r0) * 1024 / 10000 ))"
  kill $pid; wait $pid 2>/dev/null || true; sleep 8
}
for r in $(seq "${ROUNDS:-3}"); do
  run uws $((9810 + r)); run floor $((9830 + r)); run sb $((9850 + r))
done
