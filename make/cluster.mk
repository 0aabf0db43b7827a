##@ Cluster

# Local cluster and release settings (override on the command line, e.g. `make deploy FLAVOUR=full`).
# kind cluster name (kind-config.yaml names it dr-serving too).
KIND_CLUSTER ?= dr-serving
# Helm release name; InferenceServices are named <release>-<model>-<pool>.
RELEASE ?= dr-serving
# Namespace the release is installed into.
NAMESPACE ?= dr-serving
# Predictor image flavour to load and deploy: lite (LiteRT, the chart default) or full (TensorFlow).
FLAVOUR ?= lite
# Values file(s) for `make deploy` (kind by default; pass your own for EKS).
DEPLOY_VALUES ?= charts/dr-serving/ci/kind-values.yaml
# Extra --set arguments for `helm upgrade --install` and preflight, e.g. DEPLOY_ARGS="--set mode=standard".
DEPLOY_ARGS ?=
# 0 = skip `dr-serving deploy preflight` before `make deploy` installs (it exits 1 on any problem it finds).
PREFLIGHT ?= 1
# Seconds `make deploy` waits for every InferenceService to be Ready.
DEPLOY_TIMEOUT ?= 600
# 1 = also apply the fast scale-to-zero autoscaler config (cold-start experiments).
FAST_SCALE_TO_ZERO ?= 0
# 1 = expose Kourier on NodePort 31080 for kind; 0 keeps its LoadBalancer Service (EKS).
KOURIER_NODEPORT ?= 1

CHART_DIR := charts/dr-serving
CLUSTER_IMAGE_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
CLUSTER_IMAGE := dr-serving/predictor:$(CLUSTER_IMAGE_VERSION)-$(FLAVOUR)
# The load lab image the chart's in-cluster load generator runs (loadtest.image; make image-lab builds it).
CLUSTER_LAB_IMAGE := dr-serving/loadtest:$(CLUSTER_IMAGE_VERSION)-lab

.PHONY: kind-up
kind-up: ## Create the kind cluster from kind-config.yaml (control plane + amd64, graviton and loadgen workers) unless it exists.
	@command -v kind >/dev/null || { echo "Error: kind is not on PATH; install kind $(KIND_VERSION): https://kind.sigs.k8s.io/docs/user/quick-start/#installation" >&2; exit 1; }
	@kind_v="$$(kind version 2>/dev/null || true)"; [[ "$$kind_v" == *"$(KIND_VERSION) "* ]] || echo ">> note: expected kind $(KIND_VERSION), found: $$kind_v"
	@if kind get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then \
	  echo ">> kind cluster '$(KIND_CLUSTER)' exists"; \
	else \
	  echo ">> creating kind cluster '$(KIND_CLUSTER)' ($(KIND_NODE_IMAGE)) from kind-config.yaml"; \
	  kind create cluster --name '$(KIND_CLUSTER)' --config kind-config.yaml --image '$(KIND_NODE_IMAGE)' --wait 180s; \
	fi
	@kubectl get nodes -L dr-serving/pool -L kubernetes.io/arch

.PHONY: kind-down
kind-down: ## Delete the kind cluster (nothing to do when it does not exist).
	@echo ">> deleting kind cluster '$(KIND_CLUSTER)'"
	@kind delete cluster --name '$(KIND_CLUSTER)'

.PHONY: cluster-addons
cluster-addons: tools ## Install cert-manager, Knative Serving + Kourier, KServe and kube-prometheus-stack (pinned in manifests/versions.env).
	@echo ">> installing cluster add-ons into the current kubectl context ($$(kubectl config current-context))"
	@KUBECTL=kubectl HELM="$(HELM)" FAST_SCALE_TO_ZERO=$(FAST_SCALE_TO_ZERO) KOURIER_NODEPORT=$(KOURIER_NODEPORT) \
	  manifests/install-addons.sh

# $(1): an image built here, $(2): the make target that builds it. Knative and the kubelet never resolve or pull
# kind.local/ (charts/dr-serving/ci/kind-values.yaml: pullPolicy Never), so every kind node gets a copy.
define kind_load_image
	@docker image inspect '$(1)' >/dev/null 2>&1 || { echo "Error: image $(1) not found; run: make $(2)" >&2; exit 1; }
	@echo ">> docker tag $(1) kind.local/$(1)"
	@docker tag '$(1)' 'kind.local/$(1)'
	@echo ">> kind load docker-image kind.local/$(1) --name $(KIND_CLUSTER)"
	@kind load docker-image 'kind.local/$(1)' --name '$(KIND_CLUSTER)'
endef

.PHONY: kind-load
kind-load: ## Re-tag dr-serving/predictor:<version>-<FLAVOUR> as kind.local/... and load it into the kind nodes.
	$(call kind_load_image,$(CLUSTER_IMAGE),image FLAVOUR=$(FLAVOUR))

