"""The composed preprocessing: crop → resize → (Ben Graham) → scale, per the model's metadata."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image, ImageDraw

from serving.metadata import InputInfo, ModelMetadata, Preprocessing
from serving.preprocess import prepare_pixels, preprocess_image
from serving.zoo.synthetic import make_fundus_image

METADATA = ModelMetadata()


def test_model_input_shape_dtype_and_range() -> None:
    x = preprocess_image(make_fundus_image(3, size=512, seed=4), METADATA)
    assert x.shape == (224, 224, 3)
    assert x.dtype == np.float32
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0


def test_input_size_comes_from_metadata() -> None:
    metadata = dataclasses.replace(METADATA, input=InputInfo(name="input_1", height=299, width=299))
    assert preprocess_image(make_fundus_image(0, size=256, seed=0), metadata).shape == (299, 299, 3)


def test_crop_fills_the_frame_with_the_disc() -> None:
    photo = Image.new("RGB", (1200, 600))
    ImageDraw.Draw(photo).ellipse((700, 50, 1200, 550), fill=(200, 90, 40))
    cropped = prepare_pixels(photo, METADATA)
    uncropped = prepare_pixels(
        photo, dataclasses.replace(METADATA, preprocessing=Preprocessing(crop_fundus=False))
    )
    assert tuple(cropped[112, 112]) == (200, 90, 40)
    assert tuple(uncropped[112, 20]) == (0, 0, 0)
    assert (cropped.sum(axis=-1) > 0).mean() > 0.7
    assert (uncropped.sum(axis=-1) > 0).mean() < 0.4


def test_ben_graham_changes_the_pixels_and_masks_the_rim() -> None:
    image = make_fundus_image(4, size=400, seed=2)
    enhanced_metadata = dataclasses.replace(METADATA, preprocessing=Preprocessing(ben_graham=True))
    plain = prepare_pixels(image, METADATA)
    enhanced = prepare_pixels(image, enhanced_metadata)
    assert not np.array_equal(plain, enhanced)
    assert tuple(enhanced[0, 0]) == (128, 128, 128)


def test_accepts_uint8_arrays_like_images() -> None:
    image = make_fundus_image(1, size=256, seed=3)
    from_array = preprocess_image(np.asarray(image), METADATA)
    assert np.array_equal(from_array, preprocess_image(image, METADATA))


def test_rejects_other_inputs() -> None:
    with pytest.raises(ValueError, match="Expected uint8 pixels shaped"):
        preprocess_image(np.zeros((10, 10), dtype=np.uint8), METADATA)
    with pytest.raises(TypeError, match="got bytes"):
        preprocess_image(b"\xff\xd8", METADATA)  # type: ignore[arg-type]
