"""Tests for ``serving.zoo.export``: the SavedModel signature, its weights and the metadata beside it."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from serving.metadata import InputInfo, ModelMetadata
from serving.zoo.architectures import build_keras_model
from serving.zoo.export import directory_size, export_savedmodel, read_signature, verify_export
from serving.zoo.train import train_synthetic

pytestmark = pytest.mark.slow

SIZE = 64
METADATA = ModelMetadata(
    name="tiny-mobilenet",
    architecture="mobilenet",
    parameters=3_377_221,
    input=InputInfo(height=SIZE, width=SIZE),
)


@pytest.fixture(scope="module")
def varied_model():  # -> keras.Model
    """A small-input MobileNet trained a few steps on synthetic photos: outputs differ between inputs."""
    model = build_keras_model("mobilenet", input_size=SIZE, seed=3)
    train_synthetic(model, metadata=METADATA, images=20, epochs=1, seed=3, validation_images=5, photo_size=96)
    return model


@pytest.fixture(scope="module")
def exported(varied_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_savedmodel(varied_model, tmp_path_factory.mktemp("export") / "model", metadata=METADATA)


def _inputs(n: int = 4) -> np.ndarray:
    x = np.random.default_rng(9).uniform(-1, 1, (n, SIZE, SIZE, 3)).astype(np.float32)
    x[: n // 2] *= 0.1
    return x


def test_signature_has_the_contract_names_and_shapes(exported: Path) -> None:
    info = read_signature(exported)
    assert info.inputs == {"image": ((None, SIZE, SIZE, 3), "float32")}
    assert info.outputs == {"probabilities": ((None, 5), "float32")}
    assert (
        info.describe() == f"serving_default: image float32[?,{SIZE},{SIZE},3] -> probabilities float32[?,5]"
    )


def test_reloaded_signature_reproduces_keras_outputs(varied_model, exported: Path) -> None:
    import tensorflow as tf

    x = _inputs()
    expected = np.asarray(varied_model(x, training=False))
    assert np.ptp(expected, axis=0).max() > 1e-3  # the check below would be empty on constant outputs
    serve = tf.saved_model.load(str(exported)).signatures["serving_default"]
    got = serve(image=tf.constant(x))["probabilities"].numpy()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert verify_export(varied_model, exported, metadata=METADATA) < 1e-5


def test_weights_are_stored_once(exported: Path) -> None:
    variables = directory_size(exported / "variables")
    assert 0.98 * 4 * 3_377_221 < variables < 1.05 * 4 * 3_377_221


def test_metadata_is_written_beside_the_savedmodel(exported: Path) -> None:
    assert ModelMetadata.load(exported) == METADATA
    assert sorted(p.name for p in exported.iterdir()) == [
        "assets",
        "dr_model.json",
        "fingerprint.pb",
        "saved_model.pb",
        "variables",
    ]


def test_model_directory_is_readable_by_other_users(exported: Path) -> None:
    # The serving image runs as uid 1000; a model copied from a root build must stay readable.
    for path in [exported, *exported.rglob("*")]:
        assert path.stat().st_mode & stat.S_IROTH, path


def test_litert_conversion_keeps_the_weights(varied_model, exported: Path) -> None:
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    content = tf.lite.TFLiteConverter.from_saved_model(str(exported)).convert()
    assert len(content) > 0.9 * 4 * 3_377_221
    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    x = _inputs(1)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, np.asarray(varied_model(x, training=False)), atol=1e-4)


def test_export_replaces_an_existing_model(varied_model, tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    export_savedmodel(varied_model, target, metadata=replace(METADATA, name="again"))
    assert not (target / "stale.txt").exists()
    assert ModelMetadata.load(target).name == "again"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left behind


def test_metadata_must_match_the_model_input(varied_model, tmp_path: Path) -> None:
    wrong = replace(METADATA, input=InputInfo(height=224, width=224))
    with pytest.raises(ValueError, match=r"must match the metadata's \(224, 224, 3\), got \(64, 64, 3\)"):
        export_savedmodel(varied_model, tmp_path / "model", metadata=wrong)
    assert not (tmp_path / "model").exists()


def test_read_signature_names_a_missing_signature(exported: Path) -> None:
    with pytest.raises(
        ValueError, match="must have signature 'predict', got \\['explain', 'serving_default'\\]"
    ):
        read_signature(exported, signature="predict")


def test_vgg19_fixture_has_the_published_size(vgg19_dir: Path) -> None:
    metadata = ModelMetadata.load(vgg19_dir)
    assert metadata is not None
    assert (metadata.architecture, metadata.parameters, metadata.weights.source) == (
        "vgg19",
        20_107_205,
        "random-init",
    )
    assert read_signature(vgg19_dir).describe() == (
        "serving_default: image float32[?,224,224,3] -> probabilities float32[?,5]"
    )
    assert directory_size(vgg19_dir / "variables") < 1.02 * 4 * 20_107_205
