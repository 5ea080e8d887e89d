#!/usr/bin/env bash
# Moves a TidalSession and its credentials Secret to another namespace without a new login:
#
#   hack/move-session.sh FROM_NAMESPACE NAME TO_NAMESPACE
#
# The refresh token passes from one kubectl to the other through a pipe only: it is never
# printed, written to a file, or part of a command line (so neither shell history nor ps
# shows it). Steps, each safe to repeat:
#   1. suspend the session in FROM, so the two copies never refresh (and perhaps rotate the
#      refresh token) at the same time;
#   2. copy the credentials Secret, data only (no owner references, which would point into
#      FROM and make the garbage collector delete the copy);
#   3. create the session in TO from FROM's spec, not suspended, and wait until it is Ready;
#   4. delete the session in FROM (its output Secret goes with it) and, unless other
#      sessions there use it, its credentials Secret.
# KUBECTL names the kubectl to use (default: kubectl on PATH); its usual flags and KUBECONFIG
# apply.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 FROM_NAMESPACE NAME TO_NAMESPACE" >&2
  exit 2
fi
from=$1 name=$2 to=$3
kubectl=${KUBECTL:-kubectl}

if [[ "$from" == "$to" ]]; then
  echo "FROM_NAMESPACE and TO_NAMESPACE are the same" >&2
  exit 2
fi
creds="$("$kubectl" -n "$from" get tidalsession "$name" -o jsonpath='{.spec.credentialsSecretRef.name}')"
if "$kubectl" -n "$to" get tidalsession "$name" >/dev/null 2>&1; then
  echo "TidalSession $name already exists in $to; not touching it" >&2
  exit 1
fi

echo "suspending $from/$name"
"$kubectl" -n "$from" patch tidalsession "$name" --type merge -p '{"spec":{"suspend":true}}' >/dev/null

echo "copying Secret $creds to $to"
"$kubectl" -n "$from" get secret "$creds" -o go-template='apiVersion: v1
kind: Secret
metadata:
  name: {{.metadata.name}}
type: {{.type}}
data:
{{range $k, $v := .data}}  {{$k}}: {{$v}}
{{end}}' | "$kubectl" -n "$to" apply -f - >/dev/null

echo "creating $to/$name"
spec="$("$kubectl" -n "$from" get tidalsession "$name" -o jsonpath='{.spec}')"
printf '{"apiVersion":"sessions.tidal-mcp.dev/v1alpha1","kind":"TidalSession","metadata":{"name":"%s"},"spec":%s}' \
  "$name" "$spec" | "$kubectl" -n "$to" create -f - >/dev/null
"$kubectl" -n "$to" patch tidalsession "$name" --type merge -p '{"spec":{"suspend":false}}' >/dev/null
"$kubectl" -n "$to" wait --for=condition=Ready "tidalsession/$name" --timeout="${WAIT_TIMEOUT:-120s}" >/dev/null

echo "deleting $from/$name"
"$kubectl" -n "$from" delete tidalsession "$name" --wait=true >/dev/null
users="$("$kubectl" -n "$from" get tidalsessions -o jsonpath='{range .items[*]}{.spec.credentialsSecretRef.name}{"\n"}{end}' | grep -cx -- "$creds" || true)"
if [[ "$users" == 0 ]]; then
  "$kubectl" -n "$from" delete secret "$creds" --ignore-not-found >/dev/null
fi
echo "moved: $to/$name is Ready"
