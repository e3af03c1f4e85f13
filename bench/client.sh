#!/usr/bin/env bash
# Benchmarks a 200 MiB blob download through oci-client (`ocidist blob
# REF@DIGEST -o FILE`: streamed to a file, size and digest verified) against
# `curl -o FILE` of the same blob, both from Debian's docker-registry on
# loopback, side by side in one run. Prints median wall time over RUNS runs
# (default 9), the ratio, median CPU time and peak RSS. Not a test.
#
# On a 2-core machine the registry, the download and the hashing share two
# cores: SHA-256 of 200 MiB costs ~0.15 s of CPU even with SHA-NI, which
# curl does not spend, so the CPU row shows the difference that the wall
# time can only partly hide.
#
#   bash bench/client.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${BENCH_RUNS:-9}
MIB=${BENCH_MIB:-200}

source bench/lib.sh
need curl sha256sum bc /usr/bin/time /usr/bin/docker-registry
echo "building release binary..." >&2
cargo build --release -q -p ocidist
bin=$PWD/target/release/ocidist

start_distribution
url=$dist_url
echo "pushing a $MIB MiB blob..." >&2
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$work/blob"
digest=$(digest "$work/blob")
push_blob "$url" bench/blob "$work/blob"
rm -f "$work/blob"

ours=() theirs=() ours_cpu=() theirs_cpu=() ours_rss=0 theirs_rss=0
for _ in $(seq "$RUNS"); do
  rm -f "$work/o"
  read -r t r < <(timed "$bin" blob "${url#http://}/bench/blob@$digest" -o "$work/o")
  ours+=("$t") ours_cpu+=("$(last_cpu)"); [ "$r" -gt "$ours_rss" ] && ours_rss=$r
  [ "$(digest "$work/o")" = "$digest" ] || { echo "ocidist wrote wrong bytes" >&2; exit 1; }
  rm -f "$work/c"
  read -r t r < <(timed curl -fs -o "$work/c" "$url/v2/bench/blob/blobs/$digest")
  theirs+=("$t") theirs_cpu+=("$(last_cpu)"); [ "$r" -gt "$theirs_rss" ] && theirs_rss=$r
done
mo=$(printf '%s\n' "${ours[@]}" | median)
mc=$(printf '%s\n' "${theirs[@]}" | median)
printf '%-34s %10s %10s %8s\n' "$MIB MiB blob download" "oci-client" "curl" "ratio"
printf '%-34s %10s %10s %8s\n' "median wall time" "${mo}s" "${mc}s" "$(echo "scale=2; $mo / $mc" | bc -l)"
printf '%-34s %10s %10s\n' "median CPU time (user + system)" \
  "$(printf '%s\n' "${ours_cpu[@]}" | median)s" "$(printf '%s\n' "${theirs_cpu[@]}" | median)s"
printf '%-34s %10s %10s\n' "peak RSS" "$((ours_rss / 1024)) MiB" "$((theirs_rss / 1024)) MiB"
echo "oci-client verifies size and digest while streaming; curl checks nothing"
