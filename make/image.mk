##@ Image

# Flavours built by `make image`: full (TensorFlow, SavedModel) and lite (LiteRT, no TensorFlow);
# `make image FLAVOUR=lite` builds one (FLAVOUR is shared with the cluster targets).
IMAGE_FLAVOURS ?= $(if $(filter command line environment,$(origin FLAVOUR)),$(FLAVOUR),full lite)
# Base image. Empty = the local debootstrap base dr-serving/base:bookworm (offline, built by `make base-image`);
# set IMAGE_BASE=python:3.11-slim-bookworm to build on the official image (needs a registry).
IMAGE_BASE ?=
# Model baked in at /opt/dr-serving/model, where the chart reads `source: image` models. Default: the default
# model (`make model`; lite images get its LiteRT conversion). Empty = no model baked (read from /mnt/models).
IMAGE_MODEL ?= $(MODEL_DIR)
# Registry for `make image-multiarch`: 127.0.0.1:PORT (Debian's docker-registry, started and stopped by the target)
# or one you are logged in to (`docker login`): <account>.dkr.ecr.<region>.amazonaws.com, ghcr.io/<owner>.
IMAGE_REGISTRY ?= 127.0.0.1:5000
# Platforms of `make image-multiarch-buildx` (only where docker buildx is installed).
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
IMAGE_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

IMAGES_PY := $(PY) -m dr_image.images

.PHONY: docker-engine
docker-engine: setup ## Start dockerd (log in build/dockerd.log) unless a Docker engine already answers.
	@$(IMAGES_PY) engine

.PHONY: base-image
base-image: docker-engine ## Build the offline base image dr-serving/base:bookworm (debootstrap minbase + python3).
	@bash docker/base-image.sh dr-serving/base:bookworm

.PHONY: base-image-arm64
base-image-arm64: docker-engine qemu ## Build dr-serving/base:bookworm-arm64 (debootstrap --arch=arm64, QEMU second stage).
	@bash docker/base-image.sh dr-serving/base:bookworm-arm64 arm64

.PHONY: requirements-image
requirements-image: setup ## Regenerate docker/requirements-{full,lite,lab}.txt from pyproject.toml and the lock.
	@$(PY) -m dr_image.requirements

.PHONY: wheelhouse
wheelhouse: setup ## Download the pinned runtime wheels of every flavour into build/wheelhouse/linux-<arch>.
	@$(PY) -m dr_image.wheelhouse

.PHONY: wheelhouse-arm64
wheelhouse-arm64: setup ## Download the aarch64 wheels of every flavour into build/wheelhouse/linux-arm64.
	@$(PY) -m dr_image.wheelhouse --arch arm64

.PHONY: wheels-check-arm64
wheels-check-arm64: setup ## Check, without building, that every runtime requirement has a linux/arm64 wheel.
	@$(PY) -m dr_image.wheelhouse --arch arm64 --check

# Build IMAGE_FLAVOURS for arch $(1) (empty: the host's), converting the model for lite first.
define build_images
	@if [ -n "$(IMAGE_MODEL)" ] && [ "$(IMAGE_MODEL)" = "$(MODEL_DIR)" ]; then $(MAKE) model; fi
	@for flavour in $(IMAGE_FLAVOURS); do \
	  if [ -n "$(IMAGE_MODEL)" ] && [ $$flavour = lite ] && [ ! -f "$(IMAGE_MODEL)/model.tflite" ]; then \
	    $(DR) model convert "$(IMAGE_MODEL)"; fi; \
	  $(IMAGES_PY) build --flavour $$flavour $(if $(1),--arch $(1)) \
	    $(if $(IMAGE_BASE),--base $(IMAGE_BASE) --no-wheelhouse) $(if $(IMAGE_MODEL),--model $(IMAGE_MODEL)); done
endef

.PHONY: image
image: docker-engine ## Build dr-serving/predictor:<version>-{full,lite} with IMAGE_MODEL baked in (offline base).
	$(call build_images,)

.PHONY: image-lab
image-lab: docker-engine ## Build dr-serving/loadtest:<version>-lab, the Locust load lab the chart's load-test pods run.
	@$(IMAGES_PY) build --flavour lab $(if $(IMAGE_BASE),--base $(IMAGE_BASE) --no-wheelhouse)

.PHONY: image-arm64
image-arm64: docker-engine qemu ## Build dr-serving/predictor:<version>-{full,lite}-arm64 for linux/arm64 under QEMU.
	$(call build_images,arm64)

.PHONY: image-multiarch
image-multiarch: image image-arm64 ## Push both arches and one multi-arch index per flavour to IMAGE_REGISTRY (no buildx).
	@$(PY) -m dr_image.multiarch --registry $(IMAGE_REGISTRY) $(foreach f,$(IMAGE_FLAVOURS),--flavour $(f))

.PHONY: image-multiarch-buildx
image-multiarch-buildx: ## The same with docker buildx where it is installed (official base image, IMAGE_PLATFORMS).
	@docker buildx version >/dev/null 2>&1 || { echo "Error: docker buildx is missing; use make image-multiarch (no buildx needed)." >&2; exit 1; }
	@for flavour in $(IMAGE_FLAVOURS); do \
	  if [ -n "$(IMAGE_MODEL)" ] && [ $$flavour = lite ] && [ ! -f "$(IMAGE_MODEL)/model.tflite" ]; then \
	    $(DR) model convert "$(IMAGE_MODEL)"; fi; \
	  docker buildx build --platform $(IMAGE_PLATFORMS) --build-arg FLAVOUR=$$flavour \
	    --build-arg BASE_IMAGE=$(or $(IMAGE_BASE),python:3.11-slim-bookworm) \
	    $(if $(IMAGE_MODEL),--build-arg MODEL=$(IMAGE_MODEL)) \
	    --tag $(IMAGE_REGISTRY)/dr-serving/predictor:$(IMAGE_VERSION)-$$flavour --push . ; done

.PHONY: image-test
image-test: setup system-deps ## Build both flavours and test the running containers (tests/image, several minutes).
	@$(PY) -m pytest tests/image $(PYTEST_ARGS)

.PHONY: image-test-arm64
image-test-arm64: setup system-deps ## Build the arm64 lite image, run it under QEMU against amd64, publish an index.
	@$(PY) -m pytest tests/image/test_arm64.py $(PYTEST_ARGS)
	@cat build/reports/arm64-emulation.json

.PHONY: image-test-arm64-full
image-test-arm64-full: setup system-deps ## Build the arm64 full image under QEMU, load the SavedModel, answer once (slow).
	@$(PY) -m pytest tests/image/test_arm64.py -m arm64_full $(PYTEST_ARGS)
	@cat build/reports/arm64-emulation.json

.PHONY: image-measure
image-measure: image ## Print image sizes (per layer, gzip), start times, cold start per phase and CPU limit, LiteRT vs SavedModel.
	@$(PY) -m dr_image.measure

.PHONY: image-cold-start
image-cold-start: image ## Container cold start per phase at 0.5/1/2 CPUs (median of 5) and the estimated Knative cold start.
	@$(PY) -m dr_image.coldstart

.PHONY: image-measure-arm64
image-measure-arm64: image-arm64 ## The same figures for the arm64 images (QEMU emulation, not Graviton performance).
	@$(PY) -m dr_image.measure --arch arm64
