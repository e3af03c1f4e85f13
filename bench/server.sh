#!/usr/bin/env bash
# Benchmarks this project's server (oci-conformance-server) over its disk
# store (oci-layout, every write synced) and over its memory store against
# Debian's docker-registry (CNCF distribution 2.8, filesystem storage),
# the three side by side on loopback in one run, and prints a table.
#
#   bash bench/server.sh            # needs wrk, curl, /usr/bin/docker-registry
#   chrt -f 20 bash bench/server.sh # on a busy shared machine: every server
#                                   # and client at real-time priority
#
# Figures: manifest GET by tag (req/s, p99 latency, wrk), manifest and blob
# HEAD (req/s, ApacheBench: wrk waits for a body after a HEAD response and
# stalls), 5 MiB blob GET (MB/s), 200 MiB blob push monolithic and in 10 MiB
# chunks (MB/s over the requests' own time as curl measures it; median of
# $BENCH_PUSHES rounds of fresh content, with the
# lowest and highest), and each server's peak RSS (VmHWM). The read figures
# are measured $BENCH_ROUNDS times (3), the servers taking turns, and the
# medians printed with their spread, so a burst of load elsewhere on a
# shared machine moves one round, not the ratios. Not a test: numbers vary
# with the machine and its load. MB here is MiB (2^20 bytes).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-5s}
CONNS=${BENCH_CONNECTIONS:-8}
PUSHES=${BENCH_PUSHES:-3}
ROUNDS=${BENCH_ROUNDS:-3}
REPO=bench/app

source bench/lib.sh
need wrk ab bc curl sha256sum /usr/bin/docker-registry

echo "building release binary..." >&2
cargo build --release -q -p oci-conformance --bin oci-conformance-server


# --- start the servers ----------------------------------------------------------

OURS_NAME=disk start_ours target/release/oci-conformance-server --addr 127.0.0.1:0 \
  --store "layout:$work/layout-data"
disk_url=$ours_url disk_pid=$ours_pid
OURS_NAME=mem start_ours target/release/oci-conformance-server --addr 127.0.0.1:0 --store mem
mem_url=$ours_url mem_pid=$ours_pid

start_distribution

# --- content --------------------------------------------------------------------

echo "generating content..." >&2
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$work/config"
head -c $((5 * 1024 * 1024)) /dev/urandom >"$work/layer5m"
head -c $((200 * 1024 * 1024)) /dev/urandom >"$work/big"
config_digest=$(digest "$work/config")
layer_digest=$(digest "$work/layer5m")

# fresh_content ROUND: $work/big-mono and $work/big-chunked (as 10 MiB
# chunk.NN files), 200 MiB each, content no server has seen (the round and
# kind prefixed to one random base), with $mono_digest and $chunked_digest.
fresh_content() {
  { printf 'mono %08d' "$1"; head -c $((200 * 1024 * 1024 - 13)) "$work/big"; } >"$work/big-mono"
  { printf 'chnk %08d' "$1"; head -c $((200 * 1024 * 1024 - 13)) "$work/big"; } >"$work/big-chunked"
  rm -f "$work"/chunk.*
  split -b $((10 * 1024 * 1024)) -d -a 2 "$work/big-chunked" "$work/chunk."
  mono_digest=$(digest "$work/big-mono")
  chunked_digest=$(digest "$work/big-chunked")
}
cat >"$work/manifest" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$config_digest","size":$(stat -c %s "$work/config")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"$layer_digest","size":$(stat -c %s "$work/layer5m")}]}
EOF


# Push times are the HTTP exchanges' own, as curl measures them
# (time_total of each request, summed), not the wall clock around them,
# which would add a few process starts (curl, date, bc: 20-40 ms here, a
# tenth of a 200 MiB push) to every server alike.

