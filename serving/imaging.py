"""Decode uploaded JPEG/PNG bytes into an RGB Pillow image, enforcing the input limits.

Steps: size of the encoded bytes → header only (format, pixel count: the decompression-bomb guard runs before
a single pixel is decoded) → smallest side → full decode → EXIF orientation → RGB (grayscale expanded, CMYK
converted, alpha flattened onto black, the colour of a fundus photograph's surround).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from serving.errors import InvalidImage, TooLarge
from serving.limits import Limits

__all__ = ["ACCEPTED_FORMATS", "decode_image", "to_rgb"]

#: Pillow format names of the images we accept.
ACCEPTED_FORMATS = ("JPEG", "PNG")

_DEFAULT_LIMITS = Limits()


def decode_image(data: bytes, *, limits: Limits = _DEFAULT_LIMITS) -> Image.Image:
    """Decode ``data`` (JPEG or PNG) into an RGB image, upright per its EXIF orientation."""
    if not data:
        raise InvalidImage("Expected a JPEG or PNG image, got an empty body.", reason="empty_body")
    if len(data) > limits.max_image_bytes:
        raise TooLarge(
            f"Expected an image of at most {limits.max_image_bytes} bytes, got {len(data)} bytes.",
            reason="too_many_bytes",
        )
    with warnings.catch_warnings():
        # Pillow's own bomb guard warns (or raises) past its global limit; ours below is stricter.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise TooLarge(
                f"Expected an image of at most {limits.max_image_pixels} pixels, got a decompression bomb "
                f"({exc.__class__.__name__}).",
                reason="too_many_pixels",
            ) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise InvalidImage(
                f"Expected a JPEG or PNG image, got {len(data)} bytes that do not decode as one "
                f"({_head(data)}).",
                reason="undecodable",
            ) from exc
        width, height = image.size
        if width * height > limits.max_image_pixels:
            raise TooLarge(
                f"Expected an image of at most {limits.max_image_pixels} pixels, "
                f"got {width}x{height} = {width * height} pixels.",
                reason="too_many_pixels",
            )
        if min(width, height) < limits.min_image_side:
            raise InvalidImage(
                f"Expected an image at least {limits.min_image_side} pixels on each side, "
                f"got {width}x{height}.",
                reason="too_small",
            )
        try:
            image.load()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise InvalidImage(
                f"Expected a complete {image.format} image, got one that fails to decode ({exc}).",
                reason="undecodable",
            ) from exc
    ImageOps.exif_transpose(image, in_place=True)
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: alpha is flattened onto black, 16-bit grayscale scaled to 8 bits."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (0, 0, 0))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        pixels = np.asarray(image, dtype=np.int64)
        top = 65535 if mode.startswith("I;16") or pixels.max(initial=0) > 255 else 255
        scaled = np.clip(pixels * 255 // top, 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, mode="L").convert("RGB")
    if mode == "F":
        pixels = np.nan_to_num(np.asarray(image, dtype=np.float64))
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L").convert("RGB")
    return image.convert("RGB")


def _head(data: bytes) -> str:
    """Describe what the bytes look like without quoting them (no image bytes in messages or logs)."""
    if data[:1] in (b"{", b"["):
        return "they look like JSON"
    if data[:4] == b"GIF8":
        return "they look like a GIF"
    if data[:2] == b"BM":
        return "they look like a BMP"
    if data[:2] == b"\xff\xd8":
        return "a truncated or corrupt JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "a truncated or corrupt PNG"
    return "unknown format"
