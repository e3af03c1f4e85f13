#!/usr/bin/env bash
# Benchmarks `ocidist pull` against `skopeo copy docker://… docker-archive:…`
# pulling from Debian's docker-registry on loopback, side by side in one run:
#   (a) one image of a single 200 MiB layer,
#   (b) one image of 8 layers of 25 MiB.
# Each pull runs RUNS times (default 3); prints median wall time, peak RSS
# and the ratio ocidist/skopeo. ocidist reads each layer as one stream by
# default; "(ranged)" is the same pull with `--ranged-above 64` (layers of
# 64 MiB and more as parallel range requests, for links with high
# latency). Beside them, the floor of any verified pull:
# `openssl dgst -sha256` over the same layer bytes (from the page cache),
# the ratio ocidist/floor, and `ocidist blob -o` of each layer in turn.
# Not a test: figures vary with the machine.
#
#   bash bench/pull.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${BENCH_RUNS:-3}

source bench/lib.sh
need skopeo curl sha256sum bc tar openssl /usr/bin/time /usr/bin/docker-registry
echo "building release binary..." >&2
cargo build --release -q -p ocidist
bin=$PWD/target/release/ocidist

start_distribution
url=$dist_url
host=${url#http://}

echo "generating images..." >&2
make_image "$url" bench/single 1 200
make_image "$url" bench/multi 8 25

# timed_fresh OUT CMD...: removes OUT, then times CMD.
timed_fresh() { rm -rf "$1"; shift; timed "$@"; }

# blobs REPO OUTDIR: `ocidist blob -o` of each of the image's layers in turn.
blobs() {
  local repo=$1 out=$2 d
  while read -r d; do
    "$bin" blob "$host/$repo@$d" -o "$out/${d#sha256:}" || return 1
  done <"$work/$repo.digests"
}

row() { # LABEL REPO
  local label=$1 repo=$2 ours=() single=() theirs=() floor=() blob=() ours_rss=0 theirs_rss=0 t r i
  for i in $(seq "$RUNS"); do
    read -r t r < <(timed_fresh "$work/o.tar" "$bin" pull --no-progress "$host/$repo:latest" -o "$work/o.tar")
    ours+=("$t"); [ "$r" -gt "$ours_rss" ] && ours_rss=$r
    read -r t r < <(timed_fresh "$work/o.tar" "$bin" pull --no-progress --ranged-above 64 "$host/$repo:latest" -o "$work/o.tar")
    single+=("$t")
    rm -rf "$work/blobs"; mkdir "$work/blobs"
    read -r t r < <(timed bash -c "$(declare -f blobs); bin=$bin host=$host work=$work; blobs $repo $work/blobs")
    blob+=("$t")
    read -r t r < <(timed openssl dgst -sha256 "$work/$repo.layers/"*)
    floor+=("$t")
    read -r t r < <(timed_fresh "$work/s.tar" skopeo --insecure-policy copy --quiet --src-tls-verify=false \
      "docker://$host/$repo:latest" "docker-archive:$work/s.tar:$repo:latest")
    theirs+=("$t"); [ "$r" -gt "$theirs_rss" ] && theirs_rss=$r
  done
  local mo m1 ms mf mb
  mo=$(printf '%s\n' "${ours[@]}" | median)
  m1=$(printf '%s\n' "${single[@]}" | median)
  ms=$(printf '%s\n' "${theirs[@]}" | median)
  mf=$(printf '%s\n' "${floor[@]}" | median)
  mb=$(printf '%s\n' "${blob[@]}" | median)
  printf '%-22s %9s %11s %9s %7s %12s %11s %9s %9s %11s\n' "$label" "${mo}s" "${m1}s" "${ms}s" \
    "$(echo "scale=2; $mo / $ms" | bc -l)" "$((ours_rss / 1024)) MiB" "$((theirs_rss / 1024)) MiB" \
    "${mf}s" "$(echo "scale=2; $mo / $mf" | bc -l)" "${mb}s"
  printf '%-22s %9s %11s %9s %7s %12s %11s %9s %9s %11s\n' "  lowest-highest" \
    "$(printf '%s\n' "${ours[@]}" | spread)" "$(printf '%s\n' "${single[@]}" | spread)" \
    "$(printf '%s\n' "${theirs[@]}" | spread)" "" "" "" "$(printf '%s\n' "${floor[@]}" | spread)" "" \
    "$(printf '%s\n' "${blob[@]}" | spread)"
}


printf '%-22s %9s %11s %9s %7s %12s %11s %9s %9s %11s\n' "pull to docker-archive" "ocidist" "(ranged)" "skopeo" "ratio" "ocidist RSS" "skopeo RSS" \
  "openssl" "/openssl" "blob -o"
row "1 x 200 MiB layer" bench/single
row "8 x 25 MiB layers" bench/multi
