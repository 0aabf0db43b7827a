##@ Load lab

# Scenario `make loadtest` runs against the cluster: warm-up, cold-start, ramp or shape.
SCENARIO ?= warm-up
# Extra flags for `dr-serving lab run`, e.g. LAB_ARGS="--requests 25 --interval 5" (see `dr-serving lab run SCENARIO -h`).
LAB_ARGS ?=
# Folder that holds one run folder per campaign (git-ignored).
RUNS_DIR ?= runs
# The run folder `make report` renders: a path, or `latest` (the newest under RUNS_DIR).
RUN ?= latest
# Target file `make loadtest` writes from `dr-serving deploy endpoints`.
LAB_TARGETS ?= $(RUNS_DIR)/targets.yaml
# Prometheus that cluster runs and reports query, e.g. http://127.0.0.1:9090 after a port-forward (empty: none).
PROMETHEUS_URL ?=
# Seconds between the warm-up requests of `make run` (published: 5).
RUN_INTERVAL ?= 0.2
# Warm-up requests of `make run` after the discarded one (published: 25).
RUN_REQUESTS ?= 25
# Backend `make run` serves with: litert (model.tflite, converted when missing: what the chart's default lite
# image serves) or savedmodel (TensorFlow, the full image).
RUN_BACKEND ?= litert

LAB_PROMETHEUS = $(if $(PROMETHEUS_URL),--prometheus-url $(PROMETHEUS_URL))

.PHONY: run
run: setup ## Build (or reuse) the default model, serve it with LiteRT on 127.0.0.1, run the published warm-up, print and report.
	@$(DR) demo --model-dir $(MODEL_DIR) --train-synthetic $(MOBILENET_TRAIN_IMAGES) --epochs $(MODEL_EPOCHS) \
	  --seed $(MODEL_SEED) --requests $(RUN_REQUESTS) --interval $(RUN_INTERVAL) --out $(RUNS_DIR) \
	  --backend $(RUN_BACKEND)

# 1: run the campaign inside the cluster, on the chart's load-test master and workers (loadtest.enabled), then copy
# the run folder out with `dr-serving lab collect`; empty: run Locust here against the deployment's endpoints.
LOADTEST_IN_CLUSTER ?=
# Worker processes `make loadtest` starts on this machine (0: one Locust process; see --workers).
LAB_WORKERS ?= 0
# In-cluster campaign: the master pod reads scenario, workers, pool and flags from the chart's ConfigMap
# (python -m serving lab in-cluster; the image has no shell); SCENARIO given here replaces the scenario and its flags,
# LAB_ARGS extend them.
LOADTEST_MASTER_SELECTOR = app.kubernetes.io/instance=$(RELEASE),app.kubernetes.io/component=loadtest-master

.PHONY: loadtest
ifeq ($(LOADTEST_IN_CLUSTER),1)
loadtest: setup tools ## Run SCENARIO against the deployment: locally (LAB_WORKERS=N local workers) or, with LOADTEST_IN_CLUSTER=1, on the chart's in-cluster Locust master + workers, then collect the run folder.
	@master="$$("$(KUBECTL)" -n $(NAMESPACE) get pod -l '$(LOADTEST_MASTER_SELECTOR)' \
	  --field-selector=status.phase=Running -o name | head -n 1)"; \
	if [ -z "$$master" ]; then echo "Error: no running load-test master ($(LOADTEST_MASTER_SELECTOR)) in $(NAMESPACE); deploy with DEPLOY_ARGS='--set loadtest.enabled=true' (on kind, first: make image-lab kind-load-lab)." >&2; exit 2; fi; \
	echo ">> campaign in $$master (namespace $(NAMESPACE)), workers from the loadtest worker Deployment"; \
	"$(KUBECTL)" -n $(NAMESPACE) exec "$$master" -- python -m serving lab in-cluster \
	  $(if $(filter command line,$(origin SCENARIO)),--scenario $(SCENARIO)) -- $(LAB_PROMETHEUS) $(LAB_ARGS)
	@$(DR) lab collect latest --release $(RELEASE) --namespace $(NAMESPACE) --out $(RUNS_DIR)
else
loadtest: setup ## Run SCENARIO against the deployment: locally (LAB_WORKERS=N local workers) or, with LOADTEST_IN_CLUSTER=1, on the chart's in-cluster Locust master + workers, then collect the run folder.
	@mkdir -p $(RUNS_DIR)
	@$(DR) deploy endpoints --output yaml > $(LAB_TARGETS)
	@$(DR) lab run $(SCENARIO) --targets $(LAB_TARGETS) --workers $(LAB_WORKERS) --out $(RUNS_DIR) $(LAB_PROMETHEUS) $(LAB_ARGS)
endif

# Runtime of `make loadtest-local`: process (predictors pinned to cores; memory profiles are labels) or docker
# (containers of the project's image, `make image`, with real --memory/--cpus limits).
LAB_RUNTIME ?= process
# Memory profiles of `make lab-memory` (container --memory; add any size, e.g. 1Gi,2Gi,3Gi,512Mi).
MEMORY_PROFILES ?= 1Gi,2Gi,3Gi
# Cold requests per model x profile of `make lab-memory` (published: 10, each 15 min apart).
MEMORY_COLD_REQUESTS ?= 3
# Image tag suffix the docker runtime runs, e.g. `test` for the images the image tests build (empty: `make image`'s).
LAB_IMAGE_SUFFIX ?=

.PHONY: loadtest-local
loadtest-local: setup ## Run SCENARIO against local predictors emulating node pools (no cluster; LAB_RUNTIME=docker: containers).
	@$(DR) lab run $(SCENARIO) --local --runtime $(LAB_RUNTIME) --image-suffix "$(LAB_IMAGE_SUFFIX)" \
	  --model-dir $(MODEL_ARCH)=$(MODEL_DIR) --out $(RUNS_DIR) $(LAB_ARGS)

.PHONY: lab-memory
lab-memory: setup docker-engine ## The published memory experiment on real container limits: {MobileNet, VGG19} x MEMORY_PROFILES x {warm-up 1+25, cold starts}; report with the published figures beside.
	@$(MAKE) models
	@for m in mobilenet vgg19; do [ -f $(MODELS_DIR)/$$m/model.tflite ] || $(DR) model convert $(MODELS_DIR)/$$m; done
	@$(DR) lab run memory --model-dir mobilenet=$(MODELS_DIR)/mobilenet --model-dir vgg19=$(MODELS_DIR)/vgg19 \
	  --memory-profiles $(MEMORY_PROFILES) --cold-requests $(MEMORY_COLD_REQUESTS) --image-suffix "$(LAB_IMAGE_SUFFIX)" \
	  --out $(RUNS_DIR) $(LAB_ARGS)

# Worker counts, users and seconds per run of `make lab-generator-bench`.
GENBENCH_WORKERS ?= 1,2
GENBENCH_USERS ?= 50
GENBENCH_SECONDS ?= 10

.PHONY: lab-generator-bench
lab-generator-bench: setup ## Highest request rate one Locust process generates vs a master + N workers (cheap route); writes runs/generator-bench-*.json + CSV.
	@$(DR) lab generator-bench --model-dir $(MODEL_DIR) --worker-counts $(GENBENCH_WORKERS) --users $(GENBENCH_USERS) \
	  --seconds $(GENBENCH_SECONDS) --out $(RUNS_DIR)

.PHONY: report
report: setup ## Write report.md/report.html for RUN (default: the latest run) and print its tables.
	@$(DR) lab report $(RUN) --runs $(RUNS_DIR) $(LAB_PROMETHEUS)
