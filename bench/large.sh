#!/usr/bin/env bash
# Benchmarks oci-large's parallel multi-range download of one big blob
# against a single get_blob stream and plain curl, from this project's
# server (oci-conformance-server, mem store) and Debian's docker-registry
# (CNCF distribution 2.8, filesystem storage), on loopback.
#
#   bash bench/large.sh                # 1 GiB blob, 3 runs each
#   BENCH_SIZE_MIB=256 BENCH_RUNS=5 FETCH_CONCURRENCY=8 bash bench/large.sh
#
# Every figure is the median of BENCH_RUNS runs, in MiB/s, writing the blob
# to a file in a temporary directory (except `ranges-stream`, which reads
# the ordered stream and discards it); each output is checked against the
# digest once. Not a test: numbers vary with the machine and its load. On
# loopback the network is not the bottleneck, so parallel ranges mostly
# show their overhead; they pay off on links with per-connection limits.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${BENCH_SIZE_MIB:-1024}
RUNS=${BENCH_RUNS:-3}
REPO=bench/big

source bench/lib.sh
need curl sha256sum /usr/bin/docker-registry

echo "building release binaries..." >&2
cargo build --release -q -p oci-conformance --bin oci-conformance-server
cargo build --release -q -p oci-large --example fetch
fetch=$PWD/target/release/examples/fetch


# --- start both servers -------------------------------------------------------

start_ours target/release/oci-conformance-server --addr 127.0.0.1:0 --store mem

start_distribution

# --- content --------------------------------------------------------------------

echo "generating a $SIZE_MIB MiB blob..." >&2
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$work/blob"
size=$(stat -c %s "$work/blob")
digest=$(digest "$work/blob")


# --- runs -------------------------------------------------------------------------

mibs() { awk -v s="$1" -v m="$SIZE_MIB" 'BEGIN {printf "%.1f", m / s}'; }

check() { # FILE LABEL
  [ "$(digest "$1")" = "$digest" ] ||
    { echo "$2: the downloaded blob does not match its digest" >&2; exit 1; }
}

declare -A result
measure() { # NAME URL
  local name=$1 url=$2 host=${2#http://} mode secs start run
  echo "measuring $name..." >&2
  push_blob "$url" "$REPO" "$work/blob"
  for mode in curl single ranges ranges-stream; do
    local times=()
    for run in $(seq "$RUNS"); do
      rm -f "$work/out"
      if [ "$mode" = curl ]; then
        start=$(date +%s.%N)
        curl -fs -o "$work/out" "$url/v2/$REPO/blobs/$digest"
        sync "$work/out"
        secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
      else
        secs=$("$fetch" "$host" "$REPO" "$digest" "$size" "$mode" "$work/out" | awk '{print $2}')
      fi
      if [ "$run" = 1 ] && [ "$mode" != ranges-stream ]; then check "$work/out" "$name $mode"; fi
      times+=("$secs")
    done
    result[$name,$mode]=$(mibs "$(printf '%s\n' "${times[@]}" | median)")
  done
}

measure ours "$ours_url"
measure dist "$dist_url"

# --- table --------------------------------------------------------------------------

echo
printf '%-44s %10s %14s\n' "figure (MiB/s, $SIZE_MIB MiB blob)" ours distribution
printf '%-44s %10s %14s\n' ------ ---- ------------
row() { printf '%-44s %10s %14s\n' "$1" "${result[ours,$2]}" "${result[dist,$2]}"; }
row "curl, one GET to a file" curl
row "get_blob, one stream to a file" single
row "download_to_file, parallel ranges" ranges
row "download, ordered stream (discarded)" ranges-stream
echo
echo "median of $RUNS runs; ranges: concurrency ${FETCH_CONCURRENCY:-4}, chunk tuned in 1-64 MiB"
