"""Serving fixtures: the real predictor started once per session as a subprocess, and test images."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.launcher import PredictorProcess
from serving.zoo.synthetic import encode_image, make_fundus_image

#: Environment of the session's predictor: node labels to find in headers and metrics, and small limits.
PREDICTOR_ENV = {
    "DR_POOL": "test-pool",
    "DR_INSTANCE_TYPE": "test.large",
    "DR_MODE": "local",
    "DR_NODE_NAME": "test-node",
    "DR_MAX_IMAGE_BYTES": "2000000",
    "DR_MAX_BATCH": "4",
    # Small wire limits so that the tests of timeouts, decoding budgets and concurrency run in seconds.
    "DR_MAX_DECODED_BYTES": str(64 * 1024 * 1024),
    "DR_HEADER_TIMEOUT_SECONDS": "2",
    "DR_BODY_TIMEOUT_SECONDS": "2",
    "DR_MAX_HEADER_BYTES": "16384",
    "DR_MAX_INFLIGHT": "6",
}
#: Flags win over the environment.
PREDICTOR_ARGS = ("--max-image-pixels=20000000",)


#: Set to an image tag to run the route tests against a container of that image instead of this checkout
#: (``DR_TEST_IMAGE=dr-serving/predictor:0.1.0-lite-test pytest tests/serving/test_server.py ...``): the lite
#: image then proves that what it left out is used by no route.
TEST_IMAGE_ENV = "DR_TEST_IMAGE"
#: Read once at import: the autouse ``_clean_environment`` fixture strips ``DR_*`` from every test.
TEST_IMAGE = os.environ.get(TEST_IMAGE_ENV, "")


class ImagePredictor:
    """The session predictor as a container of ``DR_TEST_IMAGE``: the attributes the route tests read."""

    host = "127.0.0.1"

    def __init__(self, container: Any) -> None:
        self.container = container
        self.backend = container.backend

    @property
    def port(self) -> int:
        return int(self.container.port)

    @property
    def url(self) -> str:
        return str(self.container.url)

    def log_text(self) -> str:
        return str(self.container.logs())


def _image_predictor(image: str, mobilenet_dir: Path, workdir: Path) -> Iterator[ImagePredictor]:
    """A container of ``image`` with the session's environment and flags, the model mounted read-only."""
    import shutil
    import stat
    import subprocess

    from dr_image.containers import Container
    from serving.zoo.convert import convert_model

    labels = ["docker", "image", "inspect", "-f", '{{index .Config.Labels "io.dr-serving.flavour"}}', image]
    flavour = subprocess.run(labels, capture_output=True, text=True, check=True).stdout.strip()
    model = workdir / "mobilenet"
    shutil.copytree(mobilenet_dir, model, ignore=shutil.ignore_patterns("model.tflite*", "model.int8*"))
    if flavour == "lite":
        convert_model(model, samples=4)
    for path in [workdir, model, *model.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0))
    container = Container(
        image=image,
        flavour=flavour,
        model_mount=model,
        env=dict(PREDICTOR_ENV),
        profile={"memory": "2g", "cpus": "2", "name": "2Gi"},
        extra_args=PREDICTOR_ARGS,
    )
    with container:
        container.wait_ready(timeout=240)
        yield ImagePredictor(container)


#: This checkout: a second predictor runs its code, not the installed copy's (worktrees share one venv).
CHECKOUT = Path(__file__).resolve().parents[2]


@contextmanager
def second_predictor(
    model_dir: Path, workdir: Path, env: dict[str, str], *, model_name: str = "mobilenet"
) -> Iterator[httpx.Client]:
    """Another predictor on ``model_dir`` with ``env`` and this checkout's code; an HTTP client for it."""
    path = os.pathsep.join(filter(None, (str(CHECKOUT), os.environ.get("PYTHONPATH"))))
    process = PredictorProcess(
        model_dir, model_name=model_name, env={**env, "PYTHONPATH": path}, log_path=workdir / "predictor.log"
    )
    with process, httpx.Client(base_url=process.url, timeout=60.0, trust_env=False) as http:
        yield http


