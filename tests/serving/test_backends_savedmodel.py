"""The SavedModel backend: signature introspection, metadata overrides, and one-sentence start-up failures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from serving.backends import Backend, choose_kind, describe_model, load_backend
from serving.backends.savedmodel import THREAD_VARIABLES, SavedModelBackend
from serving.cpus import available_cpus
from serving.errors import ModelLoadError
from serving.metadata import DEFAULT_CLASS_NAMES, InputInfo, ModelMetadata


def _signature_names(model_dir: Path) -> tuple[str, list[int], str]:
    """Read the serving signature independently of the backend, straight from TensorFlow."""
    import tensorflow as tf

    function = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    ((name, spec),) = function.structured_input_signature[1].items()
    (output,) = function.structured_outputs
    return name, spec.shape.as_list(), output


def _assert_one_sentence(message: str) -> None:
    assert "\n" not in message
    assert message.startswith("Expected")
    assert message.endswith((".", ")"))


def test_foreign_model_is_introspected(foreign_savedmodel_dir: Path) -> None:
    backend = load_backend(foreign_savedmodel_dir, None)
    input_name, shape, output_name = _signature_names(foreign_savedmodel_dir)
    assert isinstance(backend, SavedModelBackend) and isinstance(backend, Backend)
    assert backend.name == "savedmodel"
    assert backend.input_spec.name == input_name
    assert (backend.input_spec.height, backend.input_spec.width) == (shape[1], shape[2]) == (224, 224)
    assert backend.output_name == output_name
    probabilities = backend.predict(np.zeros((3, 224, 224, 3), dtype=np.float32))
    assert probabilities.shape == (3, 5) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_299_model_loads_without_metadata(savedmodel_299_dir: Path) -> None:
    backend = load_backend(savedmodel_299_dir, None)
    input_name, _, output_name = _signature_names(savedmodel_299_dir)
    assert backend.input_spec.name == input_name
    assert (backend.input_spec.height, backend.input_spec.width) == (299, 299)
    metadata = describe_model(savedmodel_299_dir, None, backend)
    assert metadata.input_size == (299, 299)
    assert (metadata.input.name, metadata.output.name) == (input_name, output_name)
    assert metadata.scaling == "minus_one_to_one"
    assert metadata.class_names == DEFAULT_CLASS_NAMES
    rng = np.random.default_rng(0)
    a, b = backend.predict(rng.uniform(-1, 1, size=(2, 299, 299, 3)).astype(np.float32))
    assert not np.allclose(a, b)  # outputs depend on the input


def test_our_export_uses_the_metadata_names(mobilenet_dir: Path) -> None:
    metadata = ModelMetadata.load(mobilenet_dir)
    assert metadata is not None
    backend = load_backend(mobilenet_dir, metadata)
    assert (backend.input_spec.name, backend.output_name) == ("image", "probabilities")
    assert describe_model(mobilenet_dir, metadata, backend) == metadata


def test_metadata_size_must_agree_with_a_static_signature(foreign_savedmodel_dir: Path) -> None:
    metadata = ModelMetadata(input=InputInfo(height=299, width=299))
    with pytest.raises(ModelLoadError) as info:
        SavedModelBackend(foreign_savedmodel_dir, metadata=metadata)
    assert (
        str(info.value) == "Expected the signature's input height to be 299 as dr_model.json says, got 224."
    )


def test_unknown_signature_name(foreign_savedmodel_dir: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        SavedModelBackend(foreign_savedmodel_dir, metadata=ModelMetadata(signature="predict"))
    assert "Expected a signature named 'predict'" in str(info.value)
    assert "got ['serving_default']" in str(info.value)
    _assert_one_sentence(str(info.value))


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_backend(tmp_path / "nowhere", None)
    assert (
        str(info.value)
        == f"Expected a model directory at {str(tmp_path / 'nowhere')!r}, but it does not exist."
    )


def test_directory_without_a_savedmodel(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_backend(tmp_path, None, kind="savedmodel")
    assert (
        str(info.value)
        == f"Expected a TensorFlow SavedModel (saved_model.pb) in {str(tmp_path)!r}, found none."
    )


def test_corrupt_savedmodel(tmp_path: Path, foreign_savedmodel_dir: Path) -> None:
    corrupt = tmp_path / "corrupt"
    shutil.copytree(foreign_savedmodel_dir, corrupt)
    (corrupt / "saved_model.pb").write_bytes(b"\x00this is not a protobuf" * 10)
    with pytest.raises(ModelLoadError) as info:
        load_backend(corrupt, None)
    assert str(info.value).startswith(f"Expected a loadable SavedModel in {str(corrupt)!r}, got an error: ")
    _assert_one_sentence(str(info.value))


def _save_module(path: Path, input_shape: list[int | None], output_fn: str) -> Path:
    import tensorflow as tf

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec(input_shape, tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            if output_fn == "vector":
                return {"scores": tf.nn.softmax(tf.reduce_mean(x, axis=1, keepdims=True) * tf.ones([1, 5]))}
            return {"scores": x}

    module = Module()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


@pytest.mark.parametrize(
    ("input_shape", "output_fn", "message"),
    [
        ([None, 10], "vector", "to be a 4-D image tensor [N, H, W, 3]"),
        (
            [None, 8, 8, 3],
            "identity",
            "Expected output 'scores' of signature 'serving_default' to be [N, classes]",
        ),
    ],
    ids=["vector-input", "image-output"],
)
def test_incompatible_signature(
    tmp_path: Path, input_shape: list[int | None], output_fn: str, message: str
) -> None:
    model_dir = _save_module(tmp_path / "odd", input_shape, output_fn)
    with pytest.raises(ModelLoadError) as info:
        load_backend(model_dir, None)
    assert message in str(info.value)
    _assert_one_sentence(str(info.value))


def test_choose_kind(tmp_path: Path) -> None:
    assert choose_kind(tmp_path) == "savedmodel"
    (tmp_path / "model.tflite").write_bytes(b"")
    assert choose_kind(tmp_path) == "litert"  # no SavedModel beside it
    (tmp_path / "saved_model.pb").write_bytes(b"")
    assert choose_kind(tmp_path) == "savedmodel"  # TensorFlow is installed here
    assert choose_kind(tmp_path, kind="litert") == "litert"
    with pytest.raises(ValueError, match="got 'onnx'"):
        choose_kind(tmp_path, kind="onnx")


def test_describe_model_keeps_metadata_but_takes_the_real_names(foreign_savedmodel_dir: Path) -> None:
    declared = ModelMetadata(name="published", scaling="zero_one")
    backend = load_backend(foreign_savedmodel_dir, declared)
    described = describe_model(foreign_savedmodel_dir, declared, backend)
    assert described.name == "published" and described.scaling == "zero_one"
    assert described.input.name == backend.input_spec.name
    assert described.output.name == backend.output_name


_THREADS_PROBE = """
import json, os, sys
from serving.backends.savedmodel import THREAD_VARIABLES, SavedModelBackend
from serving.cpus import available_cpus
import numpy as np
import tensorflow as tf