# push_timed URL FILE DIGEST: POST + monolithic PUT; prints seconds taken.
push_timed() {
  local url=$1 file=$2 dgst=$3 t1 t2 loc
  t1=$(curl -fs -D "$work/headers" -o /dev/null -w '%{time_total}' -X POST "$url/v2/$REPO/blobs/uploads/")
  loc=$(absolute "$url" "$(location <"$work/headers")")
  t2=$(curl -fs -o /dev/null -w '%{time_total}' -X PUT -H 'Content-Type: application/octet-stream' \
    -H 'Expect:' -T "$file" "$loc$(sep "$loc")digest=$dgst")
  echo "$t1 + $t2" | bc -l
}

# push_chunked URL DIGEST: POST, one PATCH per 10 MiB chunk, PUT; prints seconds.
push_chunked() {
  local url=$1 dgst=$2 total loc offset=0 size t
  total=$(curl -fs -D "$work/headers" -o /dev/null -w '%{time_total}' -X POST "$url/v2/$REPO/blobs/uploads/")
  loc=$(absolute "$url" "$(location <"$work/headers")")
  for chunk in "$work"/chunk.*; do
    size=$(stat -c %s "$chunk")
    t=$(curl -fs -D "$work/headers" -o /dev/null -w '%{time_total}' -X PATCH \
      -H 'Content-Type: application/octet-stream' \
      -H "Content-Range: $offset-$((offset + size - 1))" -H 'Expect:' \
      -T "$chunk" "$loc")
    loc=$(absolute "$url" "$(location <"$work/headers")")
    total="$total + $t"
    offset=$((offset + size))
  done
  t=$(curl -fs -o /dev/null -w '%{time_total}' -X PUT "$loc$(sep "$loc")digest=$dgst")
  echo "$total + $t" | bc -l
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
servers=(disk mem dist)
declare -A url=([disk]=$disk_url [mem]=$mem_url [dist]=$dist_url)
declare -A pid=([disk]=$disk_pid [mem]=$mem_pid [dist]=$dist_pid)

# add NAME KEY VALUE: one more measurement of a figure.
add() { result[$1,$2]+="$3 "; }

measure_reads() {
  local name=$1 url=$2 out
  out=$(wrk_run -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$url/v2/$REPO/manifests/bench")
  add "$name" manifest_rps "$(rps <<<"$out")"
  add "$name" manifest_p99 "$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
  # -n after -t: -t alone caps the run at 50000 requests.
  out=$(ab -k -i -c "$CONNS" -t "${DURATION%s}" -n 100000000 \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$url/v2/$REPO/manifests/bench" 2>&1)
  if grep -q '^Non-2xx' <<<"$out"; then echo "ab saw errors: $out" >&2; exit 1; fi
  add "$name" manifest_head_rps "$(awk '/^Requests per second:/ {print $4}' <<<"$out")"
  out=$(ab -k -i -c "$CONNS" -t "${DURATION%s}" -n 100000000 "$url/v2/$REPO/blobs/$layer_digest" 2>&1)
  if grep -q '^Non-2xx' <<<"$out"; then echo "ab saw errors: $out" >&2; exit 1; fi
  add "$name" head_rps "$(awk '/^Requests per second:/ {print $4}' <<<"$out")"
  out=$(wrk_run -c4 "$url/v2/$REPO/blobs/$layer_digest")
  add "$name" get_mbs "$(to_mb "$(awk '/^Transfer\/sec:/ {print $2}' <<<"$out")")"
}

for name in "${servers[@]}"; do
  seed "${url[$name]}"
  curl -fs -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "${url[$name]}/v2/$REPO/manifests/bench" || { echo "$name: seeded manifest not readable" >&2; exit 1; }
done
for round in $(seq "$ROUNDS"); do
  for name in "${servers[@]}"; do
    echo "reads, round $round of $ROUNDS: $name..." >&2
    measure_reads "$name" "${url[$name]}"
  done
done
# spread_of NUMBERS: "min-max" of space-separated numbers.
spread_of() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.0f-%.0f", lo, hi}'; }
# of NUMBERS: their median.
of() { tr ' ' '\n' <<<"$1" | grep . | median; }
for name in "${servers[@]}"; do
  for key in manifest_rps manifest_p99 manifest_head_rps head_rps get_mbs; do
    result[$name,${key}_spread]=$(spread_of "${result[$name,$key]}")
    result[$name,$key]=$(of "${result[$name,$key]}")
  done
done

declare -A mono chunked
for round in $(seq "$PUSHES"); do
  echo "pushes, round $round of $PUSHES..." >&2
  fresh_content "$round"
  for name in "${servers[@]}"; do
    mono[$name]+="$(echo "200 / $(push_timed "${url[$name]}" "$work/big-mono" "$mono_digest")" | bc -l) "
    chunked[$name]+="$(echo "200 / $(push_chunked "${url[$name]}" "$chunked_digest")" | bc -l) "
    curl -fs -o /dev/null -I "${url[$name]}/v2/$REPO/blobs/$chunked_digest" ||
      { echo "$name: chunked push did not produce the blob" >&2; exit 1; }
  done
done
for name in "${servers[@]}"; do
  result[$name,push_mono]=$(of "${mono[$name]}")
  result[$name,push_chunked]=$(of "${chunked[$name]}")
  result[$name,push_mono_spread]=$(spread_of "${mono[$name]}")
  result[$name,push_chunked_spread]=$(spread_of "${chunked[$name]}")
  result[$name,rss]=$(awk '/^VmHWM:/ {print $2 / 1024}' "/proc/${pid[$name]}/status")
done

# --- table ----------------------------------------------------------------------

ratio() { echo "if ($2 > 0) $1 / $2 else 0" | bc -l; }
row() { # label key unit
  local k=$2 d=${result[disk,$2]} m=${result[mem,$2]} x=${result[dist,$2]}
  printf '%-34s %10.2f %10.2f %12.2f %9.2f %9.2f %9.2f\n' "$1 ($3)" "$d" "$m" "$x" \
    "$(ratio "$d" "$x")" "$(ratio "$m" "$x")" "$(ratio "$d" "$m")"
}
spread_row() { # label key
  printf '%-34s %10s %10s %12s\n' "$1" "${result[disk,$2]}" "${result[mem,$2]}" "${result[dist,$2]}"
}
echo
printf '%-34s %10s %10s %12s %9s %9s %9s\n' figure disk mem distribution disk/dist mem/dist disk/mem
printf '%-34s %10s %10s %12s %9s %9s %9s\n' ------ ---- --- ------------ --------- -------- --------
row "manifest GET by tag" manifest_rps "req/s"
spread_row "  lowest-highest of $ROUNDS" manifest_rps_spread
row "manifest GET p99 latency" manifest_p99 "ms, lower wins"
row "manifest HEAD by tag" manifest_head_rps "req/s"
spread_row "  lowest-highest of $ROUNDS" manifest_head_rps_spread
row "blob HEAD" head_rps "req/s"
spread_row "  lowest-highest of $ROUNDS" head_rps_spread
row "5 MiB blob GET" get_mbs "MB/s"
spread_row "  lowest-highest of $ROUNDS" get_mbs_spread
row "200 MiB push, monolithic" push_mono "MB/s"
spread_row "  lowest-highest of $PUSHES" push_mono_spread
row "200 MiB push, 10 MiB chunks" push_chunked "MB/s"
spread_row "  lowest-highest of $PUSHES" push_chunked_spread
row "peak RSS" rss "MB, lower wins"
# The memory store keeps every pushed blob: the config, the 5 MiB layer and
# two 200 MiB blobs per round. What is left over is the server's own use.
stored=$(echo "($(stat -c %s "$work/config") + $(stat -c %s "$work/layer5m") + 2 * $PUSHES * 200 * 1048576) / 1048576" | bc -l)
over=$(echo "${result[mem,rss]} - $stored" | bc -l)
printf '%-34s %10s %10.2f\n' "mem RSS less stored data (MB)" "" "$over"
printf '%-34s %10s %9.1f%%\n' "  as a share of stored data" "" "$(echo "100 * $over / $stored" | bc -l)"
echo
echo "wrk: 2 threads, $CONNS connections (4 for blob GET), $DURATION per figure; ab: $CONNS connections"
echo "reads: median of $ROUNDS rounds, servers taking turns; pushes: median of $PUSHES rounds, fresh content each round; ratios of medians"