@pytest.fixture(scope="session")
def served_backend(predictor: Any) -> str:
    """The backend the session predictor serves with (``savedmodel`` here, the image's with DR_TEST_IMAGE)."""
    return str(getattr(predictor, "backend", "savedmodel"))


@pytest.fixture(scope="session")
def predictor(mobilenet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PredictorProcess]:
    """``dr-serving serve`` on the synthetic-trained MobileNet, 127.0.0.1, a free port; stopped at the end."""
    if TEST_IMAGE:
        yield from _image_predictor(TEST_IMAGE, mobilenet_dir, tmp_path_factory.mktemp("image-predictor"))  # type: ignore[misc]
        return
    log_path = tmp_path_factory.mktemp("predictor") / "predictor.log"
    process = PredictorProcess(
        mobilenet_dir, model_name="mobilenet", env=PREDICTOR_ENV, extra_args=PREDICTOR_ARGS, log_path=log_path
    )
    process.start()
    try:
        process.wait_ready(timeout=240)
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def client(predictor: PredictorProcess) -> Iterator[httpx.Client]:
    """An HTTP client for the session's predictor (no proxies from the environment)."""
    with httpx.Client(base_url=predictor.url, timeout=60.0, trust_env=False) as http:
        yield http


def sample_value(client: httpx.Client, name: str, labels: dict[str, str]) -> float:
    """The value of sample ``name`` with exactly ``labels`` on the predictor's ``/metrics`` (0 if absent)."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


@pytest.fixture(scope="session")
def rejections(client: httpx.Client) -> Callable[[str], float]:
    """``rejections(reason)``: the session predictor's ``dr_rejected_requests_total`` for that reason, now."""

    def read(reason: str) -> float:
        return sample_value(client, "dr_rejected_requests_total", {"model": "mobilenet", "reason": reason})

    return read


@pytest.fixture(scope="session")
def fundus_jpegs() -> list[bytes]:
    """Five 224 px synthetic fundus photos as JPEG, grades 0–4."""
    return [encode_image(make_fundus_image(grade, size=224, seed=grade), "JPEG") for grade in range(5)]


@pytest.fixture(scope="session")
def fundus_png() -> bytes:
    """A 300 px synthetic fundus photo (grade 3) as PNG."""
    return encode_image(make_fundus_image(3, size=300, seed=11), "PNG")


#: Small figures for the int8 fixture: bounded time, the guard still graded on held-out photos.
INT8_CALIBRATION_SAMPLES = 16
INT8_CHECK_SAMPLES = 40


@pytest.fixture(scope="session")
def mobilenet_int8_dir(mobilenet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the MobileNet fixture with ``model.tflite`` and the guarded ``model.int8.tflite``."""
    import shutil

    from serving.metadata import ModelMetadata
    from serving.zoo.convert import convert_model
    from serving.zoo.quantize import check_seed, quantize_int8, synthetic_photos

    target = tmp_path_factory.mktemp("int8") / "mobilenet"
    shutil.copytree(mobilenet_dir, target, ignore=shutil.ignore_patterns("model.tflite*", "model.int8*"))
    convert_model(target, samples=4)
    metadata = ModelMetadata.load(target)
    assert metadata is not None
    quantize_int8(
        target,
        calibration=synthetic_photos(metadata, samples=INT8_CALIBRATION_SAMPLES, seed=0),
        calibration_label=f"{INT8_CALIBRATION_SAMPLES} synthetic photos",
        check=synthetic_photos(metadata, samples=INT8_CHECK_SAMPLES, seed=check_seed(0)),
        check_label=f"{INT8_CHECK_SAMPLES} held-out synthetic photos",
    )
    return target
