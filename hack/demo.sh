#!/usr/bin/env bash
# The main job, end to end, on this machine alone: a local control plane, the
# TIDAL-compatible server issuing 60-second tokens, and the operator keeping the sample
# session fresh. Everything runs on loopback and stops when the script ends.
#
#   hack/demo.sh          run the demo, then shut everything down
#   KEEP=1 hack/demo.sh   keep everything running and print a KUBECONFIG; Ctrl-C stops it
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/bin"
WORK="$ROOT/tmp/demo"
TOKEN_LIFETIME=60s
# The sample Secret's values (config/samples/credentials_secret.yaml), which the local
# server is told to accept. They are demo values, valid nowhere else.
CLIENT_ID=tidal-demo-client
CLIENT_SECRET=demo-client-secret-only-valid-on-the-local-server
REFRESH_TOKEN=demo-refresh-token-only-valid-on-the-local-server

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
die() { echo "demo: $*" >&2; exit 1; }

pids=()
cleanup() {
  local status=$?
  step "Shutting down"
  # Reverse order: the operator first, the control plane last.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  echo "stopped; logs are in ${WORK#"$ROOT"/}/"
  exit "$status"
}

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND once a second, and stops early
# when one of the background processes has died.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local pid
  for ((i = 0; i < seconds; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || die "a background process ended while waiting for $what; see ${WORK#"$ROOT"/}/*.log"
    done
    sleep 1
  done
  die "timed out after ${seconds}s waiting for $what"
}

# free_port: the first free loopback port from 18080.
free_port() {
  local p
  for ((p = 18080; p < 18180; p++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  die "no free port in 18080-18179"
}

step "Building what is missing"
hack/tools.sh etcd kube-apiserver kubectl
for cmd in cmd/manager cmd/tidal-server hack/devcluster; do
  echo "go build ./$cmd"
  go build -o "$BIN/$(basename "$cmd")" "./$cmd"
done
KUBECTL="$BIN/k8s/kubectl"

rm -rf "$WORK"
mkdir -p "$WORK"
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'exit 129' HUP # a closed terminal must stop the control plane too
export KUBECONFIG="$WORK/kubeconfig"

step "Starting the control plane (etcd and kube-apiserver)"
"$BIN/devcluster" --assets "$BIN/k8s" --crds config/crd/bases --write-kubeconfig "$KUBECONFIG" \
  >"$WORK/devcluster.log" 2>&1 &
pids+=($!)
wait_for "the control plane" 120 test -s "$KUBECONFIG"
wait_for "the default namespace" 60 "$KUBECTL" get namespace default
run "$KUBECTL" get crd tidalsessions.sessions.tidal-mcp.dev

step "Starting the TIDAL-compatible server ($TOKEN_LIFETIME access tokens)"
"$BIN/tidal-server" --addr-file "$WORK/tidal.json" --access-token-lifetime "$TOKEN_LIFETIME" \
  --client "$CLIENT_ID:$CLIENT_SECRET:TIDAL session operator demo" \
  >"$WORK/tidal-server.out" 2>"$WORK/tidal-server.log" &
pids+=($!)
wait_for "the TIDAL-compatible server" 30 test -s "$WORK/tidal.json"
json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$WORK/tidal.json"; }
AUTH_URL="$(json_field auth_base_url)"
API_URL="$(json_field api_base_url)"
OPENAPI_URL="$(json_field openapi_base_url)"
ADMIN_URL="$(json_field admin_url)"
echo "TIDAL auth $AUTH_URL, API $API_URL"
# Stands in for the user's earlier TIDAL login: the server accepts the sample refresh token
# as a grant of user 4711 in Norway.
curl -fsS -o /dev/null -X POST "${ADMIN_URL}grants" -H 'Content-Type: application/json' \
  -d "{\"client_id\":\"$CLIENT_ID\",\"user_id\":4711,\"country_code\":\"NO\",\"username\":\"demo\",\"refresh_token\":\"$REFRESH_TOKEN\"}" ||
  die "the TIDAL-compatible server refused the demo grant"

step "Starting the operator"
METRICS_PORT="$(free_port)"
"$BIN/manager" --tidal-auth-url "$AUTH_URL" --tidal-api-url "$API_URL" --tidal-openapi-url "$OPENAPI_URL" \
  --leader-election-namespace default --health-probe-bind-address 0 \
  --metrics-bind-address "127.0.0.1:$METRICS_PORT" --metrics-secure=false \
  >"$WORK/operator.log" 2>&1 &
pids+=($!)
wait_for "the operator's metrics endpoint" 60 curl -fsS -o /dev/null "http://127.0.0.1:$METRICS_PORT/metrics"

step "Applying the samples"
run "$KUBECTL" apply -k config/samples
start=$SECONDS
run "$KUBECTL" wait --for=condition=Ready tidalsession/demo --timeout=60s
echo "Ready after $((SECONDS - start))s"
run "$KUBECTL" get tidalsessions -o wide

step "The session's Events"
run "$KUBECTL" events --for tidalsession/demo

step "The output Secret's keys (values masked)"
printf '$ %s\n' "$KUBECTL get secret demo-tokens -o go-template=<keys and sizes>"
"$KUBECTL" get secret demo-tokens -o go-template='{{range $k, $v := .data}}{{printf "  %-13s " $k}}{{len $v}} base64 characters
{{end}}'
run "$KUBECTL" get secret demo-tokens -o jsonpath='{.metadata.labels}{"\n"}'

step "Waiting for a proactive refresh (tokens live $TOKEN_LIFETIME)"
status() { "$KUBECTL" get tidalsession demo -o jsonpath="{.status.$1}"; }
first_count="$(status refreshCount)"
first_expiry="$(status accessTokenExpiresAt)"
echo "refresh #$first_count: token expires $first_expiry, next refresh $(status nextRefreshTime)"
refreshed() { [[ "$(status refreshCount)" -gt "$first_count" ]]; }
wait_for "a proactive refresh" 90 refreshed
echo "refresh #$(status refreshCount): token expires $(status accessTokenExpiresAt) (was $first_expiry)"
run "$KUBECTL" get tidalsessions -o wide
echo "tidal_session_refresh_attempts_total from the operator's metrics:"
curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" | grep '^tidal_session_refresh_attempts_total' | sed 's/^/  /'

if [[ "${KEEP:-}" == 1 ]]; then
  step "Still running; Ctrl-C stops everything"
  echo "export KUBECONFIG=$KUBECONFIG"
  echo "kubectl is at $KUBECTL; the operator logs to ${WORK#"$ROOT"/}/operator.log"
  echo "(Ctrl-C ends with make's \"Error 130\": that is the interrupt, not a failure)"
  # A foreground sleep would hold the traps off until it ends; wait returns at once.
  while :; do
    sleep 3600 &
    # The sleep is a background job, which an interrupt does not reach: cleanup stops it.
    pids+=($!)
    wait $!
    unset 'pids[-1]'
  done
fi
echo
echo "Demo done: the session became Ready and was refreshed before its token expired."
