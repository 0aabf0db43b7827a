#!/usr/bin/env bash
# Build the offline base image: a Debian bookworm minbase root with python3 + python3-venv, made a Docker image.
# Usage: docker/base-image.sh [IMAGE] [ARCH]   (defaults: dr-serving/base:bookworm, the host's dpkg architecture)
# Needs root, debootstrap and a running Docker engine; reaches only the Debian mirror (DEBIAN_MIRROR).
# A foreign ARCH (arm64 on an amd64 host) runs debootstrap's second stage under QEMU: run `make qemu` first.
# The root is added to an empty image by `docker build --platform linux/ARCH` (FROM scratch), because
# `docker import --platform` of Docker 20.10 leaves the image's architecture at the host's.
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
if [ "$ARCH" != "$(dpkg --print-architecture)" ] && [ ! -f "/proc/sys/fs/binfmt_misc/qemu-${ARCH/arm64/aarch64}" ]; then
  echo "Error: $ARCH binaries cannot run on this $(dpkg --print-architecture) host; run: make qemu" >&2; exit 1
fi

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

echo ">> docker build --platform linux/$ARCH (FROM scratch) -> $IMAGE"
CONTEXT="$(mktemp -d "${TMPDIR:-/tmp}/dr-base-context.XXXXXX")"
trap 'rm -rf "$ROOT" "$CONTEXT"' EXIT
tar --numeric-owner -C "$ROOT" -cf "$CONTEXT/rootfs.tar" .
rm -rf "$ROOT"
cat >"$CONTEXT/Dockerfile" <<'DOCKERFILE'
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
CMD ["python3"]
DOCKERFILE
docker build --quiet --platform "linux/$ARCH" --tag "$IMAGE" "$CONTEXT" >/dev/null
docker image inspect -f "{{.Id}} {{.Os}}/{{.Architecture}} {{.Size}}" "$IMAGE"
