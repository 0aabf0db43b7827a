"""Is this photo gradable? Measures a decoded photo and names the first reason it cannot be graded.

A gradable fundus photograph is a bright, round retina on a dark surround, well exposed, in focus and filling
most of the frame. Five measures, the first four on one copy reduced by an integer factor (shorter side ≥
``WORK_SIDE``), the last on the retina cropped as a fundus model's input is:

- ``corner_ratio``: mean luminance of the four corners ÷ the 99th percentile of the photo (a fundus photo's
  corners are outside the retina, black);
- ``roundness``: overlap (IoU) of the bright region with the circle of its width, clipped to the frame;
- ``field``: the retina's diameter ÷ the frame's shorter side;
- ``brightness``: mean luminance inside the retina (too dark below, overexposed or washed out above);
- ``sharpness``: edge energy of the green channel (99th percentile of |Laplacian of a Gaussian|) at σ = 1 px
  ÷ at σ = 3 px, inside the retina as the model sees it (``retina_pixels``: ``fundus.crop_resize_to_disc``
  at ``SHARPNESS_SIDE`` px): blur removes fine edges (vessel walls, lesions) before coarse ones, and the
  ratio does not depend on how much there is to see or on the exposure. When a model's own input is that
  crop (``model_input_is_retina``), the server passes its prepared pixels and the crop is not made twice.

``assess`` checks them in a fixed order (``REASONS``) and returns the first failure. The thresholds in
``Thresholds`` were measured on synthetic photos (``serving.zoo.synthetic``) against counter-examples by
``serving.gradability_check``; the README gives the figures. Nothing here knows HTTP or KServe.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from serving import fundus
from serving.client import HEADER_UNGRADABLE
from serving.metadata import ModelMetadata

__all__ = [
    "ENVIRONMENT",
    "HEADER",
    "POLICIES",
    "REASONS",
    "Assessment",
    "Measures",
    "Thresholds",
    "assess",
    "measure",
    "model_input_is_retina",
    "policy_from_env",
    "retina_pixels",
]

#: What the server does with an ungradable photo: refuse (422), grade with ``gradable: false``, or not look.
POLICIES = ("reject", "flag", "off")
#: Response header listing the reason codes of the flagged images (policy ``flag``), comma-separated.
HEADER = HEADER_UNGRADABLE
#: Environment variable of the policy (the ``--gradability`` flag wins).
ENVIRONMENT = "DR_GRADABILITY"
#: Default policy: a screening program retakes an ungradable photo while the patient is still there.
DEFAULT_POLICY = "reject"
#: Reason codes, in the order they are checked, and the sentence each gives.
REASONS = {
    "too_dark": "too dark",
    "not_fundus": "not a fundus photograph (no round retina on a dark surround)",
    "small_field": "the retina fills too little of the frame",
    "overexposed": "overexposed",
    "blurred": "out of focus",
}
#: The working copy is reduced by an integer factor keeping its shorter side at this many px or more.
WORK_SIDE = 224
#: Side the retina is resized to before measuring sharpness, px (the scale the model sees).
SHARPNESS_SIDE = 224
_RETINA_SHAPE = (SHARPNESS_SIDE, SHARPNESS_SIDE, 3)
#: Gaussian scales (px at ``SHARPNESS_SIDE``) whose edge energies are compared (blur removes fine ones first).
FINE_SIGMA = 1.0
COARSE_SIGMA = 3.0
#: Percentile of |LoG| compared: edges are sparse, so a high percentile follows them and not the sensor noise.
EDGE_PERCENTILE = 99.0
#: Shorter side under which the geometry is measured on the working copy itself, not on its half, px.
_THUMB_MIN = 112
#: Luminance above which a pixel counts as lit retina when measuring sharpness.
_LIT_LEVEL = 10
#: Pixels kept clear of the unlit surround when measuring sharpness.
_RIM_MARGIN = 6


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """Limits of each measure (see the module docstring); a photo beyond any of them is ungradable."""

    # Each default lies between the good synthetic photos and the counter-examples of serving.zoo.ungradable
    # (250 photos, 224–768 px, JPEG quality 75–95; ranges in the README).

    #: ``peak`` (99th percentile luminance, 0–255) below this: nothing in the photo is lit.
    min_peak: float = 40.0
    #: ``corner_ratio`` above this: the corners are not dark (good photos 0.0; pictures ≥ 0.5).
    max_corner_ratio: float = 0.2
    #: ``roundness`` below this: the lit region is not a disc (good ≥ 0.98; a face on black ≤ 0.77).
    min_roundness: float = 0.88
    #: ``field`` below this: the retina is small in the frame (good ≥ 0.79; shrunk to a third ≤ 0.32).
    min_field: float = 0.55
    #: ``brightness`` (mean retinal luminance, 0–255) below this: too dark (good ≥ 67; dark ≤ 29).
    min_brightness: float = 40.0
    #: ``brightness`` above this: overexposed or washed out (good ≤ 122; spoiled ≥ 149).
    max_brightness: float = 135.0
    #: ``sharpness`` below this: out of focus (good ≥ 4.4; σ = 1 % blur + noise ≤ 2.4).
    min_sharpness: float = 3.5


@dataclass(frozen=True, kw_only=True)
class Measures:
    """The measures of one photo (``nan`` where a measure could not be taken)."""

    peak: float
    corner_ratio: float
    roundness: float
    field: float
    brightness: float
    sharpness: float

    def as_dict(self) -> dict[str, float]:
        """The measures rounded to 4 digits."""
        return {name: round(value, 4) for name, value in asdict(self).items()}


@dataclass(frozen=True, kw_only=True)
class Assessment:
    """Whether a photo is gradable, the reason code and the failed check when it is not, and the measures."""

    gradable: bool
    reason: str | None
    measures: Measures
    #: The failed check, e.g. ``sharpness 1.52 < 1.8`` (empty when gradable).
    detail: str = ""

    def sentence(self) -> str:
        """The reason as words with the failed check, e.g. ``out of focus (sharpness 1.52 < 1.8)``."""
        if self.reason is None:
            return "gradable"
        return f"{REASONS[self.reason]} ({self.detail})"


def policy_from_env(value: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The policy: ``value`` (a flag), else ``$DR_GRADABILITY``, else the default; ``ValueError`` if bad."""
    env = os.environ if env is None else env
    chosen = value or (env.get(ENVIRONMENT) or "").strip().lower() or DEFAULT_POLICY
    if chosen not in POLICIES:
        raise ValueError(f"Expected {ENVIRONMENT} to be one of {list(POLICIES)!r}, got {chosen!r}.")
    return chosen


