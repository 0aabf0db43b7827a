"""Container cold start (``dr_image.coldstart``) and layer sizes (``dr_image.layers``) of the built images."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dr_image.coldstart import PHASES, knative_estimate, measure_once, phases
from dr_image.layers import layer_sizes
from serving.coldstart import import_profile
from serving.zoo.synthetic import encode_image, make_fundus_image

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return encode_image(make_fundus_image(2, size=256, seed=3), "JPEG")


def test_a_container_cold_start_has_ordered_marks_and_a_real_import_profile(
    built_images: dict[str, str], served_model_dir: Path, jpeg: bytes
) -> None:
    """docker run ≤ process start ≤ imports ≤ model ≤ ready ≤ answer, read from the server's own report."""
    once = measure_once(
        built_images["lite"], "lite", served_model_dir, jpeg, cpus="1", env={"PYTHONPROFILEIMPORTTIME": "1"}
    )
    marks = once["marks"]
    order = ["run", "process_start", "imports_done", "model_loaded", "ready", "answered"]
    # /proc's start time has a 10 ms tick.
    assert marks["run"] - 0.02 <= marks["process_start"]
    assert [marks[name] for name in order[1:]] == sorted(marks[name] for name in order[1:])
    seconds = phases(marks)
    assert set(seconds) == {name for name, _, _ in PHASES}
    assert seconds["total"] == pytest.approx(sum(v for k, v in seconds.items() if k != "total"))
    cpu = once["cpu"]
    assert 0 < cpu["imports"] < cpu["total"] and cpu["model_load"] >= 0 and cpu["rest"] >= 0
    assert cpu["total"] == pytest.approx(cpu["imports"] + cpu["model_load"] + cpu["rest"])
    profile = dict(import_profile(once["log"]))
    assert {"kserve", "numpy", "fastapi"} <= set(profile)
    assert "kubernetes" not in profile and "tensorflow" not in profile


def test_layers_add_up_to_the_image_and_compress(built_images: dict[str, str]) -> None:
    """Per-layer tar sizes add up to the engine's own image size; each gzip is smaller than its tar."""
    tag = built_images["lite"]
    layers = layer_sizes(tag)
    inspect = ["docker", "image", "inspect", "-f", "{{.Size}}", tag]
    size = int(subprocess.run(inspect, capture_output=True, text=True, check=True).stdout)
    total = sum(layer.size for layer in layers)
    # A layer tar adds 512-byte headers per file to the files' bytes: within 5 % of the engine's figure.
    assert size * 0.95 <= total <= size * 1.05
    assert all(0 < layer.compressed < layer.size for layer in layers)
    assert any(layer.step.endswith("/opt/venv") for layer in layers)


def test_knative_estimate_is_the_pull_plus_the_measured_start() -> None:
    assert knative_estimate(1.2, 96_000_000, bandwidth_mb_s=100) == pytest.approx(2.16)
