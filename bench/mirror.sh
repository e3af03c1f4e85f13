#!/usr/bin/env bash
# Benchmarks `ocidist serve --mirror` against Debian's docker-registry in
# proxy mode (`proxy.remoteurl`), both in front of the same upstream (a
# docker-registry) on loopback, side by side in one run, pulling an image
# of one MIB MiB layer (default 200) with `ocidist pull` (one stream per
# blob: `--ranged-above 0`):
#   cold: a fresh cache each run (the mirror's on disk, --storage, as the
#         proxy's is; and ours in memory); warm: the same pull again, and
#         once more ("warm again": a store that wrote its cache past the
#         page cache reads it from the disk on the first warm pull only);
#   direct: the same pull from the upstream itself;
#   20 concurrent cold pulls through each: wall time, and the blob GETs
#         the upstream served (from its access log).
# Each row is the median of RUNS runs (default 3), with its spread, the
# cache servers' peak RSS and their CPU time (user + system) during the
# cold pull. Not a test: figures vary with the machine.
#
#   bash bench/mirror.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${BENCH_RUNS:-3}
MIB=${BENCH_MIB:-200}
CONCURRENT=${BENCH_CONCURRENT:-20}

source bench/lib.sh
need curl sha256sum bc tar /usr/bin/time /usr/bin/docker-registry
echo "building release binary..." >&2
cargo build --release -q -p ocidist
bin=$PWD/target/release/ocidist

