#!/usr/bin/env bash
# Benchmarks `ocidist serve --storage s3://…` (oci-objstore) against
# Debian's docker-registry (CNCF distribution 2.8) with its `s3` storage
# driver, both on one S3 server on loopback (a bucket each), side by side
# in one run, and prints ours, distribution and the ratio (issue 13's
# targets beside them):
#   manifest GET by tag (req/s, wrk, $BENCH_CONNECTIONS connections);
#   a $BENCH_MIB MiB (default 200) blob pushed monolithically, then pulled
#   (MB/s; fresh content every run);
#   $BENCH_MANIFESTS (default 1000) distinct small manifests pushed, 8 at a
#   time over keep-alive connections (curl --parallel; req/s);
#   ours' peak RSS while a $BENCH_BIG_MIB MiB (default 1024) blob streams
#   in and then out (VmHWM, reset before each with /proc/PID/clear_refs).
# Each figure is the median of $BENCH_RUNS runs (default 3) with the lowest
# and highest. Not a test: figures vary with the machine and its load. MB
# here is MiB (2^20 bytes).
#
#   bash bench/objstore.sh            # needs wrk, curl, bc, docker-registry
#                                     # (.ci/install-deps); installs moto_server
#                                     # itself (scripts/install-moto)
#   chrt -f 20 bash bench/objstore.sh # on a busy machine
#   OCIDIST_BIN=/path/to/ocidist bash bench/objstore.sh  # that build, not this tree's
#
# distribution 2.8's s3 driver (registry/storage/driver/s3-aws): accesskey,
# secretkey, region, regionendpoint, bucket, rootdirectory, secure (false:
# plain http), v4auth (SigV4); 2.8 has no
# `forcepathstyle` key (3.0 added it): it uses path-style requests whenever
# `regionendpoint` is set. `redirect: disable` makes it serve blob bytes
# itself, as ours does, instead of redirecting clients to S3.
#
# The S3 server is moto's (`moto_server`, PyPI `moto[server]`), not the
# s3s-fs the tests use: s3s-fs 0.14 answers ListMultipartUploads with 501
# NotImplemented, and distribution's s3 driver lists multipart uploads to
# resume every upload (each blob push fails). moto is a Python server
# holding objects in memory: it bounds both registries alike, so the
# ratios compare the registries' requests to S3 more than the bytes.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-5s}
CONNS=${BENCH_CONNECTIONS:-8}
MIB=${BENCH_MIB:-200}
BIG_MIB=${BENCH_BIG_MIB:-1024}
MANIFESTS=${BENCH_MANIFESTS:-1000}
REPO=bench/app
ACCESS_KEY=ocidist-bench
SECRET_KEY=ocidist-bench-secret

source bench/lib.sh
need wrk curl bc sha256sum /usr/bin/docker-registry
moto_server=$(bash scripts/install-moto)
# Both speak plain http to loopback; with AWS_CA_BUNDLE set, distribution
# 2.8's AWS SDK refuses to start ("unable to load custom CA bundle").
unset AWS_CA_BUNDLE

if [ -n "${OCIDIST_BIN:-}" ]; then
  bin=$OCIDIST_BIN # a release binary built before (to compare two builds)
else
  echo "building release binary..." >&2
  cargo build --release -q -p ocidist
  bin=$PWD/target/release/ocidist
fi

# --- the S3 server and the two registries ---------------------------------------

s3_port=$(free_port)
"$moto_server" -H 127.0.0.1 -p "$s3_port" >"$work/s3.log" 2>&1 &
pids+=($!)
s3_url=http://127.0.0.1:$s3_port
for _ in $(seq 400); do curl -s -o /dev/null "$s3_url" && break; sleep 0.05; done
for bucket in ours dist; do
  curl -fs -o /dev/null -X PUT "$s3_url/$bucket" || { echo "moto_server: cannot create bucket $bucket" >&2; exit 1; }
done

AWS_ENDPOINT=$s3_url AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY \
  "$bin" serve --addr 127.0.0.1:0 --storage s3://ours/registry 2>"$work/ours.err" &
ours_pid=$!
pids+=("$ours_pid")
for _ in $(seq 200); do grep -q '^listening on ' "$work/ours.err" && break; sleep 0.05; done
ours_url=$(sed -n 's|^listening on ||p' "$work/ours.err")
[ -n "$ours_url" ] || { echo "ours did not start: $(cat "$work/ours.err")" >&2; exit 1; }

