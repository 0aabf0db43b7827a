"""One image in, one model input out: the preprocessing shared by the server and by training.

``prepare_pixels`` = crop to the fundus disc and resize to the model input (padding after resizing) →
optional Ben Graham enhancement
(with a circular mask when the disc was cropped), as uint8 pixels (what ``/preprocessed`` returns as PNG);
``preprocess_image`` adds the model's pixel scaling and returns float32 (H, W, 3).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from serving import fundus, tensor
from serving.metadata import ModelMetadata

__all__ = ["prepare_pixels", "preprocess_image"]


def prepare_pixels(image: Image.Image | np.ndarray, metadata: ModelMetadata) -> np.ndarray:
    """Crop, resize and enhance an RGB image per ``metadata``; returns uint8 (H, W, 3) at the model's size."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"Expected uint8 pixels shaped (H, W, 3), got {image.dtype} {image.shape!r}.")
        image = Image.fromarray(image, mode="RGB")
    elif not isinstance(image, Image.Image):
        raise TypeError(f"Expected a PIL image or a uint8 array, got {type(image).__name__}.")
    steps = metadata.preprocessing
    if steps.crop_fundus:
        image = fundus.crop_resize_to_disc(image.convert("RGB"), size=metadata.input_size)
    pixels = tensor.resize(image, size=metadata.input_size)
    if steps.ben_graham:
        pixels = fundus.ben_graham(pixels, sigma=steps.ben_graham_sigma)
        if steps.crop_fundus:
            pixels = fundus.circular_mask(pixels)
    return pixels


def preprocess_image(image: Image.Image | np.ndarray, metadata: ModelMetadata) -> np.ndarray:
    """The model input for one RGB image: ``prepare_pixels`` plus the metadata's scaling, float32 (H,W,3)."""
    return tensor.scale(prepare_pixels(image, metadata), scaling=metadata.scaling)
