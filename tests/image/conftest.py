"""Fixtures of the image tests: a running Docker engine, every flavour built offline, a converted model.

The engine is started if needed; if it cannot start, every image test FAILS with the reason (never skips).
Builds reuse the engine's layer cache, so a rerun with unchanged inputs takes seconds.
"""

from __future__ import annotations

import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from dr_image import images
from dr_image.containers import Container


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


@pytest.fixture(scope="session")
def built_images(images_module: ModuleType, offline_inputs: Path) -> dict[str, str]:
    """Both flavours built from the Dockerfile on the offline base, no model baked: ``{flavour: tag}``.

    Tagged ``<version>-<flavour>-test`` so the tests never replace the images ``make image`` built.
    """
    try:
        return {
            flavour: images_module.build(
                flavour,
                tag=images_module.tag_for(flavour, suffix="test"),
                base=images_module.LOCAL_BASE,
                wheelhouse=offline_inputs,
            )
            for flavour in ("lite", "full")
        }
    except images_module.ImageError as exc:
        pytest.fail(f"Building the predictor image failed: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def lite_image(images_module: ModuleType, offline_inputs: Path) -> str:
    """The lite flavour alone, tagged as ``built_images`` tags it (for tests that need no TensorFlow)."""
    try:
        return images_module.build(
            "lite",
            tag=images_module.tag_for("lite", suffix="test"),
            base=images_module.LOCAL_BASE,
            wheelhouse=offline_inputs,
        )
    except images_module.ImageError as exc:
        pytest.fail(f"Building the lite image failed: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def lab_image(images_module: ModuleType, offline_inputs: Path) -> str:
    """The lab flavour (the Locust load lab the chart's load-test pods run), tagged ``<version>-lab-test``."""
    try:
        return images_module.build(
            "lab",
            tag=images_module.tag_for("lab", suffix="test"),
            base=images_module.LOCAL_BASE,
            wheelhouse=offline_inputs,
        )
    except images_module.ImageError as exc:
        pytest.fail(f"Building the lab image failed: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def baked_lite_image(images_module: ModuleType, offline_inputs: Path, served_model_dir: Path) -> str:
    """The lite flavour with the converted MobileNet baked in at /opt/dr-serving/model."""
    try:
        return images_module.build(
            "lite",
            tag=images_module.tag_for("lite", suffix="test-baked"),
            base=images_module.LOCAL_BASE,
            wheelhouse=offline_inputs,
            model=served_model_dir,
        )
    except images_module.ImageError as exc:
        pytest.fail(f"Building the model-baked lite image failed: {exc}", pytrace=False)


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


def _build_arm64(images_module: ModuleType, wheelhouse: Path, flavour: str) -> str:
    try:
        return images_module.build(
            flavour,
            tag=images_module.arch_tag(flavour, "arm64", suffix="test"),
            base=images_module.base_tag("arm64"),
            wheelhouse=wheelhouse,
            arch="arm64",
        )
    except images_module.ImageError as exc:
        pytest.fail(f"Building the arm64 {flavour} image failed: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def arm64_lite_image(images_module: ModuleType, arm64_inputs: Path) -> str:
    """The lite flavour built for linux/arm64 from the same Dockerfile (under QEMU on an amd64 host)."""
    return _build_arm64(images_module, arm64_inputs, "lite")


@pytest.fixture(scope="session")
def arm64_full_image(images_module: ModuleType, arm64_inputs: Path) -> str:
    """The full (TensorFlow) flavour built for linux/arm64 (slow under QEMU: `make image-test-arm64-full`)."""
    return _build_arm64(images_module, arm64_inputs, "full")
