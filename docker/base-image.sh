#!/usr/bin/env bash
# Build the offline base image: a Debian bookworm minbase root with python3 + python3-venv, imported into Docker.
# Usage: docker/base-image.sh [IMAGE] [ARCH]   (defaults: dr-serving/base:bookworm, the host's dpkg architecture)
# Needs root, debootstrap and a running Docker engine; reaches only the Debian mirror (DEBIAN_MIRROR).
set -euo pipefail

IMAGE="${1:-dr-serving/base:bookworm}"
ARCH="${2:-$(dpkg --print-architecture)}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE="${DEBIAN_SUITE:-bookworm}"
PACKAGES="python3,python3-venv,ca-certificates,tzdata"

if docker image inspect "$IMAGE" >/dev/null 2>&1 && [ -z "${FORCE:-}" ]; then
  echo ">> base image $IMAGE exists (FORCE=1 to rebuild)"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "Error: debootstrap needs root; run as root or use IMAGE_BASE=python:3.11-slim-bookworm." >&2; exit 1; }
command -v debootstrap >/dev/null || PATH="$PATH:/usr/sbin:/sbin"
command -v debootstrap >/dev/null || { echo "Error: debootstrap is missing; run: make system-deps" >&2; exit 1; }

ROOT="$(mktemp -d "${TMPDIR:-/tmp}/dr-base.XXXXXX")"
trap 'rm -rf "$ROOT"' EXIT
echo ">> debootstrap --variant=minbase $SUITE ($ARCH) with $PACKAGES"
debootstrap --variant=minbase --arch="$ARCH" --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 \
  || { tail -20 "$ROOT.log" >&2; echo "Error: debootstrap failed; full log in $ROOT.log" >&2; exit 1; }
rm -f "$ROOT.log"

# Drop what a container never uses: package caches and lists, documentation, manuals, locales.
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/lib/apt/lists/* \
  "$ROOT"/var/log/* "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
  "$ROOT"/usr/share/locale/* "$ROOT"/usr/share/lintian "$ROOT"/tmp/* "$ROOT"/var/tmp/*
# `python` as well as `python3`, like the official image.
ln -sf python3 "$ROOT/usr/bin/python"

echo ">> docker import -> $IMAGE"
tar --numeric-owner -C "$ROOT" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --platform "linux/$ARCH" - "$IMAGE" >/dev/null
docker image inspect -f "{{.Id}} {{.Size}}" "$IMAGE"
