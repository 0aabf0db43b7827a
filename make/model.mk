##@ Model

# The published classifiers, built locally (no downloads): MobileNet trained for a few minutes on synthetic fundus
# photos, VGG19 with its dense head trained on them. For serving and benchmarking only, NOT for diagnosis. A model already built
# with the same options is reused; add MODEL_FORCE=--force to rebuild.

# Folder holding one sub-folder per model (git-ignored).
MODELS_DIR ?= models
# Architecture of the default model that `make model` builds and the serving targets use (mobilenet or vgg19).
MODEL_ARCH ?= mobilenet
# Model directory of the default model.
MODEL_DIR ?= $(MODELS_DIR)/$(MODEL_ARCH)
# Synthetic photos MobileNet is trained on (0 = random weights); about 2–3 minutes on 2 cores.
MOBILENET_TRAIN_IMAGES ?= 500
# Synthetic photos VGG19 is trained on (0 = random weights). Training all of VGG19 on a CPU takes hours, so it
# trains its dense head only, on a fixed variance-scaled random backbone (5-15 minutes on 2 shared cores): enough
# for its answers to depend on the photo, so that int8/BF16 agreement checks mean something.
VGG19_TRAIN_IMAGES ?= 240
# Epochs of VGG19's head training (on cached features: seconds).
VGG19_EPOCHS ?= 100
# Training epochs.
MODEL_EPOCHS ?= 3
# Random seed for weights and synthetic photos.
MODEL_SEED ?= 0
# Extra flags for `dr-serving model build`, e.g. --force.
MODEL_FORCE ?=

MODEL_TRAIN_IMAGES = $(if $(filter vgg19,$(1)),$(VGG19_TRAIN_IMAGES),$(MOBILENET_TRAIN_IMAGES))
MODEL_TRAIN_FLAGS = $(if $(filter vgg19,$(1)),--train-head-only --epochs $(VGG19_EPOCHS),--epochs $(MODEL_EPOCHS))
model_build = $(DR) model build --arch $(1) --out $(2) --train-synthetic $(call MODEL_TRAIN_IMAGES,$(1)) \
	$(call MODEL_TRAIN_FLAGS,$(1)) --seed $(MODEL_SEED) $(MODEL_FORCE)

.PHONY: model
model: setup ## Build the default model (MODEL_ARCH, synthetic-trained MobileNet) into MODEL_DIR; reused if present.
	@$(call model_build,$(MODEL_ARCH),$(MODEL_DIR))

.PHONY: models
models: setup ## Build both models under MODELS_DIR: MobileNet (synthetic-trained), VGG19 (head trained on synthetic photos).
	@$(call model_build,mobilenet,$(MODELS_DIR)/mobilenet)
	@$(call model_build,vgg19,$(MODELS_DIR)/vgg19)

.PHONY: model-info
model-info: setup ## Show the default model's metadata and serving signature.
	@$(DR) model info $(MODEL_DIR)
