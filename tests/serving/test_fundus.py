"""Fundus disc location, cropping, Ben Graham enhancement and the circular mask."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from serving.fundus import DiscBox, ben_graham, circular_mask, crop_resize_to_disc, crop_to_disc, locate_disc
from serving.zoo.synthetic import make_fundus_image


def _disc_photo(width: int, height: int, box: tuple[int, int, int, int]) -> Image.Image:
    image = Image.new("RGB", (width, height))
    ImageDraw.Draw(image).ellipse(box, fill=(190, 80, 40))
    return image


def test_locates_an_off_centre_disc() -> None:
    found = locate_disc(_disc_photo(1200, 800, (500, 100, 1100, 700)))
    assert found is not None
    for got, want in zip(
        (found.left, found.top, found.right, found.bottom), (500, 100, 1100, 700), strict=True
    ):
        assert abs(got - want) <= 1200 // 256 + 1


def test_crop_is_a_square_around_the_disc() -> None:
    cropped = crop_to_disc(_disc_photo(1200, 800, (500, 100, 1100, 700)), margin=0.0)
    width, height = cropped.size
    assert width == height
    assert abs(width - 600) <= 12
    pixels = np.asarray(cropped)
    centre = pixels[height // 2, width // 2]
    assert tuple(centre) == (190, 80, 40)
    assert pixels[0, 0].max() == 0  # corners of the square are the black surround


def test_clipped_disc_is_padded_with_black() -> None:
    # A disc cut by the top and bottom of the frame, as many fundus cameras record it.
    photo = _disc_photo(1000, 600, (200, -100, 1000, 700))
    cropped = crop_to_disc(photo, margin=0.0)
    width, height = cropped.size
    assert width == height
    assert width >= 790
    assert np.asarray(cropped)[2, width // 2].max() == 0  # padding above the clipped edge


@pytest.mark.parametrize(
    ("size", "box"),
    [
        ((1000, 600), (200, -100, 1000, 700)),
        ((1200, 800), (500, 100, 1100, 700)),
        ((500, 1200), (0, 300, 500, 800)),
    ],
    ids=["clipped-top-bottom", "off-centre", "tall"],
)
def test_crop_resize_matches_crop_then_resize(size: tuple[int, int], box: tuple[int, int, int, int]) -> None:
    """Cropping inside the image and padding after resizing gives the old full-resolution square's result."""
    photo = _disc_photo(*size, box)
    expected = np.asarray(
        crop_to_disc(photo).resize((224, 224), Image.Resampling.BILINEAR, reducing_gap=3.0), dtype=np.int16
    )
    got = np.asarray(crop_resize_to_disc(photo, size=(224, 224)), dtype=np.int16)
    assert got.shape == expected.shape == (224, 224, 3)
    # Identical inside; the seam between image and padding may move by one output pixel.
    assert np.mean(np.abs(got - expected) > 8) < 0.02


def test_crop_resize_never_builds_the_padded_square(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thin image's disc square is its long side squared; only the part inside the image is resized."""
    photo = _disc_photo(400, 1000, (0, 300, 400, 700))
    calls = []
    original = Image.Image.resize

    def spy(self: Image.Image, size: tuple[int, int], *args: object, **kwargs: object) -> Image.Image:
        calls.append(self.size)
        return original(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", spy)
    crop_resize_to_disc(photo, size=(224, 224))
    assert calls and max(w * h for w, h in calls) <= 400 * 1000


def test_all_black_or_all_bright_images_are_left_alone() -> None:
    black = Image.new("RGB", (300, 200))
    bright = Image.new("RGB", (300, 200), (120, 120, 120))
    assert locate_disc(black) is None
    assert locate_disc(bright) is None
    assert crop_to_disc(black) is black
    assert crop_to_disc(bright) is bright


def test_synthetic_fundus_is_located() -> None:
    found = locate_disc(make_fundus_image(2, size=512, seed=1))
    assert isinstance(found, DiscBox)
    assert found.width > 256 and found.height > 256


def test_ben_graham_is_4_img_minus_4_blur_plus_128() -> None:
    flat = np.full((64, 64, 3), 90, dtype=np.uint8)
    assert np.all(ben_graham(flat, sigma=5.0) == 128)  # no local contrast → mid-grey
    spot = flat.copy()
    spot[30:34, 30:34] = 120
    enhanced = ben_graham(spot, sigma=5.0).astype(int)
    # Reference: an exact separable Gaussian (Pillow approximates it with box blurs).
    taps = np.arange(-20, 21)
    kernel = np.exp(-(taps**2) / (2 * 5.0**2))
    kernel /= kernel.sum()
    plane = spot[..., 0].astype(float)
    padded = np.pad(plane, 20, mode="edge")
    rows = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="valid"), 1, padded)
    blurred = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="valid"), 0, rows)
    expected = np.clip(4 * plane - 4 * blurred + 128, 0, 255)
    assert np.abs(enhanced[..., 0] - expected).max() <= 4
    assert enhanced[32, 32, 0] > 200  # the bright spot stands out
    assert enhanced[0, 0, 0] == 128


def test_ben_graham_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="Expected uint8 pixels shaped"):
        ben_graham(np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="Expected a positive sigma, got 0"):
        ben_graham(np.zeros((8, 8, 3), dtype=np.uint8), sigma=0)


def test_circular_mask_fills_outside_the_circle() -> None:
    pixels = np.full((100, 100, 3), 7, dtype=np.uint8)
    masked = circular_mask(pixels, scale=0.9, fill=128)
    assert tuple(masked[0, 0]) == (128, 128, 128)
    assert tuple(masked[50, 50]) == (7, 7, 7)
    assert tuple(pixels[0, 0]) == (7, 7, 7)  # input untouched
