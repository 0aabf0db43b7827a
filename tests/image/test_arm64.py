"""The arm64 images, built from the same Dockerfile under QEMU, run and agree with amd64; both publish as one
multi-arch index.

Every time measured here is QEMU emulation, not Graviton performance. The full (TensorFlow) arm64 image is
slow to build and start under emulation: its test is marked ``arm64_full`` (`make image-test-arm64-full`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import numpy as np
import pytest

from dr_image import multiarch
from dr_image.containers import ROOT, USER, Container, docker
from serving.launcher import free_port
from serving.zoo.synthetic import encode_image, make_fundus_image
from tests.image.conftest import process_status

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: Largest |Δp| allowed between the arm64 and amd64 lite images on one photo. LiteRT's XNNPACK kernels differ
#: by arch (NEON vs AVX fp32 accumulation order); measured max over PHOTOS: see REPORT (README, image table).
TOLERANCE = 1e-4
#: Synthetic photos, one of every grade (each costs seconds under emulation).
PHOTOS = [(grade, 3 + grade) for grade in range(5)]
#: Figures of the emulated runs, read by `make image-test-arm64` and the README table.
REPORT = ROOT / "build" / "reports" / "arm64-emulation.json"


def _record(key: str, value: object) -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    report = json.loads(REPORT.read_text()) if REPORT.is_file() else {}
    report["note"] = "QEMU emulation, not Graviton performance"
    report[key] = value
    REPORT.write_text(json.dumps(report, indent=2) + "\n")


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    """The synthetic photos both arches grade."""
    return [encode_image(make_fundus_image(grade, size=512, seed=seed)) for grade, seed in PHOTOS]


def _probabilities(container: Container, photos: list[bytes]) -> np.ndarray:
    rows = []
    for photo in photos:
        answer = container.predict(photo, timeout=120)
        assert answer.status_code == 200, answer.text
        rows.append(answer.json()["predictions"][0]["probabilities"])
    return np.array(rows)


@pytest.fixture(scope="module")
def arm64_lite(arm64_lite_image: str, served_model_dir: Path, photos: list[bytes]) -> Iterator[Container]:
    """The arm64 lite image run as the chart runs it; DR_ARCH unset, so the server reports its own arch."""
    env = {"DR_POOL": "arm64", "DR_ARCH": "", "DR_INSTANCE_TYPE": "m7g.xlarge"}
    container = Container(arm64_lite_image, "lite", "arm64", model_mount=served_model_dir, env=env)
    with container:
        seconds = container.first_prediction(photos[0], timeout=600)
        _record("lite_start_to_first_prediction_s", round(seconds, 2))
        yield container


def test_arm64_images_carry_arm64_in_their_config(images_module: ModuleType, arm64_lite_image: str) -> None:
    assert images_module.image_platform(arm64_lite_image) == "linux/arm64"
    assert images_module.image_platform(images_module.base_tag("arm64")) == "linux/arm64"


def test_arm64_lite_runs_read_only_as_10001_and_reports_aarch64(arm64_lite: Container) -> None:
    machine = docker("exec", arm64_lite.name, "python", "-c", "import platform; print(platform.machine())")
    assert machine.stdout.strip() == "aarch64"
    assert set(process_status(arm64_lite)["Uid"].split()) == {USER.split(":")[0]}
    write = docker("exec", arm64_lite.name, "python", "-c", "open('/opt/probe', 'w')", check=False)
    assert "Read-only file system" in write.stderr
    metrics = httpx.get(f"{arm64_lite.url}/metrics", timeout=30).text
    info = next(line for line in metrics.splitlines() if line.startswith("dr_model_info{"))
    assert 'arch="arm64"' in info and 'backend="litert"' in info


def test_arm64_lite_agrees_with_amd64_lite(
    arm64_lite: Container, built_images: dict[str, str], served_model_dir: Path, photos: list[bytes]
) -> None:
    arm = _probabilities(arm64_lite, photos)
    with Container(image=built_images["lite"], flavour="lite", model_mount=served_model_dir) as amd64:
        amd64.wait_ready()
        amd = _probabilities(amd64, photos)
    diff = float(np.abs(arm - amd).max())
    _record("lite_max_abs_diff_vs_amd64", diff)
    _record("lite_photos", len(photos))
    assert diff <= TOLERANCE, f"arm64 vs amd64 lite: max |Δp| {diff:.3g} > {TOLERANCE}"
    assert (arm.argmax(axis=1) == amd.argmax(axis=1)).all()


def test_lite_publishes_as_one_multi_arch_index(
    built_images: dict[str, str], arm64_lite_image: str, tmp_path: Path
) -> None:
    """Both arches pushed to a local registry under one index; a pull for linux/arm64 gets the arm64 image."""
    registry = f"127.0.0.1:{free_port()}"
    sources = {"amd64": built_images["lite"], "arm64": arm64_lite_image}
    tag = multiarch.images.tag_for("lite").rsplit(":", 1)[1]
    try:
        with multiarch.local_registry(registry, data=tmp_path / "registry"):
            published = multiarch.publish(registry, "lite", sources)
            # The registry's own answer, not the docker client's reading of it.
            answer = httpx.get(
                f"http://{registry}/v2/dr-serving/predictor/manifests/{tag}",
                headers={"Accept": ", ".join(multiarch.LIST_TYPES)},
                timeout=30,
            )
        stopped = not multiarch.registry_answers(registry)
    finally:
        for suffix in ("", "-amd64", "-arm64"):
            docker("image", "rm", f"{registry}/dr-serving/predictor:{tag}{suffix}", check=False)
    assert answer.status_code == 200
    assert answer.headers["content-type"] in multiarch.LIST_TYPES
    listed = {f"{m['platform']['os']}/{m['platform']['architecture']}" for m in answer.json()["manifests"]}
    assert listed == {"linux/amd64", "linux/arm64"}
    assert sorted(published.platforms) == ["linux/amd64", "linux/arm64"]
    assert published.pulled_arm64 == "linux/arm64"
    assert stopped, "the registry started for the test is still answering"


@pytest.mark.arm64_full
def test_arm64_full_loads_the_savedmodel_and_answers(
    arm64_full_image: str, served_model_dir: Path, photos: list[bytes]
) -> None:
    env = {"DR_POOL": "arm64", "DR_ARCH": "", "DR_INSTANCE_TYPE": "m7g.xlarge"}
    with Container(
        image=arm64_full_image, flavour="full", model_mount=served_model_dir, env=env
    ) as container:
        seconds = container.first_prediction(photos[0], timeout=900)
        answer = container.predict(photos[1], timeout=300)
        machine = docker("exec", container.name, "python", "-c", "import platform; print(platform.machine())")
    _record("full_start_to_first_prediction_s", round(seconds, 2))
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-DR-Backend"] == "savedmodel"
    assert machine.stdout.strip() == "aarch64"
