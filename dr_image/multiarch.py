"""Publish a multi-arch predictor image without buildx: one image per arch, then an index naming both.

    python -m dr_image.multiarch --registry 127.0.0.1:5000 [--flavour lite] [--flavour full]

For each flavour, the locally built ``dr-serving/predictor:<version>-<flavour>`` (amd64) and ``…-arm64`` are
tagged ``REGISTRY/dr-serving/predictor:<version>-<flavour>-<arch>`` and pushed, then ``docker manifest
create/push`` publishes ``REGISTRY/dr-serving/predictor:<version>-<flavour>`` as a manifest list naming both.
The result is then proved: the list names ``linux/amd64`` and ``linux/arm64``, and ``docker pull --platform
linux/arm64`` of the plain tag gives an image whose config says ``arm64``.

A registry on 127.0.0.1 or localhost that does not answer is started for the run (Debian's
``docker-registry``, bound to 127.0.0.1, data in ``build/registry``) and stopped afterwards. Any other
registry (ECR, GHCR) must be logged in to first (``docker login``); the same commands push there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from dr_image import images

REGISTRY_DIR = images.ROOT / "build" / "registry"
LOCAL_HOSTS = ("127.0.0.1", "localhost")
LIST_TYPES = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)


def is_local(registry: str) -> bool:
    """Whether ``registry`` (``host:port``) is on this machine, so plain HTTP and a started registry apply."""
    return registry.rsplit(":", 1)[0] in LOCAL_HOSTS


def registry_answers(registry: str) -> bool:
    """Whether a registry API answers at ``http://registry/v2/``."""
    try:
        return httpx.get(f"http://{registry}/v2/", timeout=2).status_code in (200, 401)
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def local_registry(registry: str, *, data: Path | None = None, timeout: float = 30.0) -> Iterator[str]:
    """Run Debian's ``docker-registry`` on ``registry`` (127.0.0.1:PORT) for the block, unless one answers.

    Blobs go to ``data`` (default ``build/registry/data``); the process is stopped when the block ends.
    """
    if registry_answers(registry):
        yield "already running"
        return
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    if not Path(binary).exists():
        raise images.ImageError("docker-registry is missing; run: make system-deps")
    port = registry.rsplit(":", 1)[1]
    data = data or REGISTRY_DIR / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = data.parent / f"registry-{port}.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: '{data}'}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
    )
    log_path = data.parent / f"registry-{port}.log"
    log = log_path.open("w")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not registry_answers(registry):
            if process.poll() is not None or time.monotonic() > deadline:
                raise images.ImageError(f"docker-registry did not answer on {registry}; see {log_path}")
            time.sleep(0.2)
        yield f"docker-registry pid {process.pid}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _docker(*args: str, timeout: float = 1800) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise images.ImageError(f"docker {' '.join(args[:3])} failed: {result.stderr.strip()[-1500:]}")
    return result.stdout


@dataclass
class Published:
    """One published multi-arch tag and what proves it."""

    index: str
    platforms: list[str]
    pulled_arm64: str

    def summary(self) -> str:
        """One line for the terminal."""
        return (
            f">> {self.index}: index of {', '.join(self.platforms)}; "
            f"docker pull --platform linux/arm64 gives {self.pulled_arm64}"
        )


def publish(registry: str, flavour: str, sources: dict[str, str]) -> Published:
    """Push ``sources`` (``{arch: local tag}``) and an index of them as ``REGISTRY/…:<version>-<flavour>``."""
    insecure = ["--insecure"] if is_local(registry) else []
    index = f"{registry}/{images.tag_for(flavour)}"
    refs = []
    for arch, local in sources.items():
        if images.image_platform(local) != f"linux/{arch}":
            raise images.ImageError(f"{local} is {images.image_platform(local)}, not linux/{arch}.")
        ref = f"{index}-{arch}"
        _docker("tag", local, ref)
        _docker("push", ref)
        refs.append(ref)
    subprocess.run(["docker", "manifest", "rm", index], capture_output=True)
    _docker("manifest", "create", *insecure, index, *refs)
    _docker("manifest", "push", *insecure, "--purge", index)
    return Published(
        index=index, platforms=index_platforms(index), pulled_arm64=pull_platform(index, "arm64")
    )


def index_platforms(index: str) -> list[str]:
    """``os/arch`` of every manifest the registry's list at ``index`` names (``docker manifest inspect``)."""
    insecure = ["--insecure"] if is_local(index.split("/", 1)[0]) else []
    listing = json.loads(_docker("manifest", "inspect", *insecure, index))
    if listing.get("mediaType") not in LIST_TYPES:
        raise images.ImageError(f"{index} is a single image ({listing.get('mediaType')}), not an index.")
    return [f"{m['platform']['os']}/{m['platform']['architecture']}" for m in listing["manifests"]]


def pull_platform(index: str, arch: str) -> str:
    """``docker pull --platform linux/<arch>`` the index afresh; returns the pulled image's ``os/arch``."""
    subprocess.run(["docker", "image", "rm", index], capture_output=True)
    _docker("pull", "--quiet", "--platform", f"linux/{arch}", index)
    return images.image_platform(index)


def main(argv: list[str] | None = None) -> int:
    """Publish the flavours' indexes to ``--registry``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--registry", required=True, help="host:port[/path] to push to (127.0.0.1:5000, ECR, …)"
    )
    parser.add_argument(
        "--flavour", choices=images.PREDICTOR_FLAVOURS, action="append", help="flavour(s); default both"
    )
    args = parser.parse_args(argv)
    host = args.registry.split("/", 1)[0]
    try:
        images.start_engine()
        sources = {}
        for flavour in args.flavour or images.PREDICTOR_FLAVOURS:
            sources[flavour] = {arch: images.arch_tag(flavour, arch) for arch in images.ARCHES}
            for tag in sources[flavour].values():
                if not images.image_exists(tag):
                    raise images.ImageError(f"{tag} is missing; run: make image image-arm64")
        registry = local_registry(host) if is_local(host) else contextlib.nullcontext("remote")
        with registry as how:
            print(f">> registry {host}: {how}")
            for flavour, arches in sources.items():
                print(publish(args.registry, flavour, arches).summary())
    except images.ImageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
