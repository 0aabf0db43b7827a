"""Tests for ``serving.zoo.train``: the synthetic-trained MobileNet fixture answers according to its input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serving.metadata import InputInfo, ModelMetadata
from serving.preprocess import preprocess_image
from serving.zoo.architectures import build_keras_model
from serving.zoo.synthetic import make_dataset
from serving.zoo.train import synthetic_pixels, train_head, train_synthetic

pytestmark = pytest.mark.slow

# Seed of the held-out photos: neither the training seed (0) nor the validation seed the trainer uses.
HELD_OUT_SEED = 4242


def _predict(model_dir: Path, images: list) -> np.ndarray:
    import tensorflow as tf

    metadata = ModelMetadata.load(model_dir)
    assert metadata is not None
    batch = np.stack([preprocess_image(image, metadata) for image in images])
    serve = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    return serve(image=tf.constant(batch))["probabilities"].numpy()


def test_trained_mobilenet_answers_depend_on_the_input(mobilenet_dir: Path) -> None:
    images = [image for image, _ in make_dataset(10, size=384, seed=HELD_OUT_SEED)]
    probabilities = _predict(mobilenet_dir, images)
    assert probabilities.shape == (10, 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert np.ptp(probabilities, axis=0).max() > 0.1  # not the constant 0.2 of random weights
    assert len(set(probabilities.argmax(axis=1).tolist())) >= 2


def test_trained_mobilenet_beats_chance_on_held_out_photos(mobilenet_dir: Path) -> None:
    pairs = list(make_dataset(100, size=320, seed=HELD_OUT_SEED))
    probabilities = _predict(mobilenet_dir, [image for image, _ in pairs])
    grades = np.array([grade for _, grade in pairs])
    accuracy = float((probabilities.argmax(axis=1) == grades).mean())
    # Chance is 0.2; 0.35 is 3.75 standard deviations above it for 100 photos.
    assert accuracy >= 0.35, f"held-out accuracy {accuracy:.2f}"


def test_trained_mobilenet_metadata_records_synthetic_training(mobilenet_dir: Path) -> None:
    metadata = ModelMetadata.load(mobilenet_dir)
    assert metadata is not None
    assert metadata.weights.source == "synthetic"
    assert metadata.weights.clinical_use is False
    assert "synthetic fundus images" in (metadata.weights.trained_on or "")
    assert "held-out" in (metadata.weights.notes or "")


def test_synthetic_pixels_are_prepared_like_the_server_does() -> None:
    metadata = ModelMetadata(input=InputInfo(height=64, width=64))
    pixels, grades = synthetic_pixels(10, metadata=metadata, seed=3, photo_size=128)
    assert pixels.shape == (10, 64, 64, 3) and pixels.dtype == np.uint8
    assert grades.tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    # The surround is cropped away: the corners are black, the centre is retina.
    assert pixels[:, 0, 0].max() < 20 and pixels[:, 32, 32, 0].min() > 40


@pytest.mark.parametrize(("verbose", "lines"), [(0, 0), (2, 1)], ids=["silent", "one-line-for-logs"])
def test_synthetic_pixels_progress_follows_keras_verbosity(
    verbose: int, lines: int, capsys: pytest.CaptureFixture[str]
) -> None:
    metadata = ModelMetadata(input=InputInfo(height=64, width=64))
    synthetic_pixels(3, metadata=metadata, seed=3, photo_size=128, verbose=verbose)
    printed = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(printed) == lines and all(line.startswith("3/3 ") for line in printed)


def test_training_changes_weights_and_reports_accuracy() -> None:
    metadata = ModelMetadata(input=InputInfo(height=64, width=64))
    model = build_keras_model("mobilenet", input_size=64, seed=1)
    before = [w.copy() for w in model.get_weights()]
    result = train_synthetic(
        model, metadata=metadata, images=10, epochs=1, seed=1, validation_images=5, photo_size=96, verbose=0
    )
    assert result.train_images == 10 and result.validation_images == 5 and result.epochs == 1
    assert 0.0 <= result.train_accuracy <= 1.0 and 0.0 <= result.validation_accuracy <= 1.0
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_head_training_rescales_the_backbone_and_leaves_it_fixed() -> None:
    import keras

    from serving import tensor

    metadata = ModelMetadata(input=InputInfo(height=32, width=32))
    model = build_keras_model("vgg19", input_size=32, seed=2)
    backbone = model.layers[1]
    convs = [layer for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D)]
    kernels = [conv.get_weights()[0].copy() for conv in convs]
    head = [w.copy() for layer in model.layers[2:] for w in layer.get_weights()]
    result = train_head(
        model, metadata=metadata, images=12, epochs=3, seed=2, validation_images=5, photo_size=64, verbose=0
    )
    assert result.train_images == 12 and result.epochs == 3 and 0 <= result.validation_accuracy <= 1
    for conv, kernel in zip(convs, kernels, strict=True):
        scaled = conv.get_weights()[0]
        factor = float(np.sum(scaled * kernel) / np.sum(kernel * kernel))
        np.testing.assert_allclose(scaled, factor * kernel, rtol=1e-4, atol=1e-9)  # rescaled, never trained
    pixels, _ = synthetic_pixels(12, metadata=metadata, seed=2, photo_size=64)
    probe = tensor.scale(pixels, scaling=metadata.scaling)
    last = np.asarray(keras.Model(backbone.input, convs[-1].output)(probe))
    assert np.std(last) == pytest.approx(1.0, rel=1e-3)  # unit variance on the photos it was scaled on
    after = [w for layer in model.layers[2:] for w in layer.get_weights()]
    assert any(not np.array_equal(a, b) for a, b in zip(head, after, strict=True))


@pytest.mark.parametrize(
    ("options", "message"),
    [({"images": 3}, "training images"), ({"images": 10, "epochs": 0}, "epochs")],
    ids=["too-few-images", "no-epochs"],
)
def test_bad_training_options_are_rejected(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        train_synthetic(object(), metadata=ModelMetadata(), **options)  # type: ignore[arg-type]
