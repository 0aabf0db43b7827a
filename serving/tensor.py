"""Pixels ↔ model tensors: resize to the model's input size, scale as its metadata says, and back to PNG.

Scalings (``serving.metadata.SCALINGS``):

- ``minus_one_to_one``: x / 127.5 − 1 (the published MobileNet/VGG19 servers)
- ``zero_one``: x / 255
- ``raw``: 0–255 as float32
- ``caffe``: RGB → BGR, minus the ImageNet channel means (103.939, 116.779, 123.68), VGG's own
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

__all__ = ["CAFFE_BGR_MEANS", "SCALINGS", "resize", "scale", "to_png", "unscale"]

SCALINGS = ("minus_one_to_one", "zero_one", "raw", "caffe")
#: ImageNet channel means subtracted by the ``caffe`` scaling, in BGR order.
CAFFE_BGR_MEANS = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def resize(image: Image.Image, *, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` = (height, width) with antialiased bilinear filtering; returns uint8 (H, W, 3)."""
    height, width = size
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(image, dtype=np.uint8)


def scale(pixels: np.ndarray, *, scaling: str) -> np.ndarray:
    """Scale uint8 (or 0–255 float) RGB pixels shaped (…, 3) to the model's float32 input."""
    x = np.asarray(pixels, dtype=np.float32)
    if scaling == "minus_one_to_one":
        return x / np.float32(127.5) - np.float32(1.0)
    if scaling == "zero_one":
        return x / np.float32(255.0)
    if scaling == "raw":
        return x
    if scaling == "caffe":
        return x[..., ::-1] - CAFFE_BGR_MEANS
    raise ValueError(f"Expected scaling to be one of {list(SCALINGS)!r}, got {scaling!r}.")


def unscale(tensor: np.ndarray, *, scaling: str) -> np.ndarray:
    """Invert :func:`scale`: float32 model input back to uint8 RGB pixels (values clipped to 0–255)."""
    x = np.asarray(tensor, dtype=np.float32)
    if scaling == "minus_one_to_one":
        x = (x + 1.0) * 127.5
    elif scaling == "zero_one":
        x = x * 255.0
    elif scaling == "raw":
        pass
    elif scaling == "caffe":
        x = (x + CAFFE_BGR_MEANS)[..., ::-1]
    else:
        raise ValueError(f"Expected scaling to be one of {list(SCALINGS)!r}, got {scaling!r}.")
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def to_png(pixels: np.ndarray) -> bytes:
    """Encode uint8 RGB pixels shaped (H, W, 3) as PNG bytes."""
    array = np.asarray(pixels)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"Expected uint8 pixels shaped (H, W, 3), got {array.dtype} {array.shape!r}.")
    buffer = io.BytesIO()
    Image.fromarray(array, mode="RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
