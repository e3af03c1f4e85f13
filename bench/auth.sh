#!/usr/bin/env bash
# What authentication costs: manifest GET by tag (req/s, wrk) on `ocidist
# serve` without auth, with basic auth (htpasswd) and with bearer tokens
# from its built-in token service, and on Debian's docker-registry
# (distribution 2.8) with token auth, all side by side. distribution
# trusts our token service (its certificate is made here from our signing
# key), so both registries check the same ES256 token.
#
#   bash bench/auth.sh            # needs wrk, curl, openssl, htpasswd, /usr/bin/docker-registry
#
# Not a test: numbers vary with the machine and its load.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-5s}
CONNS=${BENCH_CONNECTIONS:-8}
REPO=bench/app
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'

source bench/lib.sh
need wrk curl openssl htpasswd bc /usr/bin/docker-registry

echo "building release binary..." >&2
cargo build --release -q -p ocidist
bin=target/release/ocidist
htpasswd -cbB "$work/users" bench benchpw 2>/dev/null
basic="Authorization: Basic $(printf 'bench:benchpw' | base64)"

# serve NAME PORT ARGS...: `ocidist serve` on PORT; sets $url.
serve() {
  local name=$1 port=$2
  shift 2
  "$bin" serve --addr "127.0.0.1:$port" "$@" 2>"$work/$name.err" &
  pids+=("$!")
  url="http://127.0.0.1:$port"
  for _ in $(seq 200); do grep -q '^listening on ' "$work/$name.err" && return; sleep 0.05; done
  echo "$name did not start: $(cat "$work/$name.err")" >&2
  exit 1
}

# token SCOPE: a token from our token service, for user bench.
token() {
  curl -fs -H "$basic" "$token_url/token?service=ocidist&scope=$1" |
    sed -n 's/.*"token":"\([^"]*\)".*/\1/p'
}

# seed URL AUTH-HEADER: a config blob and a manifest tagged `bench`.
seed() {
  local url=$1 auth=$2 loc
  loc=$(absolute "$url" "$(curl -fs -D - -o /dev/null -H "$auth" -X POST "$url/v2/$REPO/blobs/uploads/" | location)")
  curl -fs -o /dev/null -H "$auth" -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary "@$work/config" "$loc$(sep "$loc")digest=$(digest "$work/config")"
  curl -fs -o /dev/null -H "$auth" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$work/manifest" "$url/v2/$REPO/manifests/bench"
  curl -fs -o /dev/null -H "$auth" -H "$ACCEPT" "$url/v2/$REPO/manifests/bench" ||
    { echo "$url: seeded manifest not readable" >&2; exit 1; }
}

printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$work/config"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[]}' \
  "$(digest "$work/config")" "$(stat -c %s "$work/config")" >"$work/manifest"

# --- the servers ---------------------------------------------------------------

serve open "$(free_port)"
open_url=$url
serve basic "$(free_port)" --htpasswd "$work/users"
basic_url=$url
port=$(free_port)
serve token "$port" --htpasswd "$work/users" --token-realm "http://127.0.0.1:$port/token" \
  --token-service ocidist --token-key "$work/token.key"
token_url=$url

# distribution trusts our signing key through a certificate made from it.
openssl pkey -inform DER -in "$work/token.key" -out "$work/token.pem" 2>/dev/null
openssl req -new -x509 -key "$work/token.pem" -subj /CN=ocidist -days 1 -out "$work/token.crt" 2>/dev/null
printf 'auth:\n  token:\n    realm: %s/token\n    service: ocidist\n    issuer: ocidist\n    rootcertbundle: %s\n' \
  "$token_url" "$work/token.crt" >"$work/dist-auth.yml"
DIST_EXTRA_CONFIG="$work/dist-auth.yml" start_distribution

push_token="Authorization: Bearer $(token "repository:$REPO:pull,push")"
pull_token="Authorization: Bearer $(token "repository:$REPO:pull")"
seed "$open_url" "X-No-Auth: 1"
seed "$basic_url" "$basic"
seed "$token_url" "$push_token"
seed "$dist_url" "$push_token"
# Without credentials both token registries refuse.
for u in "$token_url" "$dist_url"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "$ACCEPT" "$u/v2/$REPO/manifests/bench")
  [ "$code" = 401 ] || { echo "$u answered $code without a token" >&2; exit 1; }
done

# --- measure -------------------------------------------------------------------

rps_of() {
  local out
  out=$(wrk -t2 -c"$CONNS" -d"$DURATION" "$@" 2>&1)
  if grep -q 'Non-2xx' <<<"$out"; then echo "wrk saw errors: $out" >&2; exit 1; fi
  awk '/Requests\/sec/ {printf "%.0f\n", $2}' <<<"$out"
}

echo "measuring ($DURATION each)..." >&2
open=$(rps_of -H "$ACCEPT" "$open_url/v2/$REPO/manifests/bench")
basic_rps=$(rps_of -H "$ACCEPT" -H "$basic" "$basic_url/v2/$REPO/manifests/bench")
token_rps=$(rps_of -H "$ACCEPT" -H "$pull_token" "$token_url/v2/$REPO/manifests/bench")
dist=$(rps_of -H "$ACCEPT" -H "$pull_token" "$dist_url/v2/$REPO/manifests/bench")

pct() { echo "scale=1; 100 * $1 / $2" | bc -l; }
printf '%-40s %10s %14s\n' "manifest GET by tag" "req/s" "vs ours open"
printf '%-40s %10s %13s%%\n' "ocidist serve, no auth" "$open" 100
printf '%-40s %10s %13s%%\n' "ocidist serve, basic (htpasswd)" "$basic_rps" "$(pct "$basic_rps" "$open")"
printf '%-40s %10s %13s%%\n' "ocidist serve, bearer token (built-in)" "$token_rps" "$(pct "$token_rps" "$open")"
printf '%-40s %10s %13s%%\n' "docker-registry, bearer token" "$dist" "$(pct "$dist" "$open")"
echo "ours with tokens / docker-registry with tokens: $(echo "scale=1; $token_rps / $dist" | bc -l)x"
echo "wrk: 2 threads, $CONNS connections, $DURATION per figure"
