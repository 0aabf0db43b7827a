"""Decode uploaded JPEG/PNG bytes into an RGB Pillow image, enforcing the input limits with bounded memory.

Steps: size of the encoded bytes → header only (format, size, mode: the decompression-bomb guard, the aspect
ratio, the smallest side and the decoded-bytes budget for the mode's bit depth all run before a single pixel
is decoded) → decode, downscaled early when the caller names the size it needs (JPEG: DCT scaling inside the
decoder; PNG: ``Image.reduce`` right after decoding) → EXIF orientation → RGB (grayscale expanded, CMYK
converted, alpha flattened onto black, the colour of a fundus photograph's surround).

Integrity: a JPEG is decoded by libjpeg-turbo through ``simplejpeg`` in strict mode, so every decoder warning
(premature end of data, extraneous bytes before a marker — what a changed height or a truncated scan gives)
is an error; a PNG's chunk checksums and zlib stream are checked by Pillow, and Python warnings during
decoding are errors. The decoded size must be the declared one. Corruption that leaves a valid stream (a
flipped bit in JPEG entropy data) cannot be seen by any decoder: JPEG carries no checksum.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
import zlib

import numpy as np
import simplejpeg
from PIL import Image, UnidentifiedImageError

from serving.errors import InvalidImage, TooLarge
from serving.limits import Limits

__all__ = ["ACCEPTED_FORMATS", "decode_image", "decoded_bytes", "to_rgb"]

#: Pillow format names of the images we accept.
ACCEPTED_FORMATS = ("JPEG", "PNG")
#: Pillow modes we accept and the bytes per pixel Pillow stores for each (RGB is stored as 4 bytes).
_BYTES_PER_PIXEL = {
    "1": 1,
    "L": 1,
    "P": 1,
    "I;16": 2,
    "I;16B": 2,
    "I;16L": 2,
    "I;16N": 2,
    "LA": 4,
    "PA": 4,
    "RGB": 4,
    "RGBA": 4,
    "CMYK": 4,
    "YCbCr": 4,
    "I": 4,
    "F": 4,
}
#: EXIF orientation → the transpose that makes the image upright (EXIF 2.3, tag 0x0112).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION = 0x0112
#: Early downscaling keeps at least this many times the model's input side.
_KEEP_FACTOR = 2


def decoded_bytes(mode: str, width: int, height: int) -> int:
    """Bytes Pillow allocates for a decoded ``width`` × ``height`` image in ``mode``."""
    return _BYTES_PER_PIXEL.get(mode, 4) * width * height


def decode_image(data: bytes, *, limits: Limits, downscale_to: tuple[int, int] | None = None) -> Image.Image:
    """Decode ``data`` (JPEG or PNG) into an upright RGB image.

    With ``downscale_to`` = (height, width), large images are reduced while decoding to no less than twice
    that size on the shorter side, so memory stays near the model input rather than the photograph.
    """
    if not data:
        raise InvalidImage("Expected a JPEG or PNG image, got an empty body.", reason="empty_body")
    if len(data) > limits.max_image_bytes:
        raise TooLarge(
            f"Expected an image of at most {limits.max_image_bytes} bytes, got {len(data)} bytes.",
            reason="too_many_bytes",
        )
    with warnings.catch_warnings():
        # Any warning while decoding (Pillow's bomb guard, a truncated chunk) is an error here.
        warnings.simplefilter("error")
        image = _open(data, limits)
        keep = _KEEP_FACTOR * max(downscale_to) if downscale_to else 0
        orientation = _orientation(image)
        if image.format == "JPEG" and image.mode in ("L", "RGB"):
            decoded = _decode_jpeg(data, image.size, keep=keep, limits=limits)
        else:
            decoded = _decode_with_pillow(image, data, keep=keep, limits=limits)
    if orientation in _ORIENTATION:
        decoded = decoded.transpose(_ORIENTATION[orientation])
    return to_rgb(decoded)


def _open(data: bytes, limits: Limits) -> Image.Image:
    """Read the header only and check format, pixels, smallest side, aspect ratio, mode and decoded bytes."""
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge(
            f"Expected an image of at most {limits.max_image_pixels} pixels, got a decompression bomb "
            f"({exc.__class__.__name__}).",
            reason="too_many_pixels",
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Warning) as exc:
        raise InvalidImage(
            f"Expected a JPEG or PNG image, got {len(data)} bytes that do not decode as one ({_head(data)}).",
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
            f"Expected an image at least {limits.min_image_side} pixels on each side, got {width}x{height}.",
            reason="too_small",
        )
    ratio = max(width, height) / min(width, height)
    if ratio > limits.max_aspect_ratio:
        raise InvalidImage(
            f"Expected an aspect ratio of at most {limits.max_aspect_ratio:g}:1 (a fundus photograph), "
            f"got {width}x{height} ({ratio:.1f}:1).",
            reason="bad_aspect_ratio",
        )
    if image.mode not in _BYTES_PER_PIXEL:
        raise InvalidImage(
            f"Expected a grayscale, palette, RGB(A) or CMYK image, got Pillow mode {image.mode!r}.",
            reason="unsupported_mode",
        )
    return image


def _jpeg_eighths(shorter: int, keep: int) -> int:
    """The fewest eighths (libjpeg-turbo scales by M/8) that keep the shorter side at ``keep`` or more."""
    return next((m for m in range(1, 8) if keep and math.ceil(shorter * m / 8) >= keep), 8)


def _check_decoded_bytes(mode: str, width: int, height: int, limits: Limits) -> None:
    needed = decoded_bytes(mode, width, height)
    if needed > limits.max_decoded_bytes:
        raise TooLarge(
            f"Expected an image that decodes to at most {limits.max_decoded_bytes} bytes, got "
            f"{width}x{height} in mode {mode} = {needed} bytes.",
            reason="too_many_decoded_bytes",
        )


def _decode_jpeg(data: bytes, size: tuple[int, int], *, keep: int, limits: Limits) -> Image.Image:
    """Decode a YCbCr/grayscale JPEG strictly (warnings are errors), DCT-scaled to no less than ``keep``."""
    width, height = size
    eighths = _jpeg_eighths(min(width, height), keep)
    expected = (math.ceil(height * eighths / 8), math.ceil(width * eighths / 8))
    _check_decoded_bytes("RGB", expected[1], expected[0], limits)
    try:
        pixels = simplejpeg.decode_jpeg(
            data, colorspace="RGB", strict=True, min_height=expected[0], min_width=expected[1]
        )
    except ValueError as exc:
        raise InvalidImage(
            f"Expected a complete, uncorrupted JPEG image, got one that fails to decode ({exc}).",
            reason="corrupt_image",
        ) from None
    if pixels.shape[:2] != expected:
        raise InvalidImage(
            f"Expected the JPEG to decode to its declared {width}x{height} (scaled {eighths}/8), "
            f"got {pixels.shape[1]}x{pixels.shape[0]}.",
            reason="corrupt_image",
        )
    return Image.fromarray(pixels, mode="RGB")


def _decode_with_pillow(image: Image.Image, data: bytes, *, keep: int, limits: Limits) -> Image.Image:
    """Decode a PNG (or a CMYK JPEG, drafted) with Pillow, then reduce it towards ``keep`` px."""
    if image.format == "JPEG" and keep:
        image.draft(image.mode, (keep, keep))
    declared = image.size
    _check_decoded_bytes(image.mode, *declared, limits)
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, Warning, Image.DecompressionBombError) as exc:
        raise InvalidImage(
            f"Expected a complete, uncorrupted {image.format} image, got one that fails to decode ({exc}).",
            reason="corrupt_image",
        ) from None
    if image.size != declared:
        raise InvalidImage(
            f"Expected the {image.format} to decode to its declared {declared[0]}x{declared[1]}, "
            f"got {image.size[0]}x{image.size[1]}.",
            reason="corrupt_image",
        )
    if image.format == "PNG":
        _check_png_stream(data)
    factor = min(image.size) // keep if keep else 1
    if factor >= 2:
        if image.mode.startswith("I;16"):  # reduce() has no 16-bit path; a box resize has
            return image.resize((image.width // factor, image.height // factor), Image.Resampling.BOX)
        if image.mode in ("1", "P"):
            image = image.convert(
                "RGBA" if "transparency" in image.info else ("L" if image.mode == "1" else "RGB")
            )
        image = image.reduce(factor)
    return image


#: PNG colour type → channels (PNG spec, IHDR).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: Adam7 passes: (x start, y start, x step, y step).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _check_png_stream(data: bytes) -> None:
    """The IDAT stream must inflate to exactly the bytes IHDR declares, and end.

    A changed width or height with a recomputed checksum passes Pillow, which pads or ignores the difference.
    The stream is inflated in 64 KiB pieces that are counted, never kept.
    """
    width, height, depth, colour, interlace = struct.unpack(">IIBB2xB", data[16:29])
    bits = _PNG_CHANNELS.get(colour, 4) * depth
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    expected = 0
    for x0, y0, dx, dy in passes:
        columns, rows = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if columns > 0 and rows > 0:
            expected += rows * (1 + -(-(columns * bits) // 8))
    inflater = zlib.decompressobj()
    produced, offset = 0, 8
    try:
        while offset + 8 <= len(data):
            length, kind = struct.unpack(">I4s", data[offset : offset + 8])
            if kind == b"IDAT":
                pending = data[offset + 8 : offset + 8 + length]
                while pending:
                    produced += len(inflater.decompress(pending, 65536))
                    pending = inflater.unconsumed_tail
                    if produced > expected:
                        break
            elif kind == b"IEND":
                break
            offset += 12 + length
        produced += len(inflater.flush())
    except zlib.error as exc:
        raise InvalidImage(
            f"Expected a complete PNG image, got corrupt image data ({exc}).", reason="corrupt_image"
        ) from None
    if produced != expected or not inflater.eof:
        raise InvalidImage(
            f"Expected the PNG's image data to hold {expected} bytes for its declared {width}x{height}, "
            f"got {produced}{'' if inflater.eof else ' in an unfinished stream'}.",
            reason="corrupt_image",
        )


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
    if mode.startswith("I;16"):
        return _sixteen_to_eight(image).convert("RGB")
    if mode == "I":
        pixels = np.asarray(image, dtype=np.int32)
        top = 65535 if pixels.max(initial=0) > 255 else 255
        scaled = (np.clip(pixels, 0, top).astype(np.uint32) * 255 // top).astype(np.uint8)
        return Image.fromarray(scaled, mode="L").convert("RGB")
    if mode == "F":
        pixels = np.nan_to_num(np.asarray(image, dtype=np.float32))
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L").convert("RGB")
    return image.convert("RGB")


def _sixteen_to_eight(image: Image.Image) -> Image.Image:
    """16-bit grayscale → 8-bit ``L`` (divided by 256 in 16 bits, then narrowed; no 64-bit intermediate)."""
    return image.point(lambda value: value / 256).convert("L")


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except (OSError, ValueError, SyntaxError, TypeError, Warning):
        return 1


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
