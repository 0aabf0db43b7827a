"""Photos that cannot be graded, and the measurement of the gradability gate against them.

Counter-examples to the synthetic fundus photos of :mod:`serving.zoo.synthetic`: pictures that are no fundus
photograph at all (``NON_FUNDUS``: noise, a flat colour, a landscape, a face on a light or a black ground) and
fundus photos spoiled the way real ones are (``SPOILED``: dark, overexposed, washed out, defocused, a retina
small in the frame). ``calibrate`` runs :func:`serving.gradability.assess` on both after a JPEG round trip, as
the server would see them, and reports each measure's range, the false-reject rate on the good photos and the
share of counter-examples caught (``dr-serving model gradability`` prints it).
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from serving.gradability import Measures, Thresholds, assess
from serving.metadata import ModelMetadata
from serving.preprocess import prepare_pixels
from serving.tensor import scale
from serving.zoo.synthetic import encode_image, make_fundus_image

__all__ = ["NON_FUNDUS", "SPOILED", "Calibration", "calibrate", "jpeg_round_trip"]

Maker = Callable[[int, np.random.Generator], Image.Image]
Spoiler = Callable[[Image.Image, np.random.Generator], Image.Image]


def jpeg_round_trip(image: Image.Image, *, quality: int = 90) -> Image.Image:
    """``image`` encoded as JPEG and decoded again (what the server receives from a camera)."""
    return Image.open(io.BytesIO(encode_image(image, "JPEG", quality=quality))).convert("RGB")


def _noise(size: int, rng: np.random.Generator) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), mode="RGB")


def _flat(size: int, rng: np.random.Generator) -> Image.Image:
    colour = tuple(int(v) for v in rng.integers(60, 230, 3))
    return Image.new("RGB", (size, size), colour)


def _landscape(size: int, rng: np.random.Generator) -> Image.Image:
    """Sky fading to the horizon, green hills, a sun."""
    height = size
    width = round(size * 4 / 3)
    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    sky = np.array([70, 130, 220], np.float32) * (1 - yy) + np.array([200, 220, 240], np.float32) * yy
    canvas = np.broadcast_to(sky, (height, width, 3)).copy()
    xx = np.arange(width, dtype=np.float32)
    horizon = height * (0.6 + 0.08 * np.sin(xx / width * 2 * math.pi * rng.uniform(1, 3) + rng.uniform(0, 6)))
    ground = np.arange(height, dtype=np.float32)[:, None] > horizon[None, :]
    canvas[ground] = np.array([60, 140, 50], np.float32) * rng.uniform(0.7, 1.1)
    picture = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(picture)
    sun = (rng.uniform(0.1, 0.9) * width, rng.uniform(0.08, 0.3) * height, 0.06 * height)
    draw.ellipse([sun[0] - sun[2], sun[1] - sun[2], sun[0] + sun[2], sun[1] + sun[2]], fill=(255, 240, 180))
    return picture


def _face(size: int, rng: np.random.Generator, *, ground: tuple[int, int, int]) -> Image.Image:
    """A skin-coloured oval with eyes, brows and a mouth on a plain ground."""
    picture = Image.new("RGB", (size, size), ground)
    draw = ImageDraw.Draw(picture)
    skin = (int(rng.integers(190, 240)), int(rng.integers(140, 180)), int(rng.integers(110, 150)))
    cx, cy, rx, ry = size / 2, size * 0.52, size * 0.30, size * 0.40
    draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=skin)
    for side in (-1, 1):
        ex, ey = cx + side * rx * 0.4, cy - ry * 0.15
        draw.ellipse([ex - size * 0.05, ey - size * 0.025, ex + size * 0.05, ey + size * 0.025], fill="white")
        draw.ellipse(
            [ex - size * 0.02, ey - size * 0.02, ex + size * 0.02, ey + size * 0.02], fill=(60, 40, 30)
        )
        draw.line(
            [ex - size * 0.06, ey - size * 0.06, ex + size * 0.06, ey - size * 0.07],
            fill=(70, 50, 40),
            width=3,
        )
    draw.arc(
        [cx - rx * 0.45, cy + ry * 0.2, cx + rx * 0.45, cy + ry * 0.55], 20, 160, fill=(150, 60, 60), width=4
    )
    return picture.filter(ImageFilter.GaussianBlur(size * 0.004))


#: Pictures that are no fundus photograph: name → (size, rng) → picture.
NON_FUNDUS: dict[str, Maker] = {
    "noise": _noise,
    "flat": _flat,
    "landscape": _landscape,
    "face": lambda size, rng: _face(size, rng, ground=(200, 205, 210)),
    "portrait_on_black": lambda size, rng: _face(size, rng, ground=(0, 0, 0)),
}


def _scaled(photo: Image.Image, factor: float) -> Image.Image:
    pixels = np.asarray(photo, dtype=np.float32) * factor
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8), mode="RGB")


def _washed_out(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Glare: the retina blended towards white, the surround kept dark."""
    pixels = np.asarray(photo, dtype=np.float32)
    lit = pixels.max(axis=2, keepdims=True) > 10
    amount = rng.uniform(0.45, 0.7)
    blended = np.where(lit, pixels * (1 - amount) + 255 * amount, pixels)
    return Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8), mode="RGB")


