"""Fixtures of the image tests: a running Docker engine, every flavour built offline, a converted model.

The engine is started if needed; if it cannot start, every image test FAILS with the reason (never skips).
Builds reuse the engine's layer cache, so a rerun with unchanged inputs takes seconds.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from dr_image import images
from dr_image.containers import Container, docker

#: The glibc memory settings the image sets (Dockerfile ENV; README, Memory is bounded by design).
MALLOC = {"MALLOC_MMAP_THRESHOLD_": "4194304", "MALLOC_TRIM_THRESHOLD_": "131072"}


def process_status(container: Container) -> dict[str, str]:
    """``/proc/1/status`` of the server process in a running ``container``: field → value (e.g. ``VmRSS``)."""
    status = docker("exec", container.name, "cat", "/proc/1/status").stdout
    return {key: value.strip() for key, _, value in (line.partition(":") for line in status.splitlines())}


def python_in(image: str, code: str) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a throwaway container of ``image`` (entrypoint replaced); the finished run."""
    return docker("run", "--rm", "--entrypoint", "python", image, "-c", code)


@pytest.fixture(scope="session")
def images_module() -> ModuleType:
    """``dr_image.images``, the build steps shared with ``make image``."""
    return images


@pytest.fixture(scope="session")
def docker_engine(images_module: ModuleType) -> str:
    """Start the Docker engine unless one answers; fail every image test with the reason if it cannot."""
    try:
        return images_module.start_engine()
    except images_module.ImageError as exc:
        pytest.fail(f"The image tests need a Docker engine and none could be started: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def offline_inputs(images_module: ModuleType, docker_engine: str) -> Path:
    """The local debootstrap base image and the host wheelhouse (built once, reused afterwards)."""
    try:
        images_module.ensure_base_image()
        return images_module.ensure_wheelhouse()
    except images_module.ImageError as exc:
        pytest.fail(f"Preparing the offline image build failed: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def served_model_dir(mobilenet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the MobileNet fixture with ``model.tflite`` added, readable by the container's uid 10001."""
    from serving.zoo.convert import convert_model

    target = tmp_path_factory.mktemp("served") / "mobilenet"
    shutil.copytree(mobilenet_dir, target, ignore=shutil.ignore_patterns("model.tflite*"))
    convert_model(target)
    for path in [target.parent, target, *target.rglob("*")]:
        extra = stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0)
        path.chmod(path.stat().st_mode | extra)
    return target


def _build(what: str, flavour: str, **options: object) -> str:
    """``dr_image.images.build``; a failed build fails the test with one sentence naming ``what``."""
    try:
        return images.build(flavour, **options)
    except images.ImageError as exc:
        pytest.fail(f"Building {what} failed: {exc}", pytrace=False)


def _build_host(what: str, flavour: str, wheelhouse: Path, *, suffix: str = "test", **options: object) -> str:
    """``flavour`` for the host's arch on the offline base, tagged ``<version>-<flavour>-<suffix>``."""
    tag = images.tag_for(flavour, suffix=suffix)
    return _build(what, flavour, tag=tag, base=images.LOCAL_BASE, wheelhouse=wheelhouse, **options)


@pytest.fixture(scope="session")
def lite_image(offline_inputs: Path) -> str:
    """The lite flavour alone, tagged as ``built_images`` tags it (for tests that need no TensorFlow)."""
    return _build_host("the lite image", "lite", offline_inputs)


@pytest.fixture(scope="session")
def built_images(lite_image: str, offline_inputs: Path) -> dict[str, str]:
    """Both flavours built from the Dockerfile on the offline base, no model baked: ``{flavour: tag}``.

    Tagged ``<version>-<flavour>-test`` so the tests never replace the images ``make image`` built.
    """
    return {"lite": lite_image, "full": _build_host("the full image", "full", offline_inputs)}


@pytest.fixture(scope="session")
def lab_image(offline_inputs: Path) -> str:
    """The lab flavour (the Locust load lab the chart's load-test pods run), tagged ``<version>-lab-test``."""
    return _build_host("the lab image", "lab", offline_inputs)


@pytest.fixture(scope="session")
def baked_lite_image(offline_inputs: Path, served_model_dir: Path) -> str:
    """The lite flavour with the converted MobileNet baked in at /opt/dr-serving/model."""
    return _build_host(
        "the model-baked lite image", "lite", offline_inputs, suffix="test-baked", model=served_model_dir
    )


@pytest.fixture(scope="module", params=["lite", "full"])
def running(
    request: pytest.FixtureRequest, built_images: dict[str, str], served_model_dir: Path
) -> Iterator[Container]:
    """One ready container per flavour, the model mounted read-only at /mnt/models (as KServe does)."""
    flavour = request.param
    container = Container(image=built_images[flavour], flavour=flavour, model_mount=served_model_dir)
    with container:
        container.wait_ready()
        yield container


@pytest.fixture(scope="session")
def arm64_inputs(images_module: ModuleType, docker_engine: str) -> Path:
    """The arm64 debootstrap base (second stage under QEMU) and the aarch64 wheelhouse (returned)."""
    if images_module.emulated("arm64") and not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").is_file():
        pytest.fail(
            "arm64 binaries cannot run on this host: QEMU is not registered; run: make qemu", pytrace=False
        )
    try:
        images_module.ensure_base_image(arch="arm64")
        return images_module.ensure_wheelhouse("arm64")
    except images_module.ImageError as exc:
        pytest.fail(f"Preparing the arm64 image build failed: {exc}", pytrace=False)


def _build_arm64(wheelhouse: Path, flavour: str) -> str:
    tag = images.arch_tag(flavour, "arm64", suffix="test")
    base = images.base_tag("arm64")
    return _build(
        f"the arm64 {flavour} image", flavour, tag=tag, base=base, wheelhouse=wheelhouse, arch="arm64"
    )


@pytest.fixture(scope="session")
def arm64_lite_image(arm64_inputs: Path) -> str:
    """The lite flavour built for linux/arm64 from the same Dockerfile (under QEMU on an amd64 host)."""
    return _build_arm64(arm64_inputs, "lite")


@pytest.fixture(scope="session")
def arm64_full_image(arm64_inputs: Path) -> str:
    """The full (TensorFlow) flavour built for linux/arm64 (slow under QEMU: `make image-test-arm64-full`)."""
    return _build_arm64(arm64_inputs, "full")
