##@ Model

# The published classifiers, built locally (no downloads): MobileNet and VGG19 trained for minutes on synthetic fundus
# photos. For serving and benchmarking only, NOT for diagnosis. A model already built with the same options is reused;
# add MODEL_FORCE=--force to rebuild.

# Folder holding one sub-folder per model (git-ignored).
MODELS_DIR ?= models
# Architecture of the default model that `make model` builds and the serving targets use (mobilenet or vgg19).
MODEL_ARCH ?= mobilenet
# Model directory of the default model.
MODEL_DIR ?= $(MODELS_DIR)/$(MODEL_ARCH)
# Synthetic photos MobileNet is trained on (0 = random weights); about 2–3 minutes on 2 cores.
MOBILENET_TRAIN_IMAGES ?= 500
# How VGG19 is trained: `full` trains all of it, through a twin with batch norm after every convolution that is
# folded back afterwards (serving.zoo.batch_norm_fold; 800 photos x 4 epochs, about 25-30 minutes on 2 cores; its
# int8 meets the accuracy guard); `head` trains only its dense head on a fixed variance-scaled random backbone
# (240 photos, 5-15 minutes; its int8 misses the guard).
VGG19_TRAINING ?= full
# Synthetic photos VGG19 is trained on (0 = random weights).
VGG19_TRAIN_IMAGES ?= $(if $(filter head,$(VGG19_TRAINING)),240,800)
# Epochs of VGG19's training (head only: on cached features, seconds).
VGG19_EPOCHS ?= $(if $(filter head,$(VGG19_TRAINING)),100,4)
# Training epochs.
MODEL_EPOCHS ?= 3
# Random seed for weights and synthetic photos.
MODEL_SEED ?= 0
# Extra flags for `dr-serving model build`, e.g. --force.
MODEL_FORCE ?=

MODEL_TRAIN_IMAGES = $(if $(filter vgg19,$(1)),$(VGG19_TRAIN_IMAGES),$(MOBILENET_TRAIN_IMAGES))
VGG19_TRAIN_FLAGS = $(if $(filter head,$(VGG19_TRAINING)),--train-head-only )--epochs $(VGG19_EPOCHS)
MODEL_TRAIN_FLAGS = $(if $(filter vgg19,$(1)),$(VGG19_TRAIN_FLAGS),--epochs $(MODEL_EPOCHS))
model_build = $(DR) model build --arch $(1) --out $(2) --train-synthetic $(call MODEL_TRAIN_IMAGES,$(1)) \
	$(call MODEL_TRAIN_FLAGS,$(1)) --seed $(MODEL_SEED) $(MODEL_FORCE)

.PHONY: model
model: setup ## Build the default model (MODEL_ARCH, synthetic-trained MobileNet) into MODEL_DIR; reused if present.
	@$(call model_build,$(MODEL_ARCH),$(MODEL_DIR))

.PHONY: models
models: setup ## Build both models under MODELS_DIR, both trained on synthetic photos (VGG19: VGG19_TRAINING=full|head).
	@$(call model_build,mobilenet,$(MODELS_DIR)/mobilenet)
	@$(call model_build,vgg19,$(MODELS_DIR)/vgg19)

.PHONY: model-info
model-info: setup ## Show the default model's metadata and serving signature.
	@$(DR) model info $(MODEL_DIR)