first = SavedModelBackend(sys.argv[1], num_threads=int(sys.argv[2]) if len(sys.argv) > 2 else None)
first.predict(np.zeros((1, 224, 224, 3), dtype=np.float32))
second = SavedModelBackend(sys.argv[1], num_threads=3)  # TensorFlow runs by now: its pools stay as they are
names = [open(f"/proc/self/task/{task}/comm").read().strip() for task in os.listdir("/proc/self/task")]
print(json.dumps({
    "first": first.num_threads,
    "second": second.num_threads,
    "intra": tf.config.threading.get_intra_op_parallelism_threads(),
    "inter": tf.config.threading.get_inter_op_parallelism_threads(),
    "inter_threads": names.count("tf_Compute"),
}))
"""


def _threads_in_a_fresh_process(model_dir: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    """Load the SavedModel twice in a new Python (TensorFlow's pools are per process); what it reports."""
    variables = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES.values()}
    variables.update({"TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
    done = subprocess.run(
        [sys.executable, "-c", _THREADS_PROBE, str(model_dir), *args],
        capture_output=True,
        text=True,
        env=variables,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_thread_pools_follow_the_cpus_given_and_are_set_once(foreign_savedmodel_dir: Path) -> None:
    """TensorFlow's pools take ``num_threads`` (a pod's CPU limit by default), not every CPU it can see."""
    report = _threads_in_a_fresh_process(foreign_savedmodel_dir, "1")
    assert report == {"first": 1, "second": 1, "intra": 1, "inter": 1, "inter_threads": 1}
    automatic = _threads_in_a_fresh_process(foreign_savedmodel_dir)
    assert automatic["first"] == automatic["intra"] == automatic["inter"] == available_cpus()


def test_tensorflows_thread_variables_win(foreign_savedmodel_dir: Path) -> None:
    report = _threads_in_a_fresh_process(
        foreign_savedmodel_dir, "1", env={"TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "2"}
    )
    # Left to TensorFlow (its API still says 0): it reads the variables and starts two threads between ops.
    assert (report["first"], report["intra"], report["inter"], report["inter_threads"]) == (2, 0, 0, 2)


def test_thread_count_must_be_positive(foreign_savedmodel_dir: Path) -> None:
    with pytest.raises(ValueError, match="num_threads"):
        SavedModelBackend(foreign_savedmodel_dir, num_threads=0)
