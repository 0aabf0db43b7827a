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
# Registry prefix and platforms for `make image-multiarch` (needs docker buildx and a registry to push to).
IMAGE_REGISTRY ?= localhost:5000
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
IMAGE_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

IMAGES_PY := $(PY) docker/images.py

.PHONY: docker-engine
docker-engine: setup ## Start dockerd (log in build/dockerd.log) unless a Docker engine already answers.
	@$(IMAGES_PY) engine

.PHONY: base-image
base-image: docker-engine ## Build the offline base image dr-serving/base:bookworm (debootstrap minbase + python3).
	@bash docker/base-image.sh dr-serving/base:bookworm

.PHONY: requirements-image
requirements-image: setup ## Regenerate docker/requirements-{full,lite}.txt from pyproject.toml and the lock.
	@$(PY) docker/requirements.py

.PHONY: wheelhouse
wheelhouse: setup ## Download the pinned runtime wheels of both flavours into build/wheelhouse/linux-<arch>.
	@$(PY) docker/wheelhouse.py

.PHONY: wheels-check-arm64
wheels-check-arm64: setup ## Check, without building, that every runtime requirement has a linux/arm64 wheel.
	@$(PY) docker/wheelhouse.py --arch arm64 --check

.PHONY: image
image: docker-engine ## Build dr-serving/predictor:<version>-{full,lite} with IMAGE_MODEL baked in (offline base).
	@if [ -n "$(IMAGE_MODEL)" ] && [ "$(IMAGE_MODEL)" = "$(MODEL_DIR)" ]; then $(MAKE) model; fi
	@for flavour in $(IMAGE_FLAVOURS); do \
	  if [ -n "$(IMAGE_MODEL)" ] && [ $$flavour = lite ] && [ ! -f "$(IMAGE_MODEL)/model.tflite" ]; then \
	    $(DR) model convert "$(IMAGE_MODEL)"; fi; \
	  $(IMAGES_PY) build --flavour $$flavour $(if $(IMAGE_BASE),--base $(IMAGE_BASE) --no-wheelhouse) \
	    $(if $(IMAGE_MODEL),--model $(IMAGE_MODEL)); done

.PHONY: image-multiarch
image-multiarch: ## Build and push both flavours for amd64+arm64 with docker buildx (IMAGE_REGISTRY=...).
	@docker buildx version >/dev/null 2>&1 || { echo "Error: docker buildx is missing; install the docker-buildx plugin (and qemu binfmt for arm64)." >&2; exit 1; }
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

.PHONY: image-measure
image-measure: image ## Print image sizes, start-to-first-prediction times and LiteRT vs SavedModel figures.
	@$(PY) docker/measure.py
