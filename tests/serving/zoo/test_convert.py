"""``dr-serving model convert``: SavedModel → LiteRT, kept only when both agree on sample photographs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dr_cli.main import main
from serving.metadata import InputInfo, ModelMetadata
from serving.zoo.convert import AgreementError, compare, convert_model, report_path


@pytest.fixture(scope="module")
def model_copy(mobilenet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the MobileNet fixture (conversions write beside it)."""
    target = tmp_path_factory.mktemp("convert") / "mobilenet"
    shutil.copytree(mobilenet_dir, target, ignore=shutil.ignore_patterns("model.tflite*"))
    return target


def test_float32_conversion_agrees_and_is_recorded(model_copy: Path) -> None:
    report = convert_model(model_copy, samples=10)
    tflite = model_copy / "model.tflite"
    assert tflite.stat().st_size == report.tflite_bytes
    metadata = ModelMetadata.load(model_copy)
    assert metadata is not None and metadata.parameters is not None
    assert report.tflite_bytes > 3.5 * metadata.parameters  # float32 weights are all there
    assert report.passed
    assert report.outputs_vary  # the trained fixture answers differently per photo: agreement means something
    assert report.max_abs_diff <= 1e-3
    assert report.grade_agreement == 1.0
    recorded = json.loads(report_path(tflite).read_text())
    assert recorded == report.to_dict()
    assert recorded["samples"] == 10


def test_dynamic_quantization_is_smaller_and_within_its_tolerance(model_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8.tflite"
    report = convert_model(model_copy, out=out, quantize="dynamic", samples=6)
    assert out.is_file() and report_path(out).is_file()
    assert report.tflite_bytes < 0.4 * (model_copy / "model.tflite").stat().st_size
    assert report.passed and report.max_abs_diff <= report.tolerance == 0.1


def test_a_keras3_model_saved_with_tf_saved_model_save_is_refused(tmp_path: Path) -> None:
    """The known pitfall: the converter 'succeeds' but the result does not reproduce the model."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    inputs = keras.Input((32, 32, 3), name="image")
    hidden = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    hidden = keras.layers.GlobalAveragePooling2D()(hidden)
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax", name="probabilities")(hidden))

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32, name="image")])
    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"probabilities": model(image)}

    directory = tmp_path / "plain"
    tf.saved_model.save(model, str(directory), signatures={"serving_default": serve})
    ModelMetadata(name="tiny", input=InputInfo(height=32, width=32), parameters=model.count_params()).save(
        directory
    )
    with pytest.raises(AgreementError, match=r"agree|finite|weights"):  # NaN or wrong answers
        convert_model(directory, samples=8)
    assert not (directory / "model.tflite").exists()
    assert not report_path(directory / "model.tflite").exists()


def test_compare_counts_only_clear_grade_disagreements() -> None:
    reference = np.array([[0.7, 0.1, 0.1, 0.05, 0.05], [0.3001, 0.2999, 0.2, 0.1, 0.1]], dtype=np.float32)
    swapped = np.array([[0.1, 0.7, 0.1, 0.05, 0.05], [0.2999, 0.3001, 0.2, 0.1, 0.1]], dtype=np.float32)
    max_diff, agreement, hard = compare(reference, swapped, tolerance=1e-3)
    assert max_diff == pytest.approx(0.6)
    assert agreement == 0.0
    assert hard == 1  # the near tie in row 2 is not a clear disagreement


def test_compare_rejects_nan() -> None:
    reference = np.full((2, 5), 0.2, dtype=np.float32)
    with pytest.raises(AgreementError, match="finite"):
        compare(reference, np.full((2, 5), np.nan, dtype=np.float32), tolerance=1e-3)


def test_cli_converts_and_prints_the_agreement(
    model_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.tflite"
    assert main(["model", "convert", str(model_copy), "--out", str(out), "--samples", "5"]) == 0
    printed = capsys.readouterr().out
    assert "grades 5/5 agree" in printed
    assert out.is_file()


def test_cli_without_a_savedmodel_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "convert", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("Error: Expected a SavedModel")
