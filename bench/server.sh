#!/usr/bin/env bash
# Benchmarks this project's server (oci-conformance-server, mem store) against
# Debian's docker-registry (CNCF distribution 2.8, filesystem storage in a
# temporary directory), side by side on loopback, and prints a table.
#
#   bash bench/server.sh            # needs wrk, curl, /usr/bin/docker-registry
#
# Figures: manifest GET by tag (req/s, p99 latency, wrk), blob HEAD (req/s,
# ApacheBench: wrk waits for a body after a HEAD response and stalls),
# 5 MiB blob GET (MB/s), 200 MiB blob push monolithic and in 10 MiB chunks
# (MB/s), and each server's peak RSS (VmHWM). Not a test: numbers vary with
# the machine and its load. MB here is MiB (2^20 bytes).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-5s}
CONNS=${BENCH_CONNECTIONS:-8}
REPO=bench/app

source bench/lib.sh
need wrk ab bc curl sha256sum /usr/bin/docker-registry

echo "building release binary..." >&2
cargo build --release -q -p oci-conformance --bin oci-conformance-server


# --- start both servers -------------------------------------------------------

start_ours target/release/oci-conformance-server --addr 127.0.0.1:0 --store mem

start_distribution

# --- content --------------------------------------------------------------------

echo "generating content..." >&2
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$work/config"
head -c $((5 * 1024 * 1024)) /dev/urandom >"$work/layer5m"
head -c $((200 * 1024 * 1024)) /dev/urandom >"$work/big-mono"
head -c $((200 * 1024 * 1024)) /dev/urandom >"$work/big-chunked"
split -b $((10 * 1024 * 1024)) -d -a 2 "$work/big-chunked" "$work/chunk."
config_digest=$(digest "$work/config")
layer_digest=$(digest "$work/layer5m")
mono_digest=$(digest "$work/big-mono")
chunked_digest=$(digest "$work/big-chunked")
cat >"$work/manifest" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$config_digest","size":$(stat -c %s "$work/config")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"$layer_digest","size":$(stat -c %s "$work/layer5m")}]}
EOF


# push_timed URL FILE DIGEST: POST + monolithic PUT; prints seconds taken.
push_timed() {
  local url=$1 file=$2 dgst=$3 start loc
  start=$(date +%s.%N)
  loc=$(absolute "$url" "$(curl -fs -D - -o /dev/null -X POST "$url/v2/$REPO/blobs/uploads/" | location)")
  curl -fs -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -H 'Expect:' \
    -T "$file" "$loc$(sep "$loc")digest=$dgst"
  echo "$(date +%s.%N) - $start" | bc -l
}

# push_chunked URL DIGEST: POST, one PATCH per 10 MiB chunk, PUT; prints seconds.
push_chunked() {
  local url=$1 dgst=$2 start loc offset=0 size
  start=$(date +%s.%N)
  loc=$(absolute "$url" "$(curl -fs -D - -o /dev/null -X POST "$url/v2/$REPO/blobs/uploads/" | location)")
  for chunk in "$work"/chunk.*; do
    size=$(stat -c %s "$chunk")
    loc=$(absolute "$url" "$(curl -fs -D - -o /dev/null -X PATCH \
      -H 'Content-Type: application/octet-stream' \
      -H "Content-Range: $offset-$((offset + size - 1))" -H 'Expect:' \
      -T "$chunk" "$loc" | location)")
    offset=$((offset + size))
  done
  curl -fs -o /dev/null -X PUT "$loc$(sep "$loc")digest=$dgst"
  echo "$(date +%s.%N) - $start" | bc -l
}

seed() {
  local url=$1
  push_timed "$url" "$work/config" "$config_digest" >/dev/null
  push_timed "$url" "$work/layer5m" "$layer_digest" >/dev/null
  curl -fs -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$work/manifest" "$url/v2/$REPO/manifests/bench"
}

# --- wrk parsing ----------------------------------------------------------------

