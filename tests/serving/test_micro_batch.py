"""``MicroBatcher`` and ``serve --micro-batch``: concurrent calls share backend calls, each gets its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.backends.litert import LiteRTBackend
from serving.metadata import ModelMetadata
from serving.micro_batch import MicroBatcher
from serving.zoo.quantize import synthetic_photos
from tests.serving.conftest import second_predictor

MODEL = "mobilenet"
V1 = f"/v1/models/{MODEL}:predict"


@pytest.fixture(scope="module")
def backend(mobilenet_int8_dir: Path) -> LiteRTBackend:
    """The fp32 LiteRT MobileNet fixture."""
    return LiteRTBackend(mobilenet_int8_dir / "model.tflite", metadata=ModelMetadata.load(mobilenet_int8_dir))


def test_concurrent_callers_share_batches_and_get_their_own_answers(backend: LiteRTBackend) -> None:
    metadata = ModelMetadata.load(backend.model_path.parent)
    assert metadata is not None
    photos = synthetic_photos(metadata, samples=8, seed=5)
    expected = backend.predict(photos)
    batcher = MicroBatcher(backend, max_batch=8, max_wait_s=0.05)
    answers: dict[int, np.ndarray] = {}
    start = threading.Barrier(len(photos))

    def call(index: int) -> None:
        start.wait()
        answers[index] = batcher.predict(photos[index : index + 1])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(photos))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batcher.close()
    assert batcher.images == len(photos)
    assert batcher.batches < len(photos)  # some calls were batched together
    for index, answer in answers.items():
        np.testing.assert_allclose(answer, expected[index : index + 1], atol=1e-5)


def test_a_backend_error_reaches_the_caller(backend: LiteRTBackend) -> None:
    batcher = MicroBatcher(backend, max_wait_s=0)
    with pytest.raises(ValueError, match=r"\[N, 224, 224, 3\]"):
        batcher.predict(np.zeros((1, 32, 32, 3), dtype=np.float32))
    assert batcher.predict(np.zeros((1, 224, 224, 3), dtype=np.float32)).shape == (1, 5)
    batcher.close()


def test_rejects_nonsense(backend: LiteRTBackend) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(backend, max_batch=0)


class _GatedBackend:
    """Answers each image with its mean pixel; a call waits for ``gate``, so callers queue meanwhile."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls: list[int] = []
        self.fail_next = False

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        self.gate.wait(timeout=10)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("backend broke")
        return batch.reshape(len(batch), -1).mean(axis=1, keepdims=True)


def _image(value: float, count: int = 1) -> np.ndarray:
    return np.full((count, 2, 2, 3), value, dtype=np.float32)


def _queued_behind_a_running_call(batcher: MicroBatcher, backend: _GatedBackend, values: list[float]) -> list:
    """Start one call, wait until the backend holds it, queue ``values`` behind it; their futures."""
    first = batcher.submit(_image(-1.0))
    while not backend.calls:
        threading.Event().wait(0.001)
    futures = [batcher.submit(_image(value)) for value in values]
    backend.gate.set()
    assert first.result(timeout=10).call_images == 1
    return futures


def test_callers_waiting_during_a_call_share_the_next_one_and_get_their_own_rows() -> None:
    backend = _GatedBackend()
    seen: list[tuple[int, float]] = []
    batcher = MicroBatcher(
        backend, max_batch=8, on_call=lambda images, seconds: seen.append((images, seconds))
    )
    try:
        futures = _queued_behind_a_running_call(batcher, backend, [1.0, 2.0, 3.0])
        results = [future.result(timeout=10) for future in futures]
    finally:
        batcher.close()
    assert backend.calls == [1, 3]
    assert [float(result.outputs[0, 0]) for result in results] == [1.0, 2.0, 3.0]
    assert {result.call_images for result in results} == {3}
    assert len({(result.started, result.ended) for result in results}) == 1
    assert [images for images, _ in seen] == [1, 3] and all(seconds >= 0 for _, seconds in seen)
    assert (batcher.batches, batcher.images) == (2, 4)


def test_a_call_never_exceeds_max_batch_images() -> None:
    backend = _GatedBackend()
    batcher = MicroBatcher(backend, max_batch=2)
    try:
        futures = _queued_behind_a_running_call(batcher, backend, [1.0, 2.0, 3.0, 4.0, 5.0])
        assert [float(future.result(timeout=10).outputs[0, 0]) for future in futures] == [1, 2, 3, 4, 5]
    finally:
        batcher.close()
    assert backend.calls == [1, 2, 2, 1]


def test_a_backend_error_reaches_every_caller_of_that_call_and_the_next_call_still_runs() -> None:
    backend = _GatedBackend()
    backend.gate.set()
    backend.fail_next = True
    batcher = MicroBatcher(backend, max_batch=8)
    try:
        with pytest.raises(RuntimeError, match="backend broke"):
            batcher.predict(_image(1.0))
        np.testing.assert_array_equal(batcher.predict(_image(4.0, count=2)), [[4.0], [4.0]])
    finally:
        batcher.close()


@pytest.fixture(scope="module")
def batching(mobilenet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A predictor gathering up to 8 images for 300 ms after the first (this checkout's code)."""
    env = {"DR_MICRO_BATCH": "8", "DR_MICRO_BATCH_WAIT_MS": "300"}
    with second_predictor(mobilenet_dir, tmp_path_factory.mktemp("batching"), env) as http:
        yield http


def _call_images(client: httpx.Client) -> tuple[float, float]:
    """(calls, images) of ``dr_inference_call_images`` so far."""
    found = {"count": 0.0, "sum": 0.0}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            for part in found:
                if sample.name == f"dr_inference_call_images_{part}" and sample.labels == {"model": MODEL}:
                    found[part] = sample.value
    return found["count"], found["sum"]


def test_concurrent_requests_share_backend_calls_and_get_the_answers_of_single_calls(
    batching: httpx.Client, client: httpx.Client, fundus_jpegs: list[bytes]
) -> None:
    jpeg = {"content-type": "image/jpeg"}
    alone = [client.post(V1, content=data, headers=jpeg).json()["predictions"][0] for data in fundus_jpegs]
    calls_before, images_before = _call_images(batching)
    with ThreadPoolExecutor(max_workers=len(fundus_jpegs)) as pool:
        answers = list(pool.map(lambda data: batching.post(V1, content=data, headers=jpeg), fundus_jpegs))
    calls_after, images_after = _call_images(batching)
    calls, images = calls_after - calls_before, images_after - images_before
    assert [answer.status_code for answer in answers] == [200] * len(fundus_jpegs)
    together = [answer.json()["predictions"][0] for answer in answers]
    for single, shared in zip(alone, together, strict=True):
        assert shared["grade"] == single["grade"]
        np.testing.assert_allclose(shared["probabilities"], single["probabilities"], atol=1e-4)
    assert images == len(fundus_jpegs)
    assert calls < len(fundus_jpegs), f"{calls:g} backend calls for {images:g} concurrent images"
    assert all(float(answer.headers["x-dr-prediction-ms"]) > 0 for answer in answers)
