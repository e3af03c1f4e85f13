#!/usr/bin/env bash
# Benchmarks oci-server over oci-layout (the on-disk store, every write
# synced) against Debian's docker-registry (CNCF distribution 2.8,
# filesystem storage), side by side on loopback, and prints a table.
#
#   bash bench/layout.sh            # needs curl, bc, sha256sum, /usr/bin/docker-registry
#
# Figures: a 200 MiB blob pushed (monolithic PUT) and pulled (GET), in MB/s;
# 1,000 small manifests pushed (PUT by tag) and pulled (GET by tag) by one
# curl process over $CONNS parallel keep-alive connections, in requests/s.
# Both stores live in one temporary directory on the same disk. Not a test:
# numbers vary with the machine and its load. MB here is MiB (2^20 bytes).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${BENCH_CONNECTIONS:-8}
MANIFESTS=${BENCH_MANIFESTS:-1000}
REPO=bench/app

source bench/lib.sh
need bc curl sha256sum /usr/bin/docker-registry

echo "building release example..." >&2
cargo build --release -q -p oci-layout --example serve_layout


# --- start both servers -------------------------------------------------------

start_ours target/release/examples/serve_layout "$work/layout-data" 127.0.0.1:0

start_distribution

# --- content --------------------------------------------------------------------

echo "generating content..." >&2
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$work/config"
head -c 4096 /dev/urandom >"$work/layer"
head -c $((200 * 1024 * 1024)) /dev/urandom >"$work/big"
config_digest=$(digest "$work/config")
layer_digest=$(digest "$work/layer")
big_digest=$(digest "$work/big")
mkdir "$work/manifests"
for i in $(seq "$MANIFESTS"); do
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":4096}],"annotations":{"bench.n":"%d"}}' \
    "$config_digest" "$(stat -c %s "$work/config")" "$layer_digest" "$i" >"$work/manifests/m$i"
done

now() { date +%s.%N; }

# push_timed URL FILE DIGEST: POST + monolithic PUT; prints seconds taken.
push_timed() {
  local url=$1 file=$2 dgst=$3 start loc
  start=$(now)
  loc=$(absolute "$url" "$(curl -fs -D - -o /dev/null -X POST "$url/v2/$REPO/blobs/uploads/" | location)")
  curl -fs -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -H 'Expect:' \
    -T "$file" "$loc$(sep "$loc")digest=$dgst"
  echo "$(now) - $start" | bc -l
}

# pull_blob URL DIGEST: one GET to /dev/null; prints seconds taken.
pull_blob() {
  local url=$1 dgst=$2 start
  start=$(now)
  curl -fs -o /dev/null "$url/v2/$REPO/blobs/$dgst"
  echo "$(now) - $start" | bc -l
}

# check_blob URL DIGEST: the pulled blob has its digest (not timed).
check_blob() {
  local got
  got=$(curl -fs "$1/v2/$REPO/blobs/$2" | sha256sum | cut -d' ' -f1)
  [ "sha256:$got" = "$2" ] || { echo "$1: pulled blob does not match $2" >&2; exit 1; }
}

# many NAME URL MODE: runs $MANIFESTS transfers in one curl over $CONNS
# connections (MODE push: PUT each manifest by tag; pull: GET each by tag);
# every one must answer 2xx. Prints requests/s.
many() {
  local url=$1 mode=$2 cfg="$work/curl-$RANDOM.cfg" start took ok
  {
    echo 'header = "Content-Type: application/vnd.oci.image.manifest.v1+json"'
    echo 'header = "Accept: application/vnd.oci.image.manifest.v1+json"'
    echo 'write-out = "%{http_code}\n"'
    for i in $(seq "$MANIFESTS"); do
      [ "$mode" = push ] && echo "upload-file = \"$work/manifests/m$i\""
      echo "url = \"$url/v2/$REPO/manifests/t$i\""
      echo 'output = "/dev/null"'
    done
  } >"$cfg"
  start=$(now)
  ok=$(curl -s --no-progress-meter --parallel --parallel-max "$CONNS" -K "$cfg" | grep -c '^20[01]$' || true)
  took=$(echo "$(now) - $start" | bc -l)
  [ "$ok" -eq "$MANIFESTS" ] || { echo "$mode: only $ok of $MANIFESTS requests succeeded" >&2; exit 1; }
  echo "$MANIFESTS / $took" | bc -l
}

declare -A result
measure() {
  local name=$1 url=$2 best t
  echo "measuring $name..." >&2
  push_timed "$url" "$work/config" "$config_digest" >/dev/null
  push_timed "$url" "$work/layer" "$layer_digest" >/dev/null
  result[$name,push_big]=$(echo "200 / $(push_timed "$url" "$work/big" "$big_digest")" | bc -l)
  best=0
  for _ in 1 2 3; do
    t=$(echo "200 / $(pull_blob "$url" "$big_digest")" | bc -l)
    best=$(echo "if ($t > $best) $t else $best" | bc -l)
  done
  result[$name,pull_big]=$best
  check_blob "$url" "$big_digest"
  result[$name,push_manifests]=$(many "$url" push)
  result[$name,pull_manifests]=$(many "$url" pull)
}

measure ours "$ours_url"
measure dist "$dist_url"

# --- table ----------------------------------------------------------------------

row() { # label key unit
  local o=${result[ours,$2]} d=${result[dist,$2]} ratio
  ratio=$(echo "if ($d > 0) $o / $d else 0" | bc -l)
  printf '%-40s %12.2f %14.2f %8.2f\n' "$1 ($3)" "$o" "$d" "$ratio"
}
echo
printf '%-40s %12s %14s %8s\n' figure "oci-layout" distribution ratio
printf '%-40s %12s %14s %8s\n' ------ ---------- ------------ -----
row "200 MiB blob push, monolithic" push_big "MB/s"
row "200 MiB blob pull (best of 3)" pull_big "MB/s"
row "$MANIFESTS small manifests pushed by tag" push_manifests "req/s"
row "$MANIFESTS small manifests pulled by tag" pull_manifests "req/s"
echo
echo "curl: $CONNS parallel connections for the manifests; ratio = oci-layout / distribution"
echo "oci-layout syncs every blob, manifest and index.json write to disk before answering."
