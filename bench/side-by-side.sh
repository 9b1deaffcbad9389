#!/usr/bin/env bash
# Switchboard side by side with the peer hubs, in one run (README "Performance").
#
#   bench/side-by-side.sh               # uWebSockets.js, then Switchboard
#   bench/side-by-side.sh ws sio uws sb # every peer
#   SB_BIN=/tmp/other/switchboard bench/side-by-side.sh sb
#
# The workloads and the load generator live in ../shared/bench (its README says what each
# row means). The load generator opens 10,000 sockets from four loopback addresses, far past
# the per-address guards a real deployment wants, so they are raised here for the run only.
set -eu
repo=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
peers=$repo/../shared/bench
[ -d "$peers/peers/node_modules" ] || (cd "$peers/peers" && npm install --no-audit --no-fund)
if [ -z "${SB_BIN:-}" ]; then
  (cd "$repo" && cargo build --release -q)
  export SB_BIN=$repo/target/release/switchboard
fi
export SWITCHBOARD_HANDSHAKE_RATE_PER_IP=1000000 SWITCHBOARD_MAX_CONNECTIONS_PER_IP=1000000
[ $# -gt 0 ] || set -- uws sb
exec "$peers/peers.sh" "$@"
