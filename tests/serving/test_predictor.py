"""``DRModel`` in process: load, the three steps through KServe's ``Model.__call__``, readiness, errors."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from serving.errors import ModelLoadError, NotReady
from serving.limits import Limits
from serving.metadata import METADATA_FILENAME
from serving.metrics import NodeLabels
from serving.predictor import ARRIVAL_HEADER, DRModel
from serving.zoo.synthetic import encode_image, make_fundus_image

NODE = NodeLabels(pool="p1", arch="arm64", instance_type="c7g.xlarge", mode="knative", node="n1")


def test_not_ready_before_load(foreign_savedmodel_dir: Path) -> None:
    model = DRModel("foreign", model_dir=foreign_savedmodel_dir, node=NODE, limits=Limits())
    assert model.ready is False
    assert model.get_input_types() == [] and model.get_output_types() == []
    with pytest.raises(NotReady, match="still loading"):
        asyncio.run(model.preprocess(b"", {"content-type": "image/jpeg"}))


def test_299_model_serves_without_metadata(savedmodel_299_dir: Path) -> None:
    model = DRModel("published-299", model_dir=savedmodel_299_dir, node=NODE, limits=Limits(max_batch=2))
    assert model.load() is True and model.ready is True
    assert model.metadata is not None and model.metadata.input_size == (299, 299)
    assert model.load_seconds is not None and model.load_seconds > 0
    assert model.get_input_types()[1]["shape"] == [-1, 299, 299, 3]
    image = encode_image(make_fundus_image(2, size=400, seed=5), "JPEG")
    answer, headers = asyncio.run(model(image, headers={"content-type": "image/jpeg"}))
    assert answer["model"] == "published-299" and answer["batch_size"] == 1
    assert len(answer["predictions"][0]["probabilities"]) == 5
    assert headers["X-DR-Model"] == "published-299"
    assert headers["X-DR-Backend"] == "savedmodel" and headers["X-DR-Precision"] == "fp32"
    assert (headers["X-DR-Pool"], headers["X-DR-Arch"], headers["X-DR-Instance-Type"]) == (
        "p1",
        "arm64",
        "c7g.xlarge",
    )
    assert (headers["X-DR-Mode"], headers["X-DR-Node"]) == ("knative", "n1")
    assert float(headers["X-DR-Prediction-Ms"]) > 0
    model.stop()
    assert model.ready is False


def test_server_time_counts_from_the_arrival_header(foreign_savedmodel_dir: Path) -> None:
    import time

    model = DRModel("foreign", model_dir=foreign_savedmodel_dir, node=NODE, limits=Limits())
    model.load()
    image = encode_image(make_fundus_image(1, size=224, seed=1), "PNG")
    arrived = time.perf_counter_ns() - 2_000_000_000  # pretend the request arrived two seconds ago
    answer, _ = asyncio.run(model(image, headers={"content-type": "image/png", ARRIVAL_HEADER: str(arrived)}))
    assert answer["server_ms"] >= 2000
    model.stop()


def test_invalid_metadata_fails_the_load(foreign_savedmodel_dir: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(foreign_savedmodel_dir, model_dir)
    (model_dir / METADATA_FILENAME).write_text('{"scaling": "tf"}')
    with pytest.raises(ModelLoadError, match="'scaling' must be one of"):
        DRModel("m", model_dir=model_dir, limits=Limits()).load()


def test_metadata_class_count_must_match_the_model(foreign_savedmodel_dir: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(foreign_savedmodel_dir, model_dir)
    (model_dir / METADATA_FILENAME).write_text(
        '{"class_names": ["healthy", "referable"], "referable_min_grade": 1}'
    )
    with pytest.raises(ModelLoadError) as info:
        DRModel("m", model_dir=model_dir, limits=Limits()).load()
    assert "to have 2 classes as dr_model.json says, got 5" in str(info.value)


class _SleepingBackend:
    """A real backend whose every call also sleeps a known time (to pin down the phase definitions)."""

    def __init__(self, backend: object, seconds: float) -> None:
        self._backend, self.seconds = backend, seconds
        self.name = "sleeping"
        self.precision = backend.precision  # type: ignore[attr-defined]
        self.num_threads = backend.num_threads  # type: ignore[attr-defined]

    def predict(self, batch: object) -> object:
        time.sleep(self.seconds)
        return self._backend.predict(batch)  # type: ignore[attr-defined]


def test_the_time_split_puts_queueing_in_queue_and_only_the_backend_call_in_prediction(
    foreign_savedmodel_dir: Path,
) -> None:
    """Three requests at once on the one inference thread: each call takes ≥ 0.3 s, the k-th waits k calls."""
    # No gradability gate: the bound below assumes the third request decodes within 5 ms of the first call.
    model = DRModel(
        "foreign", model_dir=foreign_savedmodel_dir, node=NODE, limits=Limits(), gradability="off"
    )
    model.load()
    sleep = 0.3
    model.backend = _SleepingBackend(model.backend, sleep)  # type: ignore[assignment]
    image = encode_image(make_fundus_image(1, size=224, seed=1), "PNG")

    async def three() -> list[dict[str, str]]:
        answers = await asyncio.gather(
            *(model(image, headers={"content-type": "image/png"}) for _ in range(3))
        )
        return [headers for _, headers in answers]

    headers = asyncio.run(three())
    model.stop()
    prediction = [float(h["X-DR-Prediction-Ms"]) for h in headers]
    queue = sorted(float(h["X-DR-Queue-Ms"]) for h in headers)
    assert all(sleep * 1000 <= p < sleep * 1000 + 500 for p in prediction), prediction
    assert queue[0] < 100, queue  # the first call waits for nobody
    for k in (1, 2):  # the k-th call waits for the k calls before it, each at least `sleep`
        assert queue[k] >= k * sleep * 1000 - 5, queue
        assert queue[k] < k * (sleep * 1000 + 500), queue
    for h in headers:
        assert float(h["X-DR-Decode-Ms"]) > 0 and float(h["X-DR-Postprocess-Ms"]) > 0
        assert float(h["X-DR-Server-Ms"]) >= float(h["X-DR-Queue-Ms"]) + float(h["X-DR-Prediction-Ms"])


def test_at_most_decode_slots_requests_decode_at_once(
    foreign_savedmodel_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    model = DRModel("foreign", model_dir=foreign_savedmodel_dir, node=NODE, limits=Limits(decode_slots=2))
    model.load()
    decode = model._images_to_tensor
    lock, running, most = threading.Lock(), [0], [0]

    def counted(*args: object) -> object:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        try:
            return decode(*args)  # type: ignore[arg-type]
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(model, "_images_to_tensor", counted)
    image = encode_image(make_fundus_image(1, size=224, seed=1), "PNG")

    async def five() -> None:
        await asyncio.gather(*(model(image, headers={"content-type": "image/png"}) for _ in range(5)))

    asyncio.run(five())
    model.stop()
    assert most[0] == 2
