"""Decoding uploads: formats, EXIF orientation, colour modes, size limits, decompression bombs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from serving.errors import InvalidImage, TooLarge
from serving.imaging import decode_image, to_rgb
from serving.limits import Limits

LIMITS = Limits()


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _gradient(width: int = 80, height: int = 60) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)
    pixels = np.stack(
        [
            np.tile(x, (height, 1)),
            np.full((height, width), 100, np.uint8),
            np.zeros((height, width), np.uint8),
        ],
        axis=-1,
    )
    return Image.fromarray(pixels, mode="RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"], ids=["jpeg", "png"])
def test_decodes_rgb(fmt: str) -> None:
    image = decode_image(_encode(_gradient(), fmt), limits=LIMITS)
    assert image.mode == "RGB"
    assert image.size == (80, 60)
    assert abs(int(np.asarray(image)[0, -1, 0]) - 255) <= 8


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = _encode(_gradient(80, 60), "JPEG", exif=exif.tobytes())
    image = decode_image(data, limits=LIMITS)
    assert image.size == (60, 80)


@pytest.mark.parametrize(
    ("mode", "fill", "expected"),
    [
        ("L", 200, (200, 200, 200)),
        ("LA", (200, 0), (0, 0, 0)),
        ("RGBA", (250, 100, 50, 0), (0, 0, 0)),
        ("RGBA", (250, 100, 50, 255), (250, 100, 50)),
        ("I;16", 65535, (255, 255, 255)),
    ],
    ids=["gray", "gray-alpha-transparent", "rgba-transparent-on-black", "rgba-opaque", "gray-16-bit"],
)
def test_colour_modes_become_rgb(mode: str, fill: object, expected: tuple[int, int, int]) -> None:
    image = decode_image(_encode(Image.new(mode, (40, 40), fill), "PNG"), limits=LIMITS)
    assert image.mode == "RGB"
    assert image.getpixel((5, 5)) == expected


def test_palette_with_transparency_is_flattened_on_black() -> None:
    palette = Image.new("P", (40, 40), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.info["transparency"] = 1
    assert to_rgb(palette).getpixel((0, 0)) == (0, 0, 0)


def test_cmyk_jpeg_becomes_rgb() -> None:
    image = decode_image(_encode(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), "JPEG"), limits=LIMITS)
    red, green, blue = image.getpixel((5, 5))
    assert red > 200 and green < 60 and blue < 60


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "Expected a JPEG or PNG image, got an empty body."),
        (b"not an image at all", "got 19 bytes that do not decode as one (unknown format)"),
        (b'{"instances": []}', "(they look like JSON)"),
    ],
    ids=["empty", "garbage", "json"],
)
def test_undecodable_bytes(data: bytes, message: str) -> None:
    with pytest.raises(InvalidImage) as info:
        decode_image(data, limits=LIMITS)
    assert message in str(info.value)


def test_gif_is_refused() -> None:
    with pytest.raises(InvalidImage, match="look like a GIF"):
        decode_image(_encode(Image.new("P", (40, 40)), "GIF"), limits=LIMITS)


def test_truncated_jpeg_is_refused() -> None:
    data = _encode(_gradient(400, 300), "JPEG")
    with pytest.raises(InvalidImage) as info:
        decode_image(data[: len(data) // 2], limits=LIMITS)
    assert info.value.reason == "corrupt_image"
    assert "Premature end of JPEG file" in str(info.value)


def test_too_many_bytes() -> None:
    data = _encode(_gradient(), "PNG")
    with pytest.raises(TooLarge) as info:
        decode_image(data, limits=Limits(max_image_bytes=len(data) - 1))
    assert info.value.reason == "too_many_bytes"
    assert f"got {len(data)} bytes" in str(info.value)


def test_too_many_pixels_is_refused_before_decoding() -> None:
    # A tiny PNG of a huge blank image: a decompression bomb in miniature.
    data = _encode(Image.new("L", (4000, 3000)), "PNG")
    assert len(data) < 100_000
    with pytest.raises(TooLarge) as info:
        decode_image(data, limits=Limits(max_image_pixels=10_000_000))
    assert "got 4000x3000 = 12000000 pixels" in str(info.value)
    assert info.value.reason == "too_many_pixels"


def test_beyond_pillows_own_bomb_limit_is_too_large() -> None:
    side = int((Image.MAX_IMAGE_PIXELS * 1.1) ** 0.5)
    data = _encode(Image.new("1", (side, side)), "PNG")
    with pytest.raises(TooLarge):
        decode_image(data, limits=LIMITS)


def test_tiny_image_is_refused() -> None:
    with pytest.raises(InvalidImage, match=r"at least 32 pixels on each side, got 31x200"):
        decode_image(_encode(Image.new("RGB", (31, 200)), "PNG"), limits=LIMITS)
