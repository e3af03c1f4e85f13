#!/usr/bin/env bash
# Benchmarks copying a multi-platform image between two registries:
# `ocidist copy --all-platforms` against `skopeo copy --all`, both from one
# Debian docker-registry to a fresh one on loopback, side by side in one
# run.
# The image is an index of PLATFORMS platforms (default 4), each with 3
# random layers of LAYER_MIB MiB (default 8). The copy's index digest is
# checked against the source's.
# Prints median wall time over RUNS runs (default 5), peak RSS and the
# ratio. Not a test. (skopeo runs with --preserve-digests: by default it
# compresses the uncompressed layers, which changes every digest.)
#
#   bash bench/copy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${BENCH_RUNS:-5}
PLATFORMS=${BENCH_PLATFORMS:-4}
LAYER_MIB=${BENCH_LAYER_MIB:-8}

source bench/lib.sh
need skopeo curl sha256sum bc tar /usr/bin/time /usr/bin/docker-registry
echo "building release binary..." >&2
cargo build --release -q -p ocidist
bin=$PWD/target/release/ocidist

start_distribution src
src=$dist_url
repo=bench/multi

# put_manifest URL REPO REF MEDIA-TYPE FILE
put_manifest() {
  curl -fs -o /dev/null -X PUT -H "Content-Type: $4" --data-binary "@$5" "$1/v2/$2/manifests/$3"
}

echo "generating a $PLATFORMS-platform image..." >&2
arches=(amd64 arm64 ppc64le s390x riscv64 386 mips64le arm)
children=""
for p in $(seq 0 $((PLATFORMS - 1))); do
  arch=${arches[$((p % ${#arches[@]}))]}
  layers="" diff_ids=""
  for i in 1 2 3; do
    head -c $((LAYER_MIB * 1024 * 1024)) /dev/urandom >"$work/data"
    tar -C "$work" -cf "$work/layer.tar" data
    push_blob "$src" "$repo" "$work/layer.tar"
    layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"$(digest "$work/layer.tar")\",\"size\":$(stat -c %s "$work/layer.tar")}"
    diff_ids="$diff_ids${diff_ids:+,}\"$(digest "$work/layer.tar")\""
  done
  printf '{"architecture":"%s","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
    "$arch" "$diff_ids" >"$work/config"
  push_blob "$src" "$repo" "$work/config"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
    "$(digest "$work/config")" "$(stat -c %s "$work/config")" "$layers" >"$work/manifest"
  put_manifest "$src" "$repo" "$(digest "$work/manifest")" application/vnd.oci.image.manifest.v1+json "$work/manifest"
  children="$children${children:+,}{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$(digest "$work/manifest")\",\"size\":$(stat -c %s "$work/manifest"),\"platform\":{\"architecture\":\"$arch\",\"os\":\"linux\"}}"
done
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' "$children" >"$work/index"
put_manifest "$src" "$repo" latest application/vnd.oci.image.index.v1+json "$work/index"
want=$(digest "$work/index")
rm -f "$work/data" "$work/layer.tar"

# check_copy URL REPO: the copy's tag names the source's index.
check_copy() {
  local got
  got=$(curl -fsI -H 'Accept: application/vnd.oci.image.index.v1+json' "$1/v2/$2/manifests/latest" |
    tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
  [ "$got" = "$want" ] || { echo "copy to $1/$2 has index $got, not $want" >&2; exit 1; }
}

# Each copy goes to a registry of its own: skopeo's blob-info cache
# (/var/lib/containers/cache for root) remembers where blobs went and
# would mount them from an earlier run's repository instead of copying.
ours=() theirs=() ours_rss=0 theirs_rss=0
for i in $(seq "$RUNS"); do
  start_distribution "ours$i"
  read -r t r < <(timed "$bin" copy --all-platforms "${src#http://}/$repo:latest" "${dist_url#http://}/$repo:latest")
  ours+=("$t"); [ "$r" -gt "$ours_rss" ] && ours_rss=$r
  check_copy "$dist_url" "$repo"
  start_distribution "skopeo$i"
  read -r t r < <(timed skopeo --insecure-policy copy --quiet --all --preserve-digests --src-tls-verify=false \
    --dest-tls-verify=false "docker://${src#http://}/$repo:latest" "docker://${dist_url#http://}/$repo:latest")
  theirs+=("$t"); [ "$r" -gt "$theirs_rss" ] && theirs_rss=$r
  check_copy "$dist_url" "$repo"
done
mo=$(printf '%s\n' "${ours[@]}" | median)
ms=$(printf '%s\n' "${theirs[@]}" | median)
mib=$((PLATFORMS * 3 * LAYER_MIB))
printf '%-34s %10s %10s %8s\n' "copy $PLATFORMS platforms, $mib MiB" "ocidist" "skopeo" "ratio"
printf '%-34s %10s %10s %8s\n' "median wall time" "${mo}s" "${ms}s" "$(echo "scale=2; $mo / $ms" | bc -l)"
printf '%-34s %10s %10s\n' "peak RSS" "$((ours_rss / 1024)) MiB" "$((theirs_rss / 1024)) MiB"
