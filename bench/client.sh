#!/usr/bin/env bash
# Benchmarks a 200 MiB blob download through oci-client (`ocidist blob
# REF@DIGEST -o FILE`: streamed to a file, size and digest verified) against
# `curl -o FILE` of the same blob, both from Debian's docker-registry on
# loopback, side by side in one run. Prints median wall time over RUNS runs
# (default 5), peak RSS, and the ratio. Not a test.
#
#   bash bench/client.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${BENCH_RUNS:-5}
MIB=${BENCH_MIB:-200}

for tool in curl sha256sum bc /usr/bin/time /usr/bin/docker-registry; do
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

echo "pushing a $MIB MiB blob..." >&2
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$work/blob"
digest="sha256:$(sha256sum "$work/blob" | cut -d' ' -f1)"
loc=$(curl -fs -D - -o /dev/null -X POST "$url/v2/bench/blob/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
case "$loc" in http*) ;; *) loc="$url$loc" ;; esac
case "$loc" in *\?*) sep="&" ;; *) sep="?" ;; esac
curl -fs -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -T "$work/blob" "$loc${sep}digest=$digest"
rm -f "$work/blob"

timed() { # runs "$@" under GNU time; prints "seconds kib"
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || {
    echo "failed: $* ($(tail -3 "$work/err"))" >&2; exit 1; }
  cat "$work/time"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

ours=() theirs=() ours_rss=0 theirs_rss=0
for _ in $(seq "$RUNS"); do
  rm -f "$work/o"
  read -r t r < <(timed "$bin" blob "127.0.0.1:$port/bench/blob@$digest" -o "$work/o")
  ours+=("$t"); [ "$r" -gt "$ours_rss" ] && ours_rss=$r
  [ "sha256:$(sha256sum "$work/o" | cut -d' ' -f1)" = "$digest" ] || { echo "ocidist wrote wrong bytes" >&2; exit 1; }
  rm -f "$work/c"
  read -r t r < <(timed curl -fs -o "$work/c" "$url/v2/bench/blob/blobs/$digest")
  theirs+=("$t"); [ "$r" -gt "$theirs_rss" ] && theirs_rss=$r
done
mo=$(printf '%s\n' "${ours[@]}" | median)
mc=$(printf '%s\n' "${theirs[@]}" | median)
printf '%-34s %10s %10s %8s\n' "$MIB MiB blob download" "oci-client" "curl" "ratio"
printf '%-34s %10s %10s %8s\n' "median wall time" "${mo}s" "${mc}s" "$(echo "scale=2; $mo / $mc" | bc -l)"
printf '%-34s %10s %10s\n' "peak RSS" "$((ours_rss / 1024)) MiB" "$((theirs_rss / 1024)) MiB"
echo "oci-client verifies size and digest while streaming; curl checks nothing"