def assess(
    image: Image.Image, thresholds: Thresholds | None = None, *, retina: np.ndarray | None = None
) -> Assessment:
    """Measure ``image`` and name the first reason (``REASONS`` order) it cannot be graded, if any.

    ``retina``: ``retina_pixels(image)`` when the caller has it already (a model's prepared input).
    """
    limits = thresholds or Thresholds()
    found = measure(image, retina=retina)
    # (reason, measure, lowest allowed, highest allowed), checked in order; nan fails every check.
    checks = (
        ("too_dark", "peak", limits.min_peak, math.inf),
        ("not_fundus", "corner_ratio", -math.inf, limits.max_corner_ratio),
        ("not_fundus", "roundness", limits.min_roundness, math.inf),
        ("small_field", "field", limits.min_field, math.inf),
        ("too_dark", "brightness", limits.min_brightness, math.inf),
        ("overexposed", "brightness", -math.inf, limits.max_brightness),
        ("blurred", "sharpness", limits.min_sharpness, math.inf),
    )
    for reason, name, low, high in checks:
        value = getattr(found, name)
        if not low <= value <= high:
            bound = f"< {low:g}" if not value >= low else f"> {high:g}"
            return Assessment(
                gradable=False, reason=reason, measures=found, detail=f"{name} {value:.3g} {bound}"
            )
    return Assessment(gradable=True, reason=None, measures=found)


def measure(image: Image.Image, *, retina: np.ndarray | None = None) -> Measures:
    """Take every measure of an RGB photo (``retina``: its ``retina_pixels``, made here when ``None``)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if retina is not None and (retina.dtype != np.uint8 or retina.shape != _RETINA_SHAPE):
        raise ValueError(
            f"Expected the retina as uint8 {_RETINA_SHAPE!r}, got {retina.dtype} {retina.shape!r}."
        )
    # Geometry and exposure are measured on a copy reduced by one integer factor (shorter side ≥ WORK_SIDE),
    factor = max(1, min(rgb.size) // WORK_SIDE)
    work = rgb.reduce(factor) if factor > 1 else rgb
    # then halved: they need few pixels.
    thumb = work.reduce(2) if min(work.size) >= 2 * _THUMB_MIN else work
    gray = np.asarray(thumb.convert("L"))
    height, width = gray.shape
    # 99th percentile from the histogram (no sort): the first level with 99 % of the pixels at or below it.
    cumulative = np.cumsum(np.bincount(gray.ravel(), minlength=256))
    peak = float(np.searchsorted(cumulative, 0.99 * cumulative[-1]))
    luma = gray.astype(np.float32)
    if peak <= 0:
        return _unlit(peak, corner_ratio=math.nan)
    corner = max(2, round(0.08 * min(height, width)))
    corners = np.concatenate(
        [luma[:corner, :corner], luma[:corner, -corner:], luma[-corner:, :corner], luma[-corner:, -corner:]]
    )
    corner_ratio = float(corners.mean() / peak)
    mask = luma > max(4.0, 0.08 * peak)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return _unlit(peak, corner_ratio=corner_ratio)
    left, right = int(cols[0]), int(cols[-1]) + 1
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    radius = (right - left) / 2
    cx, cy = (left + right) / 2, (top + bottom) / 2
    yy, xx = np.ogrid[:height, :width]
    distance2 = (xx + np.float32(0.5 - cx)) ** 2 + (yy + np.float32(0.5 - cy)) ** 2
    circle = distance2 <= radius**2
    union = np.count_nonzero(circle | mask)
    roundness = float(np.count_nonzero(circle & mask) / union) if union else 0.0
    central = (distance2 <= (0.85 * radius) ** 2) & mask
    if not central.any():
        central = mask
    inside = luma[central]
    return Measures(
        peak=peak,
        corner_ratio=corner_ratio,
        roundness=roundness,
        field=float(2 * radius / min(height, width)),
        brightness=float(inside.mean()),
        sharpness=_sharpness(retina_pixels(rgb) if retina is None else retina),
    )


def retina_pixels(image: Image.Image) -> np.ndarray:
    """The retina at ``SHARPNESS_SIDE`` px, uint8 (S, S, 3): the crop a fundus model's input is made of."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.asarray(fundus.crop_resize_to_disc(rgb, size=(SHARPNESS_SIDE, SHARPNESS_SIDE)), dtype=np.uint8)


