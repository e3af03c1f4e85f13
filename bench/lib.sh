# Shared by the benchmark scripts (source it; it is not run on its own):
# the work directory and its cleanup, starting the servers side by side,
# pushing blobs with curl, timing commands.

# need TOOL...: fails naming .ci/install-deps when a tool is missing.
need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "missing $tool: run .ci/install-deps" >&2; exit 1; }
  done
}

# $work: a temporary directory, removed on exit with every process in
# $pids killed.
work=$(mktemp -d)
pids=()
bench_cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap bench_cleanup EXIT

free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

# start_distribution [NAME]: Debian's docker-registry with filesystem
# storage in $work (its own per NAME, for several at once), or the storage
# driver in the YAML file $DIST_STORAGE_CONFIG (lines indented under
# `storage:`) if set, deletes enabled, plus the YAML in the file
# $DIST_EXTRA_CONFIG if set (and its access log in $work/distNAME.log when
# DIST_ACCESSLOG_DISABLED=false); sets $dist_url and $dist_pid.
start_distribution() {
  local port name=${1:-} driver
  port=$(free_port)
  if [ -n "${DIST_STORAGE_CONFIG:-}" ]; then
    driver=$(cat "$DIST_STORAGE_CONFIG")
  else
    driver="  filesystem:
    rootdirectory: $work/registry-data$name"
  fi
  cat >"$work/registry$name.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: ${DIST_ACCESSLOG_DISABLED:-true}
storage:
$driver
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  if [ -n "${DIST_EXTRA_CONFIG:-}" ]; then cat "$DIST_EXTRA_CONFIG" >>"$work/registry$name.yml"; fi
  /usr/bin/docker-registry serve "$work/registry$name.yml" >"$work/dist$name.log" 2>&1 &
  dist_pid=$!
  pids+=("$dist_pid")
  dist_url="http://127.0.0.1:$port"
  # Any answer will do: with auth configured `/v2/` is a 401.
  for _ in $(seq 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$dist_url/v2/")" != 000 ] && return
    sleep 0.05
  done
  echo "docker-registry did not start: $(cat "$work/dist$name.log")" >&2
  exit 1
}

# start_ours CMD...: a server of ours that prints `listening on URL` on
# stdout once bound (give it `--addr 127.0.0.1:0`); sets $ours_url and
# $ours_pid. Several at once: a distinct $OURS_NAME for each.
start_ours() {
  local name=${OURS_NAME:-ours}
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  ours_pid=$!
  pids+=("$ours_pid")
  for _ in $(seq 200); do grep -q '^listening on ' "$work/$name.out" && break; sleep 0.05; done
  ours_url=$(sed -n 's/^listening on //p' "$work/$name.out")
  [ -n "$ours_url" ] || { echo "our server did not start: $(cat "$work/$name.err")" >&2; exit 1; }
}

digest() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# make_image URL REPO LAYERS MIB: pushes REPO:latest, an OCI image of
# LAYERS uncompressed tar layers of MIB MiB of random data each. The layers
# stay in $work/REPO.layers/ (for a hashing floor), their digests in
# $work/REPO.digests.
make_image() {
  local url=$1 repo=$2 n=$3 mib=$4 layers="" diff_ids="" i f
  for i in $(seq "$n"); do
    mkdir -p "$work/$repo/l$i"
    head -c $((mib * 1024 * 1024)) /dev/urandom >"$work/$repo/l$i/data$i"
    tar -C "$work/$repo/l$i" -cf "$work/$repo/layer$i.tar" "data$i"
    f="$work/$repo/layer$i.tar"
    push_blob "$url" "$repo" "$f"
    mkdir -p "$work/$repo.layers"
    mv "$f" "$work/$repo.layers/"
    f="$work/$repo.layers/layer$i.tar"
    digest "$f" >>"$work/$repo.digests"
    layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"$(digest "$f")\",\"size\":$(stat -c %s "$f")}"
    diff_ids="$diff_ids${diff_ids:+,}\"$(digest "$f")\""
  done
  printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diff_ids" >"$work/$repo/config"
  push_blob "$url" "$repo" "$work/$repo/config"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
    "$(digest "$work/$repo/config")" "$(stat -c %s "$work/$repo/config")" "$layers" >"$work/$repo/manifest"
  curl -fs -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$work/$repo/manifest" "$url/v2/$repo/manifests/latest"
  rm -rf "$work/$repo"
}

# Absolute URL of a (possibly relative) Location header value.
absolute() { case "$2" in http*) echo "$2" ;; *) echo "$1$2" ;; esac; }
location() { tr -d '\r' | sed -n 's/^[Ll]ocation: //p'; }
sep() { case "$1" in *\?*) echo "&" ;; *) echo "?" ;; esac; }

# push_blob URL REPO FILE: POST a session, PUT the file (streamed) with
# its digest.
push_blob() {
  local url=$1 repo=$2 file=$3 loc
  loc=$(absolute "$url" "$(curl -fs -D - -o /dev/null -X POST "$url/v2/$repo/blobs/uploads/" | location)")
  curl -fs -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -H 'Expect:' \
    -T "$file" "$loc$(sep "$loc")digest=$(digest "$file")"
}

# timed CMD...: runs CMD under GNU time; prints "seconds peak-kib".
timed() {
  /usr/bin/time -f "%e %M %U %S" -o "$work/time" "$@" >/dev/null 2>"$work/cmd.err" || {
    echo "failed: $* ($(tail -3 "$work/cmd.err"))" >&2
    exit 1
  }
  cut -d' ' -f1,2 "$work/time"
}

# last_cpu: CPU seconds (user + system) of the last `timed` command.
last_cpu() { awk '{printf "%.2f\n", $3 + $4}' "$work/time"; }

# median: of the numbers on stdin, one a line.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Lowest-highest of numbers on stdin, one per line.
spread() { sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "-" hi}'; }
