#!/usr/bin/env bash
# Hostile and ordinary load side by side: `ocidist serve` (in memory and
# --storage) and Debian's docker-registry (CNCF distribution 2.8,
# filesystem storage), each under the same load from `soak-load`
# (crates/oci-testbed/src/bin/soak_load.rs), one after the other:
#
#   1. 500 connections downloading a 256 KiB blob and reading 512 bytes
#      every 250 ms, and 1,000 idle connections (half after one request),
#      while a normal client runs 200 rounds of push and pull (10 requests
#      each, keep-alive); its latencies p50 / p99 / max and its errors.
#   2. 50,000 one-byte PATCHes (50 uploads at once, each PATCH on a new
#      connection), committed: how much the server's RSS grew.
#
#   bash bench/soak.sh          # needs curl, /usr/bin/docker-registry
#
# Not a test: numbers vary with the machine and its load. Ratios are
# docker-registry's figure over ours (above 1: ours is lower).
set -euo pipefail
cd "$(dirname "$0")/.."

SLOW=${SOAK_SLOW:-500}
IDLE=${SOAK_IDLE:-1000}
ROUNDS=${SOAK_ROUNDS:-200}
UPLOADS=${SOAK_UPLOADS:-50}
PATCHES=${SOAK_PATCHES:-1000}

source bench/lib.sh
need curl /usr/bin/docker-registry

echo "building release binaries..." >&2
cargo build --release -q -p ocidist --bin ocidist
cargo build --release -q -p oci-testbed --bin soak-load
bin=target/release/ocidist
load=target/release/soak-load
# The load holds about 1,500 sockets; the servers raise their own limits.
ulimit -n "$(ulimit -Hn)"

# serve NAME ARGS...: `ocidist serve` on a free port; sets $addr, $pid.
serve() {
  local name=$1 port
  shift
  port=$(free_port)
  "$bin" serve --addr "127.0.0.1:$port" "$@" 2>"$work/$name.err" &
  pid=$!
  pids+=("$pid")
  addr="127.0.0.1:$port"
  for _ in $(seq 200); do grep -q '^listening on ' "$work/$name.err" && return; sleep 0.05; done
  echo "$name did not start: $(cat "$work/$name.err")" >&2
  exit 1
}

# soak NAME ADDR PID: runs the load; its figures go to $work/NAME.
soak() {
  echo "== $1" >&2
  "$load" "$2" "$3" "$SLOW" "$IDLE" "$ROUNDS" "$UPLOADS" "$PATCHES" >"$work/$1"
  cat "$work/$1" >&2
  kill "$3" 2>/dev/null || true
}

serve mem
soak mem "$addr" "$pid"
serve disk --storage "$work/store"
soak disk "$addr" "$pid"
start_distribution
soak dist "${dist_url#http://}" "$dist_pid"

# fig NAME KEY: one figure of a run.
fig() { tr ' ' '\n' <"$work/$1" | sed -n "s/^$2=//p"; }
ratio() { awk -v d="$1" -v o="$2" 'BEGIN { if (o > 0) printf "%.1fx", d / o; else print "-" }'; }

echo
echo "normal client: $((ROUNDS * 10)) requests beside $SLOW slow readers and $IDLE idle connections;"
echo "RSS growth: $((UPLOADS * PATCHES)) one-byte PATCHes, one connection each"
printf '%-22s %10s %10s %14s %14s %14s\n' figure "ours mem" "ours disk" docker-registry "dist/mem" "dist/disk"
printf '%-22s %10s %10s %14s %14s %14s\n' ------ -------- --------- --------------- -------- ---------
for key in p50_ms p99_ms max_ms errors rss_growth_kib; do
  m=$(fig mem $key) d=$(fig disk $key) r=$(fig dist $key)
  printf '%-22s %10s %10s %14s %14s %14s\n' "$key" "$m" "$d" "$r" "$(ratio "$r" "$m")" "$(ratio "$r" "$d")"
done
