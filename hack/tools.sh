#!/usr/bin/env bash
# Builds the dev/test tools into bin/ (git-ignored), from Go modules only, so a
# fresh clone needs nothing but the go command and the module proxy:
#   bin/k8s/{etcd,kube-apiserver,kubectl}   envtest control plane (KUBEBUILDER_ASSETS)
#   bin/{helm,controller-gen}
# Usage: hack/tools.sh [TOOL...]       default: all tools
#        hack/tools.sh --print-assets   prints the KUBEBUILDER_ASSETS folder
# A stamp file beside each binary records the version it was built at; a tool
# is rebuilt only when its binary or stamp is missing or the version differs.
set -euo pipefail

ETCD_VERSION=v3.7.3
KUBE_VERSION=v1.37.2
KUBE_STAGING_VERSION=v0.37.2 # k8s.io/* staging modules are tagged v0.<minor>.<patch>
HELM_VERSION=v4.3.2
CONTROLLER_GEN_VERSION=v0.23.0
ALL_TOOLS=(etcd kube-apiserver kubectl helm controller-gen)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/bin"
ASSETS="$BIN/k8s"
BUILD="$BIN/.build"

if [[ "${1:-}" == --print-assets ]]; then
  echo "$ASSETS"
  exit 0
fi

# Never switch toolchains behind our back (that would be a download), never
# pick up a go.work, and build static binaries that run anywhere.
export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0
BUILD_FLAGS=(-trimpath)
LDFLAGS='-s -w'
# Stamps the Kubernetes version the way the release build does; without it
# the binaries report v0.0.0-master.
KUBE_LDFLAGS="$LDFLAGS -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
KUBE_LDFLAGS+=" -X k8s.io/component-base/version.gitMajor=$(cut -d. -f1 <<<"${KUBE_VERSION#v}")"
KUBE_LDFLAGS+=" -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$KUBE_VERSION")"
KUBE_LDFLAGS+=" -X k8s.io/component-base/version.gitTreeState=clean"

# Each throwaway module resolves its own dependencies (-mod=mod) and does not
# stamp the surrounding repo's git state into the binary (-buildvcs=false).
modgo() { (cd "$MOD" && GOFLAGS='-mod=mod -buildvcs=false' go "$@"); }

# new_module NAME MAIN_GO: fresh throwaway module in bin/.build/NAME.
new_module() {
  MOD="$BUILD/$1"
  rm -rf "$MOD"
  mkdir -p "$MOD"
  printf '%s\n' "$2" >"$MOD/main.go"
  modgo mod init "localtools/$1"
}

build_etcd() {
  # go install of the server module is refused (it has replace directives),
  # so wrap its entry point, exactly as etcd's own main package does.
  new_module etcd 'package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }'
  modgo get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  modgo build "${BUILD_FLAGS[@]}" -ldflags="$LDFLAGS" -o "$ASSETS/etcd" .
}

build_kube_apiserver() {
  # Same main as kubernetes' cmd/kube-apiserver.
  new_module kube-apiserver 'package main

import (
	"os"
	_ "time/tzdata"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }'
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
  # with ./staging folders that are not in its module zip; point each one at
  # its published release instead. Two samples are never published, and go
  # wants every replace target to exist, so they get empty stub modules.
  local gomod name edits=()
  gomod="$(modgo list -m -f '{{.GoMod}}' "k8s.io/kubernetes@$KUBE_VERSION")"
  for name in $(awk '$2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }' "$gomod"); do
    case "$name" in
      k8s.io/sample-cli-plugin | k8s.io/sample-controller)
        mkdir -p "$MOD/stub/${name#k8s.io/}"
        echo "module $name" >"$MOD/stub/${name#k8s.io/}/go.mod"
        edits+=("-replace=$name=./stub/${name#k8s.io/}") ;;
      *) edits+=("-replace=$name=$name@$KUBE_STAGING_VERSION") ;;
    esac
  done
  modgo mod edit "${edits[@]}"
  modgo get "k8s.io/kubernetes@$KUBE_VERSION"
  modgo build "${BUILD_FLAGS[@]}" -ldflags="$KUBE_LDFLAGS" -o "$ASSETS/kube-apiserver" .
}

build_kubectl() {
  # Same main as kubernetes' cmd/kubectl.
  new_module kubectl 'package main

import (
	"os"

	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	logs.GlogSetter(cmd.GetLogVerbosity(os.Args)) // nolint:errcheck
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}'
  # No -u: every k8s.io module stays at the version kubectl itself pins.
  modgo get "k8s.io/kubectl@$KUBE_STAGING_VERSION"
  modgo build "${BUILD_FLAGS[@]}" -ldflags="$KUBE_LDFLAGS" -o "$ASSETS/kubectl" .
}

build_helm() {
  # helm reports only "v4.3" unless the release build's -X is given.
  GOBIN="$BIN" go install "${BUILD_FLAGS[@]}" \
    -ldflags="$LDFLAGS -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
}

build_controller_gen() {
  GOBIN="$BIN" go install "${BUILD_FLAGS[@]}" -ldflags="$LDFLAGS" \
    "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_GEN_VERSION"
}

# ensure NAME DIR VERSION ESTIMATE
ensure() {
  local name=$1 dir=$2 version=$3 estimate=$4
  local stamp="$dir/.$name.version"
  if [[ -x "$dir/$name" && "$(cat "$stamp" 2>/dev/null)" == "$version" ]]; then
    echo "$name $version: up to date"
    return
  fi
  echo "$name $version: building ($estimate)…"
  mkdir -p "$dir" "$BUILD"
  rm -f "$stamp"
  # go's chatter (hundreds of "added" lines) goes to a log that is shown only
  # if the build fails; set -e ends the script there, hence a trap, not ||.
  local log="$BUILD/$name.log" start=$SECONDS
  trap "echo '$name: build failed; end of $log:' >&2; tail -n 40 '$log' >&2" EXIT
  "build_${name//-/_}" >"$log" 2>&1
  trap - EXIT
  echo "$version" >"$stamp"
  echo "$name $version: built in $((SECONDS - start))s"
}

tools=("$@")
[[ ${#tools[@]} -gt 0 ]] || tools=("${ALL_TOOLS[@]}")
for tool in "${tools[@]}"; do
  case "$tool" in
    etcd) ensure etcd "$ASSETS" "$ETCD_VERSION" "about 1 min" ;;
    kube-apiserver) ensure kube-apiserver "$ASSETS" "$KUBE_VERSION" "about 5 min" ;;
    kubectl) ensure kubectl "$ASSETS" "$KUBE_VERSION" "about 2 min" ;;
    helm) ensure helm "$BIN" "$HELM_VERSION" "about 2 min" ;;
    controller-gen) ensure controller-gen "$BIN" "$CONTROLLER_GEN_VERSION" "about 1 min" ;;
    *) echo "unknown tool: $tool (known: ${ALL_TOOLS[*]})" >&2; exit 2 ;;
  esac
done