cat >"$work/dist-storage.yml" <<EOF
  s3:
    accesskey: $ACCESS_KEY
    secretkey: $SECRET_KEY
    region: us-east-1
    regionendpoint: $s3_url
    bucket: dist
    rootdirectory: /registry
    secure: false
    v4auth: true
  redirect:
    disable: true
EOF
DIST_STORAGE_CONFIG=$work/dist-storage.yml start_distribution

servers=(ours dist)
declare -A url=([ours]=$ours_url [dist]=$dist_url)
declare -A pid=([ours]=$ours_pid [dist]=$dist_pid)

# --- content --------------------------------------------------------------------

echo "generating content..." >&2
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$work/config"
head -c 1024 /dev/urandom >"$work/layer"
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$work/base"
config_digest=$(digest "$work/config")
layer_digest=$(digest "$work/layer")
# manifest [N]: the small image manifest, with annotation N if given (so
# every pushed manifest is a distinct one).
config_size=$(stat -c %s "$work/config")
manifest() {
  local extra=""
  [ -n "${1:-}" ] && extra=$(printf ',"annotations":{"n":"%s"}' "$1")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":1024}]%s}' \
    "$config_digest" "$config_size" "$layer_digest" "$extra"
}
manifest >"$work/manifest"
MT=application/vnd.oci.image.manifest.v1+json

# push_timed URL FILE DIGEST: POST + monolithic PUT; prints seconds taken.
push_timed() {
  local url=$1 file=$2 dgst=$3 start loc
  start=$(date +%s.%N)
  loc=$(absolute "$url" "$(curl -fs -D - -o /dev/null -X POST "$url/v2/$REPO/blobs/uploads/" | location)")
  curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -H 'Expect:' \
    -T "$file" "$loc$(sep "$loc")digest=$dgst" ||
    { echo "$url: the push of $dgst failed" >&2; exit 1; }
  echo "$(date +%s.%N) - $start" | bc -l
}

# pull_timed URL DIGEST SIZE: GET of the blob, discarded; prints seconds.
pull_timed() {
  local out
  out=$(curl -fs -o /dev/null -w '%{size_download} %{time_total}' "$1/v2/$REPO/blobs/$2")
  [ "${out% *}" = "$3" ] || { echo "$1: pulled ${out% *} bytes of $2, not $3" >&2; exit 1; }
  echo "${out#* }"
}

# pull_check URL DIGEST: the blob as served matches its digest.
pull_check() {
  [ "sha256:$(curl -fs "$1/v2/$REPO/blobs/$2" | sha256sum | cut -d' ' -f1)" = "$2" ] ||
    { echo "$1: blob $2 does not match its digest" >&2; exit 1; }
}

# push_manifests URL RUN: pushes $MANIFESTS distinct manifests (tags
# mRUN-N), $CONNS at a time; prints seconds. Every push must be a 201.
push_manifests() {
  local url=$1 run=$2 i start secs
  mkdir -p "$work/m"
  : >"$work/m.cfg"
  printf 'header = "Content-Type: %s"\nheader = "Expect:"\nrequest = "PUT"\nwrite-out = "%%{http_code}\\n"\n' \
    "$MT" >>"$work/m.cfg"
  for i in $(seq "$MANIFESTS"); do
    manifest "$run-$i" >"$work/m/$i"
    printf 'url = "%s/v2/%s/manifests/m%s-%s"\nupload-file = "%s"\noutput = "/dev/null"\n' \
      "$url" "$REPO" "$run" "$i" "$work/m/$i" >>"$work/m.cfg"
  done
  start=$(date +%s.%N)
  curl -s --parallel --parallel-max "$CONNS" -K "$work/m.cfg" >"$work/m.codes" 2>/dev/null
  secs=$(echo "$(date +%s.%N) - $start" | bc -l)
  [ "$(grep -c '^201$' "$work/m.codes")" = "$MANIFESTS" ] ||
    { echo "$url: manifest pushes not all 201: $(sort "$work/m.codes" | uniq -c | tr '\n' ' ')" >&2; exit 1; }
  echo "$secs"
}

seed() {
  local url=$1
  push_timed "$url" "$work/config" "$config_digest" >/dev/null
  push_timed "$url" "$work/layer" "$layer_digest" >/dev/null
  curl -fs -o /dev/null -X PUT -H "Content-Type: $MT" --data-binary "@$work/manifest" \
    "$url/v2/$REPO/manifests/bench"
  curl -fs -o /dev/null -H "Accept: $MT" "$url/v2/$REPO/manifests/bench" ||
    { echo "$url: seeded manifest not readable" >&2; exit 1; }
}