def _defocused(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Optical blur (Gaussian, σ = 1 % of the side), then the camera's sensor noise."""
    blurred = np.asarray(photo.filter(ImageFilter.GaussianBlur(0.01 * photo.width)), dtype=np.float32)
    lit = blurred.max(axis=2, keepdims=True) > 10
    noisy = blurred + lit * rng.normal(0, 3.0, blurred.shape)
    return Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8), mode="RGB")


def _small_field(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The photo shrunk to a third of the frame, on black."""
    side = photo.width
    small = photo.resize((side // 3, side // 3), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (side, side))
    offset = int(rng.integers(0, side - side // 3))
    canvas.paste(small, (offset, int(rng.integers(0, side - side // 3))))
    return canvas


#: Fundus photos spoiled as real ones are: name → (expected reason, (photo, rng) → spoiled photo).
SPOILED: dict[str, tuple[str, Spoiler]] = {
    "dark": ("too_dark", lambda photo, rng: _scaled(photo, rng.uniform(0.1, 0.3))),
    "overexposed": ("overexposed", lambda photo, rng: _scaled(photo, rng.uniform(2.2, 3.0))),
    "washed_out": ("overexposed", _washed_out),
    "blurred": ("blurred", _defocused),
    "small_field": ("small_field", _small_field),
}


#: The measures that tell each counter-example from a good photo (shown in the report).
_TELLING = {
    **{kind: ("corner_ratio", "roundness") for kind in NON_FUNDUS},
    "dark": ("peak", "brightness"),
    "overexposed": ("brightness",),
    "washed_out": ("brightness",),
    "blurred": ("sharpness",),
    "small_field": ("field",),
}


@dataclass(kw_only=True)
class Calibration:
    """What ``calibrate`` found: good photos rejected, counter-examples caught, and every measure's range."""

    thresholds: Thresholds
    photos: int
    false_rejects: dict[str, int] = field(default_factory=dict)
    #: kind → (caught, total, reasons seen).
    caught: dict[str, tuple[int, int, dict[str, int]]] = field(default_factory=dict)
    #: measure → (min, max) over the good photos.
    good_range: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: kind → measure → (min, max) over that kind.
    bad_range: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    #: Median time per good photo of the gate (given the crop, as the server runs it) and of the server's
    #: preprocessing (crop, resize, scale), ms.
    gate_ms: float = math.nan
    preprocess_ms: float = math.nan

    @property
    def false_reject_rate(self) -> float:
        """Share of good photos the gate refuses."""
        return sum(self.false_rejects.values()) / self.photos if self.photos else math.nan

    def table(self) -> str:
        """The report as Markdown."""
        lines = [
            f"Good synthetic photos: {self.photos}, rejected {sum(self.false_rejects.values())} "
            f"(false-reject rate {self.false_reject_rate:.2%}) {dict(self.false_rejects) or ''}".rstrip(),
            "",
            "| counter-example | caught | reasons |",
            "| --- | --- | --- |",
        ]
        for kind, (hits, total, reasons) in self.caught.items():
            shown = ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items()))
            lines.append(f"| {kind} | {hits}/{total} | {shown} |")
        lines += ["", "| measure | good photos min … max | threshold |", "| --- | --- | --- |"]
        limits = {
            "peak": f"≥ {self.thresholds.min_peak:g}",
            "corner_ratio": f"≤ {self.thresholds.max_corner_ratio:g}",
            "roundness": f"≥ {self.thresholds.min_roundness:g}",
            "field": f"≥ {self.thresholds.min_field:g}",
            "brightness": f"{self.thresholds.min_brightness:g} … {self.thresholds.max_brightness:g}",
            "sharpness": f"≥ {self.thresholds.min_sharpness:g}",
        }
        for name, (low, high) in self.good_range.items():
            lines.append(f"| {name} | {low:.3f} … {high:.3f} | {limits[name]} |")
        lines += [
            "",
            f"Cost per photo (median, interleaved): gate {self.gate_ms:.2f} ms (given the server's crop), "
            f"the server's preprocessing {self.preprocess_ms:.2f} ms.",
        ]
        lines += ["", "| counter-example | its measure min … max |", "| --- | --- |"]
        for kind, ranges in self.bad_range.items():
            shown = "; ".join(
                f"{name} {ranges[name][0]:.3f} … {ranges[name][1]:.3f}" for name in _TELLING.get(kind, ())
            )
            lines.append(f"| {kind} | {shown} |")
        return "\n".join(lines)


