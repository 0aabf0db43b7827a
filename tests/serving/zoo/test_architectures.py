"""Tests for ``serving.zoo.architectures``: the published MobileNet and VGG19 classifiers."""

from __future__ import annotations

import numpy as np
import pytest

from serving.zoo.architectures import ARCHITECTURES, build_keras_model, get_architecture


@pytest.mark.parametrize(
    ("arch", "parameters"), [("mobilenet", 3_377_221), ("vgg19", 20_107_205)], ids=["mobilenet", "vgg19"]
)
def test_parameter_count_matches_the_published_table(arch: str, parameters: int) -> None:
    model = build_keras_model(arch)
    assert model.count_params() == parameters
    assert ARCHITECTURES[arch].parameters == parameters
    assert model.input_shape == (None, 224, 224, 3)
    assert model.output_shape == (None, 5)


def test_head_is_two_dense_128_relu_then_softmax() -> None:
    model = build_keras_model("mobilenet")
    backbone, *head = model.layers[1:]
    assert backbone.name.startswith("mobilenet") and backbone.output_shape == (None, 1024)
    assert [(layer.units, layer.activation.__name__) for layer in head] == [
        (128, "relu"),
        (128, "relu"),
        (5, "softmax"),
    ]


def test_input_size_changes_the_input_not_the_parameters() -> None:
    model = build_keras_model("mobilenet", input_size=160)
    assert model.input_shape == (None, 160, 160, 3)
    assert model.count_params() == 3_377_221


def test_seed_makes_weights_reproducible() -> None:
    first = build_keras_model("mobilenet", input_size=64, seed=7).get_weights()
    second = build_keras_model("mobilenet", input_size=64, seed=7).get_weights()
    other = build_keras_model("mobilenet", input_size=64, seed=8).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_flops_constants_are_the_published_ones() -> None:
    assert get_architecture("mobilenet").gflops == 1.14
    assert get_architecture("vgg19").gflops == 39.0


@pytest.mark.parametrize(
    ("arch", "size", "message"),
    [("resnet50", 224, "Architecture must be one of"), ("mobilenet", 16, "Input size must be")],
    ids=["unknown-arch", "tiny-input"],
)
def test_bad_options_are_rejected(arch: str, size: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_keras_model(arch, input_size=size)
