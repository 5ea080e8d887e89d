# The README's two commands are `make demo` and `make test`; the rest are their parts.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

BIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(BIN)/controller-gen
CHART := charts/tidal-session-operator
# envtest's control plane (etcd, kube-apiserver, kubectl), built by hack/tools.sh.
export KUBEBUILDER_ASSETS ?= $(BIN)/k8s
# Never switch Go toolchains behind our back: that would be a download.
export GOTOOLCHAIN := local
# The operator image build, exactly as the Dockerfile runs it.
IMG_BUILD_FLAGS := -trimpath -ldflags='-s -w'

.PHONY: help
help: ## Lists the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ The two commands

.PHONY: demo
demo: ## Runs the main job locally: control plane, TIDAL-compatible server, operator, sample session (KEEP=1 keeps it running).
	hack/demo.sh

.PHONY: test
test: tools verify-generated vet unit-test integration-test contract-test ## Runs every test, building what it needs first.

##@ Parts

.PHONY: tools
tools: ## Builds the control plane, kubectl, helm and controller-gen into bin/ when missing or stale.
	hack/tools.sh etcd kube-apiserver kubectl helm controller-gen

.PHONY: generate
generate: ## Generates the API's deepcopy functions.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: ## Generates the CRD and the operator's RBAC Role from the code's markers, and copies the CRD into the chart.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths=./... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	cp config/crd/bases/*.yaml $(CHART)/files/crds/

.PHONY: verify-generated
verify-generated: generate manifests ## Fails when generated files differ from what is committed.
	@git diff --exit-code -- api config $(CHART)/files/crds || { \
		echo "generated files are stale: run 'make generate manifests' and commit the result" >&2; exit 1; }
	@untracked="$$(git ls-files --others --exclude-standard -- api config $(CHART)/files/crds)"; \
		if [[ -n "$$untracked" ]]; then echo "generated files not committed: $$untracked" >&2; exit 1; fi

.PHONY: vet
vet: ## Checks formatting and runs go vet.
	@unformatted="$$(gofmt -l $$(git ls-files '*.go'))"; \
		if [[ -n "$$unformatted" ]]; then echo "not gofmt'd: $$unformatted" >&2; exit 1; fi
	go vet ./...

.PHONY: unit-test
unit-test: ## Runs the unit tests (everything but test/).
	go test -race -count=1 $$(go list ./... | grep -v /test/)

.PHONY: integration-test
integration-test: ## Runs the Ginkgo suites under test/ against a real kube-apiserver and etcd, one package at a time.
	go test -v -count=1 -p 1 -timeout 40m ./test/... -ginkgo.v

.PHONY: contract-test
contract-test: ## Runs TIDAL's own auth SDK against the TIDAL-compatible server.
	test/contract/run.sh

.PHONY: build
build: ## Builds the operator, the TIDAL-compatible server, the kubectl plugin and the MCP server into bin/.
	go build -o $(BIN)/manager ./cmd/manager
	go build -o $(BIN)/tidal-server ./cmd/tidal-server
	go build -o $(BIN)/kubectl-tidal ./cmd/kubectl-tidal
	go build -o $(BIN)/tidal-mcp ./cmd/tidal-mcp

.PHONY: image-binary
image-binary: ## Builds the operator binary exactly as the Dockerfile does (no Docker needed).
	CGO_ENABLED=0 go build $(IMG_BUILD_FLAGS) -o $(BIN)/image/manager ./cmd/manager
