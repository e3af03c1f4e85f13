#!/usr/bin/env bash
# Benchmarks `ocidist pull` against `skopeo copy docker://… docker-archive:…`
# pulling from Debian's docker-registry on loopback, side by side in one run:
#   (a) one image of a single 200 MiB layer,
#   (b) one image of 8 layers of 25 MiB.
# Each pull runs RUNS times (default 3); prints median wall time, peak RSS
# and the ratio ocidist/skopeo. ocidist fetches layers of 64 MiB and more
# as parallel range requests; "(1 stream)" is the same pull with
# `--ranged-above 0`. Not a test: figures vary with the machine.
#
#   bash bench/pull.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${BENCH_RUNS:-3}

for tool in skopeo curl sha256sum bc tar /usr/bin/time /usr/bin/docker-registry; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run .ci/install-deps" >&2; exit 1; }
done

echo "building release binary..." >&2
cargo build --release -q -p ocidist
bin=$PWD/target/release/ocidist

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$((20000 + RANDOM % 40000))
cat >"$work/registry.yml" <<EOF2
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry-data
http:
  addr: 127.0.0.1:$port
EOF2
/usr/bin/docker-registry serve "$work/registry.yml" >"$work/dist.log" 2>&1 &
pids+=($!)
url="http://127.0.0.1:$port"
for _ in $(seq 200); do curl -fs -o /dev/null "$url/v2/" && break; sleep 0.05; done
curl -fs -o /dev/null "$url/v2/" || { echo "docker-registry did not start" >&2; exit 1; }

digest() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
location() { tr -d '\r' | sed -n 's/^[Ll]ocation: //p'; }
absolute() { case "$1" in http*) echo "$1" ;; *) echo "$url$1" ;; esac; }
sep() { case "$1" in *\?*) echo "&" ;; *) echo "?" ;; esac; }

push_blob() { # REPO FILE
  local loc
  loc=$(absolute "$(curl -fs -D - -o /dev/null -X POST "$url/v2/$1/blobs/uploads/" | location)")
  curl -fs -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary "@$2" "$loc$(sep "$loc")digest=$(digest "$2")"
}

# make_image REPO LAYERS MIB: uncompressed tar layers of random data.
make_image() {
  local repo=$1 n=$2 mib=$3 layers="" diff_ids="" i f
  for i in $(seq "$n"); do
    mkdir -p "$work/$repo/l$i"
    head -c $((mib * 1024 * 1024)) /dev/urandom >"$work/$repo/l$i/data$i"
    tar -C "$work/$repo/l$i" -cf "$work/$repo/layer$i.tar" "data$i"
    f="$work/$repo/layer$i.tar"
    push_blob "$repo" "$f"
    layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"$(digest "$f")\",\"size\":$(stat -c %s "$f")}"
    diff_ids="$diff_ids${diff_ids:+,}\"$(digest "$f")\""
  done
  printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diff_ids" >"$work/$repo/config"
  push_blob "$repo" "$work/$repo/config"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
    "$(digest "$work/$repo/config")" "$(stat -c %s "$work/$repo/config")" "$layers" >"$work/$repo/manifest"
  curl -fs -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$work/$repo/manifest" "$url/v2/$repo/manifests/latest"
  rm -rf "$work/$repo"
}

echo "generating images..." >&2
make_image bench/single 1 200
make_image bench/multi 8 25

# timed OUT CMD...: runs CMD with GNU time; prints "seconds kib".
timed() {
  local out=$1; shift
  rm -rf "$out"
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/cmd.err" || {
    echo "failed: $* ($(tail -3 "$work/cmd.err"))" >&2; exit 1; }
  cat "$work/time"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

row() { # LABEL REPO
  local label=$1 repo=$2 ours=() single=() theirs=() ours_rss=0 theirs_rss=0 t r i
  for i in $(seq "$RUNS"); do
    read -r t r < <(timed "$work/o.tar" "$bin" pull --no-progress "127.0.0.1:$port/$repo:latest" -o "$work/o.tar")
    ours+=("$t"); [ "$r" -gt "$ours_rss" ] && ours_rss=$r
    read -r t r < <(timed "$work/o.tar" "$bin" pull --no-progress --ranged-above 0 "127.0.0.1:$port/$repo:latest" -o "$work/o.tar")
    single+=("$t")
    read -r t r < <(timed "$work/s.tar" skopeo --insecure-policy copy --quiet --src-tls-verify=false \
      "docker://127.0.0.1:$port/$repo:latest" "docker-archive:$work/s.tar:$repo:latest")
    theirs+=("$t"); [ "$r" -gt "$theirs_rss" ] && theirs_rss=$r
  done
  local mo m1 ms
  mo=$(printf '%s\n' "${ours[@]}" | median)
  m1=$(printf '%s\n' "${single[@]}" | median)
  ms=$(printf '%s\n' "${theirs[@]}" | median)
  printf '%-22s %9s %11s %9s %7s %12s %11s\n' "$label" "${mo}s" "${m1}s" "${ms}s" \
    "$(echo "scale=2; $mo / $ms" | bc -l)" "$((ours_rss / 1024)) MiB" "$((theirs_rss / 1024)) MiB"
}

printf '%-22s %9s %11s %9s %7s %12s %11s\n' "pull to docker-archive" "ocidist" "(1 stream)" "skopeo" "ratio" "ocidist RSS" "skopeo RSS"
row "1 x 200 MiB layer" bench/single
row "8 x 25 MiB layers" bench/multi