def model_input_is_retina(metadata: ModelMetadata) -> bool:
    """Whether a model's prepared pixels (``preprocess.prepare_pixels``) are exactly ``retina_pixels``."""
    steps = metadata.preprocessing
    return steps.crop_fundus and not steps.ben_graham and metadata.input_size == _RETINA_SHAPE[:2]


def _unlit(peak: float, *, corner_ratio: float) -> Measures:
    """The measures of a photo with no lit region."""
    return Measures(
        peak=peak,
        corner_ratio=corner_ratio,
        roundness=0.0,
        field=0.0,
        brightness=0.0,
        sharpness=math.nan,
    )


def _sharpness(retina: np.ndarray) -> float:
    """Fine ÷ coarse edge strength of the green channel inside the lit part of ``retina_pixels``."""
    fine, coarse = _abs_log(retina[..., 1].astype(np.float32), (FINE_SIGMA, COARSE_SIGMA))
    lit = np.asarray(Image.fromarray(retina).convert("L"))[1:-1, 1:-1] > _LIT_LEVEL
    # Stay clear of the rim and of a frame edge that clips the retina: both are edges at every scale.
    margin = _RIM_MARGIN
    lit[margin:-margin, margin:-margin] &= (
        lit[: -2 * margin, margin:-margin]
        & lit[2 * margin :, margin:-margin]
        & lit[margin:-margin, : -2 * margin]
        & lit[margin:-margin, 2 * margin :]
    )
    inside = _central_disc(SHARPNESS_SIDE - 2) & lit
    if not inside.any():
        return 0.0
    coarse_edge = _quantile(coarse[inside], EDGE_PERCENTILE / 100)
    if coarse_edge <= 0:
        return 0.0
    return _quantile(fine[inside], EDGE_PERCENTILE / 100) / coarse_edge


def _quantile(values: np.ndarray, q: float) -> float:
    """The ``q`` quantile of a 1-D array (nearest rank, by partition: no sort)."""
    rank = min(values.size - 1, int(q * values.size))
    return float(np.partition(values, rank)[rank])


def _abs_log(pixels: np.ndarray, sigmas: tuple[float, ...]) -> list[np.ndarray]:
    """|Laplacian of a Gaussian| of ``pixels`` at each of ``sigmas``, in float32 through one FFT.

    Shaped (H − 2, W − 2) like a 3×3 Laplacian's valid part. One forward transform, one inverse transform of
    the stacked products with the cached transfer functions (``_log_transfer``).
    """
    spectrum = np.fft.rfft2(pixels.astype(np.float32, copy=False))
    filtered = np.fft.irfft2(spectrum * _log_transfer(pixels.shape, tuple(sigmas)), s=pixels.shape)
    return list(np.abs(filtered[:, 1:-1, 1:-1]))


@functools.lru_cache(maxsize=8)
def _log_transfer(shape: tuple[int, int], sigmas: tuple[float, ...]) -> np.ndarray:
    """Transfer functions of the LoG at each σ on an ``rfft2`` grid, float32 stacked (σ, H, W // 2 + 1).

    The LoG at σ is −4π²|f|²·exp(−2π²σ²|f|²). Computed in float64, kept in float32: the measure moves by
    about 1e-7 of its value (float32 rounding), far inside the thresholds' margins.
    """
    height, width = shape
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius2 = fx**2 + fy**2
    stacked = np.stack([-4 * np.pi**2 * radius2 * np.exp(-2 * np.pi**2 * s**2 * radius2) for s in sigmas])
    transfer = stacked.astype(np.float32)
    transfer.setflags(write=False)
    return transfer


@functools.lru_cache(maxsize=2)
def _central_disc(side: int) -> np.ndarray:
    """Boolean (side, side) mask of the central disc of radius 0.8 × side / 2 (the retina's middle)."""
    yy, xx = np.ogrid[:side, :side]
    middle = (side - 1) / 2
    disc = (xx - middle) ** 2 + (yy - middle) ** 2 <= (0.8 * side / 2) ** 2
    disc.setflags(write=False)
    return disc
