"""Tests for ``serving.zoo.batch_norm_fold``: a twin trained with batch norm folds back exactly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from serving.metadata import InputInfo, ModelMetadata
from serving.zoo.architectures import ARCHITECTURES, build_keras_model
from serving.zoo.batch_norm_fold import batch_norm_twin
from serving.zoo.train import has_batch_norm, train_synthetic

pytestmark = pytest.mark.slow


def _chain(keras: Any) -> Any:
    """conv → pool → conv → global pool → dense: the shape of VGG19 in miniature."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def test_the_folded_model_answers_like_the_twin_in_inference_mode() -> None:
    import keras

    keras.utils.set_random_seed(3)
    model = _chain(keras)
    twin = batch_norm_twin(model)
    norms = [norm for _, _, norm in twin.convolutions]
    assert len(norms) == 2 and not has_batch_norm(model) and has_batch_norm(twin.model)
    rng = np.random.default_rng(3)
    for norm in norms:  # statistics and affine terms far from the identity, as after training
        width = norm.get_weights()[0].shape[0]
        gamma, beta = rng.uniform(0.5, 2, width), rng.normal(0, 0.5, width)
        norm.set_weights([gamma, beta, rng.normal(0, 1, width), rng.uniform(0.2, 3, width)])
    twin.model.layers[-1].set_weights([rng.normal(0, 1, (6, 3)), rng.normal(0, 0.1, 3)])
    x = rng.normal(0, 1, (8, 16, 16, 3)).astype(np.float32)
    expected = np.asarray(twin.model(x, training=False))
    assert not np.allclose(expected, np.asarray(model(x)), atol=1e-3)  # differs before folding
    twin.fold()
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-4, atol=1e-6)
    assert model.count_params() == sum(int(np.prod(w.shape)) for w in model.get_weights())
    assert not has_batch_norm(model)


def test_a_model_that_is_not_a_plain_chain_is_refused() -> None:
    import keras

    inputs = keras.Input((8, 8, 3))
    branch = keras.layers.Conv2D(3, 1)(inputs)
    outputs = keras.layers.Add()([inputs, branch])
    with pytest.raises(ValueError, match=r"'add' \(Add\).*plain chain"):
        batch_norm_twin(keras.Model(inputs, outputs))
    with pytest.raises(ValueError, match="without batch norm"):
        batch_norm_twin(build_keras_model("mobilenet", input_size=32))


def test_vgg19_trains_through_its_twin_and_keeps_its_published_shape() -> None:
    import keras

    metadata = ModelMetadata(input=InputInfo(height=32, width=32))
    model = build_keras_model("vgg19", input_size=32, seed=5)
    parameters = model.count_params()
    convs = [layer for layer in model.layers[1].layers if isinstance(layer, keras.layers.Conv2D)]
    before = [conv.get_weights()[1].copy() for conv in convs]
    result = train_synthetic(
        model, metadata=metadata, images=16, epochs=1, seed=5, validation_images=5, photo_size=64, verbose=0
    )
    assert result.train_images == 16 and 0 <= result.validation_accuracy <= 1
    assert model.count_params() == parameters and not has_batch_norm(model)
    # Folding moves every convolution's bias away from Keras' zero start.
    assert all(np.any(conv.get_weights()[1] != bias) for conv, bias in zip(convs, before, strict=True))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_the_architecture_table_says_which_models_train_through_a_twin(arch: str) -> None:
    # planned_metadata (no TensorFlow) reads the table; the trainers inspect the model: they must agree.
    assert ARCHITECTURES[arch].batch_norm == has_batch_norm(build_keras_model(arch, input_size=32))
