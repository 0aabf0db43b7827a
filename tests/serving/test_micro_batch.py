"""``MicroBatcher``: concurrent single-image calls share backend calls and each caller gets its own answer."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from serving.backends.litert import LiteRTBackend
from serving.metadata import ModelMetadata
from serving.micro_batch import MicroBatcher
from serving.zoo.quantize import synthetic_photos


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