# Every measured request must succeed: a figure of fast errors is no figure.
wrk_rps() {
  local out
  out=$(wrk -t2 -c"$CONNS" -d"$DURATION" "$@" 2>&1)
  if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then echo "wrk saw errors: $out" >&2; exit 1; fi
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

for name in "${servers[@]}"; do seed "${url[$name]}"; done

# --- runs -----------------------------------------------------------------------

declare -A got # name,figure -> "v1 v2 …"
for run in $(seq "$RUNS"); do
  echo "run $run of $RUNS..." >&2
  { printf 'run %08d' "$run"; head -c $((MIB * 1024 * 1024 - 12)) "$work/base"; } >"$work/big"
  big_digest=$(digest "$work/big")
  big_size=$(stat -c %s "$work/big")
  for name in "${servers[@]}"; do
    u=${url[$name]}
    got[$name,get]+="$(wrk_rps -H "Accept: $MT" "$u/v2/$REPO/manifests/bench") "
    got[$name,push]+="$(echo "$MIB / $(push_timed "$u" "$work/big" "$big_digest")" | bc -l) "
    got[$name,pull]+="$(echo "$MIB / $(pull_timed "$u" "$big_digest" "$big_size")" | bc -l) "
    [ "$run" = 1 ] && pull_check "$u" "$big_digest"
    got[$name,manifests]+="$(echo "$MANIFESTS / $(push_manifests "$u" "$run")" | bc -l) "
  done
done
rm -f "$work/big" "$work/base"

# --- ours' peak RSS with a big blob streaming through ---------------------------

echo "peak RSS: a $BIG_MIB MiB blob in and out of ours..." >&2
head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom >"$work/huge"
huge_digest=$(digest "$work/huge")
hwm() { awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
echo 5 >"/proc/$ours_pid/clear_refs"
huge_push=$(echo "$BIG_MIB / $(push_timed "$ours_url" "$work/huge" "$huge_digest")" | bc -l)
rss_push=$(hwm "$ours_pid")
echo 5 >"/proc/$ours_pid/clear_refs"
huge_pull=$(echo "$BIG_MIB / $(pull_timed "$ours_url" "$huge_digest" "$(stat -c %s "$work/huge")")" | bc -l)
rss_pull=$(hwm "$ours_pid")
rm -f "$work/huge"

# --- table ----------------------------------------------------------------------

# med NAME FIGURE / span NAME FIGURE: median and "lowest-highest" of the runs.
med() { tr ' ' '\n' <<<"${got[$1,$2]}" | grep . | median; }
span() { tr ' ' '\n' <<<"${got[$1,$2]}" | grep . | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.0f-%.0f", lo, hi}'; }
row() { # LABEL FIGURE TARGET
  local o d
  o=$(med ours "$2") d=$(med dist "$2")
  printf '%-30s %9.1f %-11s %9.1f %-11s %6.2f   %s\n' "$1" "$o" "($(span ours "$2"))" "$d" \
    "($(span dist "$2"))" "$(echo "if ($d > 0) $o / $d else 0" | bc -l)" "$3"
}
echo
printf '%-30s %21s %21s %6s   %s\n' "figure (median, lowest-highest)" ours distribution ratio target
printf '%-30s %21s %21s %6s   %s\n' ------ ---- ------------ ----- ------
row "manifest GET by tag (req/s)" get ">= 2"
row "$MIB MiB blob push (MB/s)" push ">= 1"
row "$MIB MiB blob pull (MB/s)" pull ">= 1"
row "$MANIFESTS manifest pushes (req/s)" manifests ">= 2"
echo
printf '%-44s %8s MiB   %s\n' "ours, peak RSS during a $BIG_MIB MiB push" "$rss_push" "target < 64"
printf '%-44s %8s MiB   %s\n' "ours, peak RSS during a $BIG_MIB MiB pull" "$rss_pull" "target < 64"
printf '%-44s %8.1f MB/s\n' "ours, that push" "$huge_push"
printf '%-44s %8.1f MB/s\n' "ours, that pull" "$huge_pull"
printf '%-44s %8s MiB\n' "distribution, peak RSS over the whole run" "$(hwm "${pid[dist]}")"
echo
echo "$RUNS runs; wrk: 2 threads, $CONNS connections, $DURATION; manifest pushes: curl --parallel, $CONNS at a time"
echo "one moto_server ($("$(dirname "$moto_server")/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)) serves both registries, a bucket each"
