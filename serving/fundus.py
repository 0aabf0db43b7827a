"""Fundus-specific image preparation: find the disc, crop to it, Ben Graham enhancement.

A fundus photograph is a bright round disc on a black surround. ``locate_disc`` thresholds a small grayscale
copy to find the disc's bounding box; ``crop_to_disc`` cuts the bounding *square* around it (with a small
black margin, so a disc clipped at the top and bottom of the frame stays centred and round), and
``crop_resize_to_disc`` does the same straight to the model's size: it crops only the part of that
square inside the image, resizes it, and pads with black *after* resizing, so a tall thin image never
allocates a full-resolution square. ``ben_graham`` is
the enhancement used on APTOS 2019 (4·img − 4·GaussianBlur(img, σ) + 128), optionally with ``circular_mask``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

__all__ = ["DiscBox", "ben_graham", "circular_mask", "crop_resize_to_disc", "crop_to_disc", "locate_disc"]

#: Gray level (0–255) above which a pixel belongs to the disc.
DEFAULT_THRESHOLD = 10
#: Side of the thumbnail on which the disc is located, px.
_THUMBNAIL_SIDE = 256


@dataclass(frozen=True, kw_only=True)
class DiscBox:
    """Bounding box of the fundus disc in image pixels, ``right``/``bottom`` exclusive."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        """Width of the box, px."""
        return self.right - self.left

    @property
    def height(self) -> int:
        """Height of the box, px."""
        return self.bottom - self.top


def locate_disc(image: Image.Image, *, threshold: int = DEFAULT_THRESHOLD) -> DiscBox | None:
    """Find the bright disc's bounding box; ``None`` when no pixel (or every pixel) exceeds ``threshold``."""
    width, height = image.size
    thumb = image.convert("L")
    step = max(1, max(width, height) // _THUMBNAIL_SIDE)
    if step > 1:
        thumb = thumb.reduce(step)
    gray = np.asarray(thumb)
    mask = gray > threshold
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return None
    scale_y = height / gray.shape[0]
    scale_x = width / gray.shape[1]
    box = DiscBox(
        left=max(0, int(cols[0] * scale_x)),
        top=max(0, int(rows[0] * scale_y)),
        right=min(width, int(np.ceil((cols[-1] + 1) * scale_x))),
        bottom=min(height, int(np.ceil((rows[-1] + 1) * scale_y))),
    )
    if box.width >= width and box.height >= height and mask.all():
        return None  # no dark surround: not a fundus framing we can improve on
    return box


def crop_to_disc(
    image: Image.Image, *, threshold: int = DEFAULT_THRESHOLD, margin: float = 0.02
) -> Image.Image:
    """Crop to the square around the disc plus ``margin`` (fraction of its side), padding with black."""
    box = locate_disc(image, threshold=threshold)
    if box is None:
        return image
    left, top, side = _disc_square(box, margin)
    # Image.crop pads regions outside the image with black (zeros).
    return image.crop((left, top, left + side, top + side))


def crop_resize_to_disc(
    image: Image.Image,
    *,
    size: tuple[int, int],
    threshold: int = DEFAULT_THRESHOLD,
    margin: float = 0.02,
) -> Image.Image:
    """The disc's square (as :func:`crop_to_disc`) resized to ``size`` = (height, width), padded afterwards.

    Only the part of the square inside the image is cropped and resized; the black padding is added at the
    output size, so memory stays at the image plus the output whatever the image's shape.
    """
    height, width = size
    box = locate_disc(image, threshold=threshold)
    if box is None:
        return image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=3.0)
    left, top, side = _disc_square(box, margin)
    inner = (max(0, left), max(0, top), min(image.width, left + side), min(image.height, top + side))
    scale_x, scale_y = width / side, height / side
    x0, y0 = round((inner[0] - left) * scale_x), round((inner[1] - top) * scale_y)
    x1, y1 = round((inner[2] - left) * scale_x), round((inner[3] - top) * scale_y)
    region = image.crop(inner).resize(
        (max(1, x1 - x0), max(1, y1 - y0)), Image.Resampling.BILINEAR, reducing_gap=3.0
    )
    canvas = Image.new(image.mode, (width, height))
    canvas.paste(region, (x0, y0))
    return canvas


def _disc_square(box: DiscBox, margin: float) -> tuple[int, int, int]:
    """Left, top and side of the square centred on ``box``, grown by ``margin`` on each side."""
    side = round(max(box.width, box.height) * (1 + 2 * margin))
    left = round((box.left + box.right) / 2 - side / 2)
    top = round((box.top + box.bottom) / 2 - side / 2)
    return left, top, side


def ben_graham(pixels: np.ndarray, *, sigma: float = 10.0) -> np.ndarray:
    """Ben Graham's local-contrast enhancement of uint8 RGB pixels: 4·img − 4·GaussianBlur(img, σ) + 128."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"Expected uint8 pixels shaped (H, W, 3), got {pixels.dtype} {pixels.shape!r}.")
    if not sigma > 0:
        raise ValueError(f"Expected a positive sigma, got {sigma!r}.")
    blurred = np.asarray(
        Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(radius=sigma)), dtype=np.int16
    )
    enhanced = 4 * pixels.astype(np.int16) - 4 * blurred + 128
    return np.clip(enhanced, 0, 255).astype(np.uint8)


def circular_mask(pixels: np.ndarray, *, scale: float = 0.9, fill: int = 128) -> np.ndarray:
    """Set pixels outside the centred circle of diameter ``scale``·min(H, W) to ``fill`` (hides the rim)."""
    height, width = pixels.shape[:2]
    yy, xx = np.ogrid[:height, :width]
    radius = scale * min(height, width) / 2
    outside = (yy - (height - 1) / 2) ** 2 + (xx - (width - 1) / 2) ** 2 > radius**2
    masked = pixels.copy()
    masked[outside] = fill
    return masked
