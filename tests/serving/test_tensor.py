"""Resizing, the four pixel scalings and their inverse, PNG encoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from serving.tensor import CAFFE_BGR_MEANS, resize, scale, to_png, unscale

PIXELS = np.array([[[0, 127, 255], [10, 20, 30]]], dtype=np.uint8)


def test_resize_to_height_width() -> None:
    pixels = resize(Image.new("RGB", (640, 480), (10, 20, 30)), size=(224, 200))
    assert pixels.shape == (224, 200, 3)
    assert pixels.dtype == np.uint8
    assert tuple(pixels[100, 100]) == (10, 20, 30)


def test_resize_converts_mode() -> None:
    assert resize(Image.new("L", (50, 50), 9), size=(32, 32))[0, 0].tolist() == [9, 9, 9]


@pytest.mark.parametrize(
    ("scaling", "expected"),
    [
        (
            "minus_one_to_one",
            [[[-1.0, 127 / 127.5 - 1, 1.0], [10 / 127.5 - 1, 20 / 127.5 - 1, 30 / 127.5 - 1]]],
        ),
        ("zero_one", [[[0.0, 127 / 255, 1.0], [10 / 255, 20 / 255, 30 / 255]]]),
        ("raw", [[[0.0, 127.0, 255.0], [10.0, 20.0, 30.0]]]),
        (
            "caffe",
            [[[255 - 103.939, 127 - 116.779, 0 - 123.68], [30 - 103.939, 20 - 116.779, 10 - 123.68]]],
        ),
    ],
    ids=["minus-one-to-one", "zero-one", "raw", "caffe-bgr-means"],
)
def test_scalings(scaling: str, expected: list[object]) -> None:
    scaled = scale(PIXELS, scaling=scaling)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, np.array(expected, dtype=np.float32), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("scaling", ["minus_one_to_one", "zero_one", "raw", "caffe"])
def test_unscale_inverts_scale(scaling: str) -> None:
    assert np.array_equal(unscale(scale(PIXELS, scaling=scaling), scaling=scaling), PIXELS)


def test_caffe_means_are_imagenet_bgr() -> None:
    assert CAFFE_BGR_MEANS.tolist() == pytest.approx([103.939, 116.779, 123.68])


def test_unknown_scaling() -> None:
    with pytest.raises(ValueError, match=r"got 'tf'"):
        scale(PIXELS, scaling="tf")
    with pytest.raises(ValueError, match=r"got 'torch'"):
        unscale(PIXELS, scaling="torch")


def test_to_png_round_trips() -> None:
    data = to_png(PIXELS)
    assert data.startswith(b"\x89PNG")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), PIXELS)


def test_to_png_needs_uint8_rgb() -> None:
    with pytest.raises(ValueError, match="Expected uint8 pixels shaped"):
        to_png(PIXELS.astype(np.float32))