.PHONY: kind-load-lab
kind-load-lab: ## Re-tag the lab image dr-serving/loadtest:<version>-lab (make image-lab) as kind.local/... and load it into the kind nodes (loadtest.enabled=true).
	$(call kind_load_image,$(CLUSTER_LAB_IMAGE),image-lab)

.PHONY: deploy
deploy: tools ## Check the cluster (deploy preflight), install or upgrade the chart (DEPLOY_VALUES) and wait until every InferenceService is Ready.
	@echo ">> dr-serving deploy preflight (PREFLIGHT=0 skips it)"
	@if [ "$(PREFLIGHT)" != 0 ]; then $(DR) deploy preflight --namespace '$(NAMESPACE)' --release '$(RELEASE)' \
	  $(foreach f,$(DEPLOY_VALUES),-f $(f)) --set image.flavour=$(FLAVOUR) $(DEPLOY_ARGS); fi
	@echo ">> helm upgrade --install $(RELEASE) $(CHART_DIR) -n $(NAMESPACE) -f $(DEPLOY_VALUES) --set image.flavour=$(FLAVOUR) $(DEPLOY_ARGS)"
	@"$(HELM)" upgrade --install '$(RELEASE)' '$(CHART_DIR)' --namespace '$(NAMESPACE)' --create-namespace \
	  $(foreach f,$(DEPLOY_VALUES),-f $(f)) --set image.flavour=$(FLAVOUR) $(DEPLOY_ARGS)
	@echo ">> waiting up to $(DEPLOY_TIMEOUT)s for the InferenceServices of $(RELEASE) to be Ready"
	@$(DR) deploy wait --namespace '$(NAMESPACE)' --release '$(RELEASE)' --timeout $(DEPLOY_TIMEOUT)
	@$(DR) deploy endpoints --namespace '$(NAMESPACE)' --release '$(RELEASE)'

.PHONY: undeploy
undeploy: tools ## Uninstall the release (nothing to do when it is not installed).
	@echo ">> helm uninstall $(RELEASE) -n $(NAMESPACE)"
	@"$(HELM)" uninstall '$(RELEASE)' --namespace '$(NAMESPACE)' --ignore-not-found --wait

.PHONY: helm-test
helm-test: tools ## Run the chart's helm test: one real prediction against every InferenceService of the release.
	@echo ">> helm test $(RELEASE) -n $(NAMESPACE)"
	@"$(HELM)" test '$(RELEASE)' --namespace '$(NAMESPACE)' --logs

##@ Chart

# checkov, pinned, in a venv of its own: its ~60 dependencies would change packages of the project venv.
CHECKOV_VERSION ?= 3.3.30
CHECKOV_VENV ?= build/checkov-venv

.PHONY: checkov-venv
checkov-venv: $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION) ## Create build/checkov-venv with the pinned checkov (make test scans the chart with it).

$(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION):
	@echo ">> creating $(CHECKOV_VENV) with checkov $(CHECKOV_VERSION)"
	@rm -rf '$(CHECKOV_VENV)' && $(PYTHON) -m venv '$(CHECKOV_VENV)'
	@'$(CHECKOV_VENV)/bin/python' -m pip install --quiet 'checkov==$(CHECKOV_VERSION)' >'$(CHECKOV_VENV).log' 2>&1 \
	  || { tail -20 '$(CHECKOV_VENV).log' >&2; echo "Error: installing checkov failed (log: $(CHECKOV_VENV).log)" >&2; exit 1; }
	@touch $@

# `make test` scans the rendered chart with checkov (tests/chart/test_checkov.py).
test: checkov-venv

.PHONY: chart-lint
chart-lint: tools ## Lint the chart with the default values and every ci/*-values.yaml.
	@echo ">> helm lint --strict $(CHART_DIR)"
	@"$(HELM)" lint --strict '$(CHART_DIR)'
	@for f in $(CHART_DIR)/ci/*-values.yaml; do echo ">> helm lint --strict $(CHART_DIR) -f $$f"; "$(HELM)" lint --strict '$(CHART_DIR)' -f "$$f" >/dev/null; done

.PHONY: chart-docs
chart-docs: setup ## Regenerate the chart README's values table from the comments in values.yaml.
	@$(PY) charts/tools/chart_values_table.py

.PHONY: verify-pins
verify-pins: ## (network) HTTP HEAD every release asset and chart version pinned in manifests/versions.env.
	@$(PY) charts/tools/verify_pins.py

.PHONY: chart-schemas
chart-schemas: setup ## Regenerate tests/chart/schemas/crds.json from the upstream CRDs in ../shared/schemas.
	@$(PY) charts/tools/compact_crd_schemas.py