def _ranges(measured: list[Measures]) -> dict[str, tuple[float, float]]:
    ranges = {}
    for item in fields(Measures):
        values = np.array([getattr(m, item.name) for m in measured], dtype=np.float64)
        finite = values[np.isfinite(values)]
        ranges[item.name] = (
            (float(finite.min()), float(finite.max())) if finite.size else (math.nan, math.nan)
        )
    return ranges


def calibrate(
    *,
    photos: int = 250,
    counter_examples: int = 20,
    sizes: tuple[int, ...] = (224, 320, 512, 768),
    seed: int = 0,
    thresholds: Thresholds | None = None,
) -> Calibration:
    """Assess ``photos`` good photos and ``counter_examples`` of every kind; report what the gate did."""
    limits = thresholds or Thresholds()
    rng = np.random.default_rng(seed)
    result = Calibration(thresholds=limits, photos=photos)
    good: list[Image.Image] = []
    measured: list[Measures] = []
    gate_s: list[float] = []
    preprocess_s: list[float] = []
    metadata = ModelMetadata()
    for index in range(photos):
        size = int(sizes[index % len(sizes)])
        photo = make_fundus_image(index % 5, size=size, seed=seed * 100_003 + index)
        if len(good) < counter_examples:
            good.append(photo)
        received = jpeg_round_trip(photo, quality=int(rng.integers(75, 96)))
        # As the server does: the preprocessing first, then the gate given the model's retina crop.
        started = time.perf_counter()
        pixels = prepare_pixels(received, metadata)
        scale(pixels, scaling=metadata.scaling)
        preprocess_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        verdict = assess(received, limits, retina=pixels)
        gate_s.append(time.perf_counter() - started)
        measured.append(verdict.measures)
        if not verdict.gradable:
            result.false_rejects[str(verdict.reason)] = result.false_rejects.get(str(verdict.reason), 0) + 1
    result.good_range = _ranges(measured)
    result.gate_ms = float(np.median(gate_s)) * 1000
    result.preprocess_ms = float(np.median(preprocess_s)) * 1000
    cases: dict[str, list[Image.Image]] = {}
    for name, maker in NON_FUNDUS.items():
        cases[name] = [maker(int(sizes[i % len(sizes)]), rng) for i in range(counter_examples)]
    for name, (_, spoil) in SPOILED.items():
        cases[name] = [spoil(photo, rng) for photo in good]
    for name, pictures in cases.items():
        verdicts = [assess(jpeg_round_trip(picture), limits) for picture in pictures]
        reasons: dict[str, int] = {}
        for verdict in verdicts:
            reasons[str(verdict.reason)] = reasons.get(str(verdict.reason), 0) + 1
        hits = sum(not verdict.gradable for verdict in verdicts)
        result.caught[name] = (hits, len(verdicts), reasons)
        result.bad_range[name] = _ranges([verdict.measures for verdict in verdicts])
    return result
