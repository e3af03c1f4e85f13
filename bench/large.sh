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

for tool in curl sha256sum /usr/bin/docker-registry; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run .ci/install-deps" >&2; exit 1; }
done

echo "building release binaries..." >&2
cargo build --release -q -p oci-conformance --bin oci-conformance-server
cargo build --release -q -p oci-large --example fetch
fetch=$PWD/target/release/examples/fetch

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- start both servers -------------------------------------------------------

target/release/oci-conformance-server --addr 127.0.0.1:0 --store mem >"$work/ours.out" 2>"$work/ours.err" &
pids+=($!)
for _ in $(seq 100); do grep -q '^listening on ' "$work/ours.out" && break; sleep 0.05; done
ours_url=$(sed -n 's/^listening on //p' "$work/ours.out")
[ -n "$ours_url" ] || { echo "our server did not start: $(cat "$work/ours.err")" >&2; exit 1; }

free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}
dist_port=$(free_port)
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry-data
http:
  addr: 127.0.0.1:$dist_port
EOF
/usr/bin/docker-registry serve "$work/registry.yml" >"$work/dist.log" 2>&1 &
pids+=($!)
dist_url="http://127.0.0.1:$dist_port"
for _ in $(seq 200); do curl -fs -o /dev/null "$dist_url/v2/" && break; sleep 0.05; done
curl -fs -o /dev/null "$dist_url/v2/" || { echo "docker-registry did not start" >&2; exit 1; }

# --- content --------------------------------------------------------------------

echo "generating a $SIZE_MIB MiB blob..." >&2
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$work/blob"
size=$(stat -c %s "$work/blob")
digest="sha256:$(sha256sum "$work/blob" | cut -d' ' -f1)"

absolute() { case "$2" in http*) echo "$2" ;; *) echo "$1$2" ;; esac; }
location() { tr -d '\r' | sed -n 's/^[Ll]ocation: //p'; }
sep() { case "$1" in *\?*) echo "&" ;; *) echo "?" ;; esac; }
push() { # URL: POST + monolithic PUT of the blob
  local url=$1 loc
  loc=$(absolute "$url" "$(curl -fs -D - -o /dev/null -X POST "$url/v2/$REPO/blobs/uploads/" | location)")
  curl -fs -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -H 'Expect:' \
    -T "$work/blob" "$loc$(sep "$loc")digest=$digest"
}

# --- runs -------------------------------------------------------------------------

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
mibs() { awk -v s="$1" -v m="$SIZE_MIB" 'BEGIN {printf "%.1f", m / s}'; }

check() { # FILE LABEL
  [ "sha256:$(sha256sum "$1" | cut -d' ' -f1)" = "$digest" ] ||
    { echo "$2: the downloaded blob does not match its digest" >&2; exit 1; }
}

declare -A result
measure() { # NAME URL
  local name=$1 url=$2 host=${2#http://} mode secs start run
  echo "measuring $name..." >&2
  push "$url"
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