to_ms() { # 1.23ms / 850.00us / 1.02s -> milliseconds
  local v=$1
  case "$v" in
    *us) echo "${v%us} / 1000" | bc -l ;;
    *ms) echo "${v%ms}" ;;
    *s) echo "${v%s} * 1000" | bc -l ;;
  esac
}
to_mb() { # 1.23GB / 512.00MB / 900KB -> MiB
  local v=$1
  case "$v" in
    *GB) echo "${v%GB} * 1024" | bc -l ;;
    *MB) echo "${v%MB}" ;;
    *KB) echo "${v%KB} / 1024" | bc -l ;;
    *B) echo "${v%B} / 1048576" | bc -l ;;
  esac
}
# Every measured request must succeed: a figure of fast errors is no figure.
wrk_run() {
  local out
  out=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency "$@" 2>&1)
  if grep -q 'Non-2xx' <<<"$out"; then echo "wrk saw errors: $out" >&2; exit 1; fi
  echo "$out"
}
rps() { awk '/^Requests\/sec:/ {print $2}'; }

declare -A result
measure() {
  local name=$1 url=$2 pid=$3 out
  echo "measuring $name..." >&2
  seed "$url"
  curl -fs -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$url/v2/$REPO/manifests/bench" || { echo "$name: seeded manifest not readable" >&2; exit 1; }
  out=$(wrk_run -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$url/v2/$REPO/manifests/bench")
  result[$name,manifest_rps]=$(rps <<<"$out")
  result[$name,manifest_p99]=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  # -n after -t: -t alone caps the run at 50000 requests.
  out=$(ab -k -i -c "$CONNS" -t "${DURATION%s}" -n 100000000 "$url/v2/$REPO/blobs/$layer_digest" 2>&1)
  if grep -q '^Non-2xx' <<<"$out"; then echo "ab saw errors: $out" >&2; exit 1; fi
  result[$name,head_rps]=$(awk '/^Requests per second:/ {print $4}' <<<"$out")
  out=$(wrk_run -c4 "$url/v2/$REPO/blobs/$layer_digest")
  result[$name,get_mbs]=$(to_mb "$(awk '/^Transfer\/sec:/ {print $2}' <<<"$out")")
  result[$name,push_mono]=$(echo "200 / $(push_timed "$url" "$work/big-mono" "$mono_digest")" | bc -l)
  result[$name,push_chunked]=$(echo "200 / $(push_chunked "$url" "$chunked_digest")" | bc -l)
  curl -fs -o /dev/null -I "$url/v2/$REPO/blobs/$chunked_digest" ||
    { echo "$name: chunked push did not produce the blob" >&2; exit 1; }
  result[$name,rss]=$(awk '/^VmHWM:/ {print $2 / 1024}' "/proc/$pid/status")
}

measure ours "$ours_url" "$ours_pid"
measure dist "$dist_url" "$dist_pid"

# --- table ----------------------------------------------------------------------

row() { # label key unit
  local o=${result[ours,$2]} d=${result[dist,$2]} ratio
  ratio=$(echo "if ($d > 0) $o / $d else 0" | bc -l)
  printf '%-42s %12.2f %14.2f %8.2f\n' "$1 ($3)" "$o" "$d" "$ratio"
}
echo
printf '%-42s %12s %14s %8s\n' figure ours distribution ratio
printf '%-42s %12s %14s %8s\n' ------ ---- ------------ -----
row "manifest GET by tag" manifest_rps "req/s"
row "manifest GET p99 latency" manifest_p99 "ms, lower wins"
row "blob HEAD" head_rps "req/s"
row "5 MiB blob GET" get_mbs "MB/s"
row "200 MiB push, monolithic" push_mono "MB/s"
row "200 MiB push, 10 MiB chunks" push_chunked "MB/s"
row "peak RSS" rss "MB, lower wins"
# Our store keeps every pushed blob in memory: the config, the 5 MiB layer
# and the two 200 MiB blobs. What is left over is the server's own use.
stored=$(echo "($(stat -c %s "$work/config") + $(stat -c %s "$work/layer5m") + $(stat -c %s "$work/big-mono") + $(stat -c %s "$work/big-chunked")) / 1048576" | bc -l)
printf '%-42s %12.2f\n' "peak RSS of ours less stored data (MB)" "$(echo "${result[ours,rss]} - $stored" | bc -l)"
echo
echo "wrk: 2 threads, $CONNS connections (4 for blob GET), $DURATION per figure; ab: $CONNS connections"
echo "ratio = ours / distribution"
