"""LiteRTBackend: the converted MobileNet, run by ai-edge-litert without TensorFlow, agrees with TF."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from serving.backends import Backend, load_backend
from serving.backends.litert import LiteRTBackend
from serving.cpus import available_cpus
from serving.errors import ModelLoadError
from serving.metadata import InputInfo, ModelMetadata
from serving.zoo.convert import convert_model, sample_batch


@pytest.fixture(scope="module")
def tflite_dir(mobilenet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the MobileNet fixture with its LiteRT conversion (float32) beside the SavedModel."""
    target = tmp_path_factory.mktemp("litert") / "mobilenet"
    shutil.copytree(mobilenet_dir, target, ignore=shutil.ignore_patterns("model.tflite*"))
    convert_model(target)
    return target


@pytest.fixture(scope="module")
def metadata(tflite_dir: Path) -> ModelMetadata:
    """The fixture model's dr_model.json."""
    loaded = ModelMetadata.load(tflite_dir)
    assert loaded is not None
    return loaded


@pytest.fixture(scope="module")
def backend(tflite_dir: Path, metadata: ModelMetadata) -> LiteRTBackend:
    """One LiteRT backend for the module."""
    return LiteRTBackend(tflite_dir, metadata=metadata)


@pytest.fixture(scope="module")
def batch(metadata: ModelMetadata) -> np.ndarray:
    """Six preprocessed synthetic fundus photographs (grades 0-4 and 0)."""
    return sample_batch(metadata, samples=6, seed=3)


def test_reads_its_input_spec_from_the_tflite_file(backend: LiteRTBackend) -> None:
    assert isinstance(backend, Backend)
    assert backend.name == "litert"
    spec = backend.input_spec
    assert (spec.name, spec.height, spec.width) == ("image", 224, 224)
    assert backend.input_spec.dtype == "float32"
    assert backend.output_name == "probabilities"
    assert backend.num_classes == 5


def test_agrees_with_the_savedmodel_signature(
    tflite_dir: Path, metadata: ModelMetadata, batch: np.ndarray
) -> None:
    from serving.backends.savedmodel import SavedModelBackend

    expected = SavedModelBackend(tflite_dir, metadata=metadata).predict(batch)
    got = LiteRTBackend(tflite_dir, metadata=metadata).predict(batch)
    assert got.dtype == np.float32
    assert got.shape == (6, 5)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))


def test_batch_size_changes_reuse_one_interpreter(backend: LiteRTBackend, batch: np.ndarray) -> None:
    whole = backend.predict(batch)
    one_by_one = np.concatenate([backend.predict(batch[i : i + 1]) for i in range(len(batch))])
    pair = backend.predict(batch[2:4])
    np.testing.assert_allclose(one_by_one, whole, atol=1e-5)
    np.testing.assert_allclose(pair, whole[2:4], atol=1e-5)
    np.testing.assert_allclose(backend.predict(batch), whole, atol=1e-6)


def test_concurrent_callers_get_their_own_answers(backend: LiteRTBackend, batch: np.ndarray) -> None:
    expected = [backend.predict(batch[i : i + 1]) for i in range(len(batch))]
    answers: dict[int, np.ndarray] = {}

    def call(i: int) -> None:
        for _ in range(5):
            one = batch[i : i + 1]
            answers[i] = backend.predict(one if i % 2 else np.repeat(one, 2, axis=0))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(batch))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, answer in answers.items():
        np.testing.assert_allclose(answer[:1], expected[i], atol=1e-5)


def test_thread_count_is_configurable_or_automatic(tflite_dir: Path, batch: np.ndarray) -> None:
    single = LiteRTBackend(tflite_dir, num_threads=1)
    assert single.num_threads == 1
    assert LiteRTBackend(tflite_dir).num_threads == available_cpus()
    automatic = LiteRTBackend(tflite_dir)
    np.testing.assert_allclose(single.predict(batch[:2]), automatic.predict(batch[:2]), atol=1e-5)
    with pytest.raises(ValueError, match="num_threads"):
        LiteRTBackend(tflite_dir, num_threads=0)


def test_the_predictors_threads_reach_the_interpreter(tflite_dir: Path) -> None:
    """``serve --threads`` → ``DRModel(threads=)`` → ``load_backend(num_threads=)``; 0 is automatic."""
    from serving.limits import Limits
    from serving.predictor import DRModel

    assert load_backend(tflite_dir, None, kind="litert", num_threads=1).num_threads == 1
    assert load_backend(tflite_dir, None, kind="litert").num_threads == available_cpus()
    for threads, expected in ((1, 1), (3, 3), (0, available_cpus())):
        model = DRModel("m", model_dir=tflite_dir, backend="litert", threads=threads, limits=Limits())
        model.load()
        assert model.backend is not None and model.backend.num_threads == expected
        model.stop()
    with pytest.raises(ValueError, match="threads >= 0"):
        DRModel("m", model_dir=tflite_dir, backend="litert", threads=-1, limits=Limits())


def test_rejects_a_batch_of_the_wrong_shape(backend: LiteRTBackend) -> None:
    with pytest.raises(ValueError, match=r"\[N, 224, 224, 3\]"):
        backend.predict(np.zeros((1, 128, 128, 3), dtype=np.float32))


def test_missing_or_corrupt_model_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such file"):
        LiteRTBackend(tmp_path)
    (tmp_path / "model.tflite").write_bytes(b"not a flatbuffer" * 64)
    with pytest.raises(ModelLoadError, match="loadable LiteRT model"):
        LiteRTBackend(tmp_path)


def test_metadata_must_agree_on_the_input_size(tflite_dir: Path, metadata: ModelMetadata) -> None:
    wrong = dataclasses.replace(metadata, input=InputInfo(height=299, width=299))
    with pytest.raises(ModelLoadError, match="299x299"):
        LiteRTBackend(tflite_dir, metadata=wrong)


def test_load_backend_picks_litert_on_request(tflite_dir: Path, metadata: ModelMetadata) -> None:
    assert isinstance(load_backend(tflite_dir, metadata, kind="litert"), LiteRTBackend)


def test_never_imports_tensorflow(tflite_dir: Path) -> None:
    script = (
        "import sys, numpy as np\n"
        "from serving.backends.litert import LiteRTBackend\n"
        "from serving.metadata import ModelMetadata\n"
        f"directory = {str(tflite_dir)!r}\n"
        "backend = LiteRTBackend(directory, metadata=ModelMetadata.load(directory))\n"
        "out = backend.predict(np.zeros((2, 224, 224, 3), np.float32))\n"
        "assert out.shape == (2, 5), out.shape\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