DIST_ACCESSLOG_DISABLED=false start_distribution up
up_url=$dist_url
up=${up_url#http://}
up_log=$work/distup.log
echo "generating a $MIB MiB image..." >&2
make_image "$up_url" bench/big 1 "$MIB"
cat >"$work/proxy.yml" <<EOF2
proxy:
  remoteurl: $up_url
EOF2

# Fresh caches: start_cache ours|mem|theirs N sets $cache_host and
# $cache_pid (mem: ours caching in memory).
start_cache() {
  local kind=$1 n=$2 storage=()
  if [ "$kind" != theirs ]; then
    [ "$kind" = ours ] && storage=(--storage "$work/ours-$n")
    "$bin" serve --addr 127.0.0.1:0 "${storage[@]}" \
      --mirror "$up" --mirror-default "$up" 2>"$work/ours-$n.err" &
    cache_pid=$!
    pids+=("$cache_pid")
    for _ in $(seq 200); do grep -qs '^listening on ' "$work/ours-$n.err" && break; sleep 0.05; done
    cache_host=$(sed -n 's|^listening on http://||p' "$work/ours-$n.err")
    [ -n "$cache_host" ] || { echo "ours did not start: $(cat "$work/ours-$n.err")" >&2; exit 1; }
  else
    DIST_EXTRA_CONFIG=$work/proxy.yml start_distribution "theirs-$n"
    cache_pid=$dist_pid
    cache_host=${dist_url#http://}
  fi
}

# cpu_ticks: the cache server's CPU time so far (user + system), in ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$cache_pid/stat"; }
tick=$(getconf CLK_TCK)

# peak_rss: the cache server's peak resident memory so far, in MiB.
peak_rss() { awk '/^VmHWM:/ {printf "%.0f\n", $2 / 1024}' "/proc/$cache_pid/status"; }

stop_cache() { # KIND N
  kill "$cache_pid" 2>/dev/null || true
  wait "$cache_pid" 2>/dev/null || true
  rm -rf "$work/ours-$2" "$work/registry-datatheirs-$2"
}

pull() { # HOST OUT
  rm -rf "$2"
  timed "$bin" pull --no-progress --ranged-above 0 "$1/bench/big:latest" -o "$2" | cut -d' ' -f1
}

# blob_gets: blob GETs the upstream has served so far.
blob_gets() { grep -c '"GET /v2/bench/big/blobs/sha256:' "$up_log" || true; }

# spread: "min-max" of the numbers on stdin.

# Runs alternate between the kinds, so that a busy spell on the machine
# falls on all of them.
declare -A c w w2 r cpu
for i in $(seq "$RUNS"); do
  for kind in ours theirs mem; do
    start_cache "$kind" "$i"
    before=$(cpu_ticks)
    c[$kind]+="$(pull "$cache_host" "$work/o.tar") "
    cpu[$kind]+="$(echo "scale=2; ($(cpu_ticks) - $before) / $tick" | bc -l) "
    w[$kind]+="$(pull "$cache_host" "$work/o.tar") "
    w2[$kind]+="$(pull "$cache_host" "$work/o.tar") "
    r[$kind]+="$(peak_rss) "
    stop_cache "$kind" "$i"
  done
  c[direct]+="$(pull "$up" "$work/o.tar") "
done
declare -A cold warm warm2 rss cold_spread warm_spread warm2_spread cold_cpu
for kind in ours theirs mem direct; do
  cold[$kind]=$(printf '%s\n' ${c[$kind]} | median)
  cold_spread[$kind]=$(printf '%s\n' ${c[$kind]} | spread)
done
for kind in ours theirs mem; do
  warm[$kind]=$(printf '%s\n' ${w[$kind]} | median)
  warm_spread[$kind]=$(printf '%s\n' ${w[$kind]} | spread)
  warm2[$kind]=$(printf '%s\n' ${w2[$kind]} | median)
  warm2_spread[$kind]=$(printf '%s\n' ${w2[$kind]} | spread)
  rss[$kind]=$(printf '%s\n' ${r[$kind]} | median)
  cold_cpu[$kind]=$(printf '%s\n' ${cpu[$kind]} | median)
done
direct=${cold[direct]}

declare -A many gets
for kind in ours theirs; do
  start_cache "$kind" many
  before=$(blob_gets)
  start=$(date +%s.%N)
  jobs=()
  for i in $(seq "$CONCURRENT"); do
    "$bin" pull --no-progress --ranged-above 0 "$cache_host/bench/big:latest" -o "$work/c$i.tar" \
      >/dev/null 2>"$work/c$i.err" &
    jobs+=($!)
  done
  failed=0
  for j in "${jobs[@]}"; do wait "$j" || failed=$((failed + 1)); done
  many[$kind]=$(echo "$(date +%s.%N) - $start" | bc -l | xargs printf '%.2f')
  gets[$kind]=$(($(blob_gets) - before))
  if [ "$failed" != 0 ]; then gets[$kind]="${gets[$kind]} ($failed pulls failed)"; fi
  rm -f "$work"/c*.tar
  stop_cache "$kind" many
done

ratio() { echo "scale=2; $1 / $2" | bc -l; }
printf '%-34s %10s %16s %7s\n' "pull of 1 x $MIB MiB layer" "ocidist" "docker-registry" "ratio"
printf '%-34s %10s %16s %7s\n' "cold (fresh cache)" "${cold[ours]}s" "${cold[theirs]}s" "$(ratio "${cold[ours]}" "${cold[theirs]}")"
printf '%-34s %10s %16s\n' "  spread (min-max)" "${cold_spread[ours]}" "${cold_spread[theirs]}"
printf '%-34s %10s %16s %7s\n' "warm (cached)" "${warm[ours]}s" "${warm[theirs]}s" "$(ratio "${warm[ours]}" "${warm[theirs]}")"
printf '%-34s %10s %16s\n' "  spread (min-max)" "${warm_spread[ours]}" "${warm_spread[theirs]}"
printf '%-34s %10s %16s %7s\n' "warm again (cached)" "${warm2[ours]}s" "${warm2[theirs]}s" "$(ratio "${warm2[ours]}" "${warm2[theirs]}")"
printf '%-34s %10s %16s\n' "  spread (min-max)" "${warm2_spread[ours]}" "${warm2_spread[theirs]}"
printf '%-34s %10s %16s\n' "cache server CPU in a cold pull" "${cold_cpu[ours]}s" "${cold_cpu[theirs]}s"
printf '%-34s %10s %16s\n' "cache server peak RSS (MiB)" "${rss[ours]}" "${rss[theirs]}"
printf '%-34s %10s %16s %7s\n' "$CONCURRENT concurrent cold pulls" "${many[ours]}s" "${many[theirs]}s" "$(ratio "${many[ours]}" "${many[theirs]}")"
printf '%-34s %10s %16s\n' "  upstream blob GETs (2 blobs)" "${gets[ours]}" "${gets[theirs]}"
printf '%-34s %10s %16s\n' "ours caching in memory: cold, warm" "${cold[mem]}s" "${warm[mem]}s"
printf '%-34s %10s %16s\n' "  warm again, CPU in a cold pull" "${warm2[mem]}s" "${cold_cpu[mem]}s"
printf '%-34s %10s %16s\n' "  spread (min-max), peak RSS" "${cold_spread[mem]} ${warm_spread[mem]}" "${rss[mem]} MiB"
printf '%-34s %10s %16s\n' "direct from the upstream" "${direct}s" "${cold_spread[direct]}"
printf '%-34s %10s %16s\n' "cold through mirror / direct" "$(ratio "${cold[ours]}" "$direct")" "$(ratio "${cold[theirs]}" "$direct")"
