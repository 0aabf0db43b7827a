"""Decoding uploads: formats, EXIF orientation, colour modes, size limits, decompression bombs."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zlib
from pathlib import Path

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


# -- issue 11: memory bounded by design, integrity of what is graded -------------------------------------


def test_a_large_16_bit_png_decodes_in_a_bounded_peak(tmp_path: Path) -> None:
    """The issue's 6300² 16-bit PNG cost ~980 MiB (int64 conversion); now its decoded size + little."""
    script = tmp_path / "decode.py"
    script.write_text(
        "import io, resource, sys\n"
        "import numpy as np\n"
        "from PIL import Image\n"
        "pixels = np.zeros((6300, 6300), dtype=np.uint16); pixels[1000:5000, 1000:5000] = 40000\n"
        "buffer = io.BytesIO(); Image.fromarray(pixels).save(buffer, 'PNG'); data = buffer.getvalue()\n"
        "del pixels\n"
        "from serving.imaging import decode_image\n"
        "from serving.limits import Limits\n"
        "import gc; gc.collect()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "image = decode_image(data, limits=Limits(), downscale_to=(224, 224))\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(image.mode, image.size[0], image.size[1], (after - before) // 1024)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=True)
    mode, width, height, peak_mib = out.stdout.split()
    assert (mode, int(width), int(height)) == ("RGB", 450, 450)
    # Derived bound: the decoded 16-bit image (6300² × 2 B = 76 MiB) plus the small reduced copy.
    assert int(peak_mib) < 110, f"peak grew by {peak_mib} MiB"


@pytest.mark.parametrize(("width", "height"), [(64, 12800), (1000, 2600), (2600, 1000)])
def test_aspect_ratios_no_fundus_photo_has_are_refused_before_decoding(width: int, height: int) -> None:
    with pytest.raises(InvalidImage) as info:
        decode_image(_encode(Image.new("RGB", (width, height)), "PNG"), limits=LIMITS)
    assert info.value.reason == "bad_aspect_ratio"
    assert f"got {width}x{height}" in str(info.value)


def test_the_decoded_bytes_budget_counts_the_mode() -> None:
    limits = Limits(max_decoded_bytes=1_000_000)
    decode_image(_encode(Image.new("L", (900, 900)), "PNG"), limits=limits)  # 810 kB as L
    with pytest.raises(TooLarge) as info:
        decode_image(_encode(Image.new("RGBA", (900, 900)), "PNG"), limits=limits)  # 3.2 MB as RGBA
    assert info.value.reason == "too_many_decoded_bytes"
    assert "900x900 in mode RGBA = 3240000 bytes" in str(info.value)


def _with_height(data: bytes, height: int) -> bytes:
    sof = data.find(b"\xff\xc0")
    return data[: sof + 5] + height.to_bytes(2, "big") + data[sof + 7 :]


@pytest.mark.parametrize(("delta", "warning"), [(40, "premature end of data"), (-40, "extraneous bytes")])
def test_a_jpeg_with_a_changed_height_is_not_graded(delta: int, warning: str) -> None:
    data = _encode(_gradient(400, 300), "JPEG")
    with pytest.raises(InvalidImage) as info:
        decode_image(_with_height(data, 300 + delta), limits=LIMITS)
    assert info.value.reason == "corrupt_image"
    assert warning in str(info.value)


def test_large_jpegs_are_scaled_down_inside_the_decoder() -> None:
    data = _encode(_gradient(4000, 3000), "JPEG")
    image = decode_image(data, limits=LIMITS, downscale_to=(224, 224))
    assert image.size == (
        1000,
        750,
    )  # 2/8 of 4000x3000: the fewest eighths keeping the shorter side >= 2 x 224
    assert decode_image(data, limits=LIMITS).size == (4000, 3000)


def test_large_pngs_are_reduced_right_after_decoding() -> None:
    image = decode_image(_encode(_gradient(2000, 1500), "PNG"), limits=LIMITS, downscale_to=(224, 224))
    assert image.size == (667, 500)  # reduce(3): the shorter side stays >= 448


@pytest.mark.parametrize("height", [260, 150], ids=["grown", "shrunk"])
def test_a_png_with_a_changed_height_and_a_valid_checksum_is_not_graded(height: int) -> None:
    data = _encode(_gradient(300, 200), "PNG")
    at = data.find(b"IHDR")
    header = bytearray(data[at : at + 17])
    header[8:12] = height.to_bytes(4, "big")
    forged = data[:at] + bytes(header) + zlib.crc32(bytes(header)).to_bytes(4, "big") + data[at + 21 :]
    with pytest.raises(InvalidImage) as info:
        decode_image(forged, limits=LIMITS)
    assert info.value.reason == "corrupt_image"
    assert f"for its declared 300x{height}, got 180200" in str(info.value)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_every_png_mode_passes_the_stream_check(mode: str) -> None:
    assert decode_image(_encode(Image.new(mode, (301, 203)), "PNG"), limits=LIMITS).size == (301, 203)
