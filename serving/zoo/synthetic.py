"""Synthetic fundus-like photographs whose lesions rise with the DR grade (numpy + Pillow only).

Not medical images: just enough structure (a vignetted orange-red disc on black, vessels branching from a
bright optic disc, a darker macula, grade-dependent lesions) for exercising the serving path and for training
a model whose outputs depend on the input. Lesions by grade:

- 0 No DR: none;
- 1 Mild: a few microaneurysms (tiny dark-red dots);
- 2 Moderate: more microaneurysms, hard exudates (small yellow flecks), a few haemorrhages;
- 3 Severe: many haemorrhages (dark-red blots), exudates, cotton-wool spots (fluffy pale patches);
- 4 Proliferative: all of grade 3 plus neovascular tangles (knots of thin new vessels).

Variation per seed: eye side, rotation of the disc–macula axis, disc position and size, brightness and colour.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = [
    "GENERATOR_VERSION",
    "GRADES",
    "LESION_KINDS",
    "FundusScene",
    "Lesion",
    "encode_image",
    "make_dataset",
    "make_fundus_image",
    "plan_scene",
    "render_scene",
]

#: Bumped whenever the photos change, so models trained on older photos are rebuilt.
GENERATOR_VERSION = 2
#: The DR grades, 0 (No DR) to 4 (Proliferative).
GRADES = (0, 1, 2, 3, 4)
#: Lesion kinds, in the order they appear as the disease progresses.
LESION_KINDS = ("microaneurysm", "exudate", "haemorrhage", "cotton_wool", "neovascular")

# (low, high) inclusive number of lesions of each kind per grade. The ranges of the totals do not overlap
# (1: 4–9, 2: 19–37, 3: 39–68, 4: 70–92), so a photo of a higher grade always has more lesions.
_LESION_COUNTS: dict[int, dict[str, tuple[int, int]]] = {
    0: {},
    1: {"microaneurysm": (4, 9)},
    2: {"microaneurysm": (10, 18), "exudate": (8, 16), "haemorrhage": (1, 3)},
    3: {"microaneurysm": (14, 24), "exudate": (12, 22), "haemorrhage": (10, 16), "cotton_wool": (3, 6)},
    4: {
        "microaneurysm": (24, 30),
        "exudate": (22, 28),
        "haemorrhage": (16, 22),
        "cotton_wool": (6, 8),
        "neovascular": (2, 4),
    },
}

# Colours (RGB in 0–1) painted over the retina.
_RETINA = np.array([0.80, 0.34, 0.13])
_VESSEL = np.array([0.42, 0.06, 0.04])
_BLOOD = np.array([0.36, 0.04, 0.03])
_EXUDATE = np.array([0.98, 0.86, 0.30])
_COTTON = np.array([0.96, 0.90, 0.74])
_DISC = np.array([1.00, 0.88, 0.62])


@dataclass(frozen=True, kw_only=True)
class Lesion:
    """One lesion: its kind, centre (pixels) and radius (pixels)."""

    kind: str
    x: float
    y: float
    radius: float


@dataclass(frozen=True, kw_only=True)
class FundusScene:
    """Everything random about one synthetic photo; :func:`render_scene` turns it into pixels."""

    grade: int
    size: int
    seed: int
    centre: tuple[float, float]
    radius: float
    axis_angle: float
    disc: tuple[float, float]
    disc_radius: float
    macula: tuple[float, float]
    brightness: float
    tint: tuple[float, float, float]
    lesions: tuple[Lesion, ...] = field(default_factory=tuple)

    def count(self, kind: str | None = None) -> int:
        """Number of lesions of ``kind`` (all kinds when ``None``)."""
        return sum(1 for lesion in self.lesions if kind is None or lesion.kind == kind)


def _check_grade(grade: int) -> None:
    if isinstance(grade, bool) or grade not in GRADES:
        raise ValueError(f"Grade must be one of {list(GRADES)!r}, got {grade!r}.")


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 64:
        raise ValueError(f"Image size must be an integer >= 64 pixels, got {size!r}.")


def plan_scene(grade: int, *, size: int = 512, seed: int | None = None) -> FundusScene:
    """Draw the random layout of one photo of ``grade`` (same seed, same scene)."""
    _check_grade(grade)
    _check_size(size)
    if seed is None:
        seed = int(np.random.default_rng().integers(2**63))
    rng = np.random.default_rng([seed, grade, size])
    radius = size * rng.uniform(0.40, 0.47)
    centre = (size / 2 + rng.uniform(-0.04, 0.04) * size, size / 2 + rng.uniform(-0.04, 0.04) * size)
    # The disc sits on the nasal side of the centre, the macula on the temporal side; the axis rotates a
    # little and the eye side (left/right) flips it.
    side = 0.0 if rng.random() < 0.5 else math.pi
    axis = side + rng.uniform(-0.35, 0.35)
    disc_distance = radius * rng.uniform(0.30, 0.42)
    disc = (centre[0] + disc_distance * math.cos(axis), centre[1] + disc_distance * math.sin(axis))
    macula_distance = radius * rng.uniform(0.22, 0.32)
    macula = (centre[0] - macula_distance * math.cos(axis), centre[1] - macula_distance * math.sin(axis))
    lesions: list[Lesion] = []
    for kind in LESION_KINDS:
        low, high = _LESION_COUNTS[grade].get(kind, (0, 0))
        for _ in range(int(rng.integers(low, high + 1))):
            lesions.append(_place_lesion(kind, rng, centre=centre, radius=radius, disc=disc, macula=macula))
    return FundusScene(
        grade=grade,
        size=size,
        seed=seed,
        centre=centre,
        radius=radius,
        axis_angle=axis,
        disc=disc,
        disc_radius=radius * rng.uniform(0.10, 0.14),
        macula=macula,
        brightness=float(rng.uniform(0.75, 1.15)),
        tint=(float(rng.uniform(0.92, 1.08)), float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.75, 1.25))),
        lesions=tuple(lesions),
    )


def _place_lesion(
    kind: str,
    rng: np.random.Generator,
    *,
    centre: tuple[float, float],
    radius: float,
    disc: tuple[float, float],
    macula: tuple[float, float],
) -> Lesion:
    if kind == "neovascular":
        # New vessels grow at the disc or along the main arcades.
        anchor, spread = (disc, 0.25) if rng.random() < 0.6 else (centre, 0.6)
    elif kind == "exudate":
        # Hard exudates cluster around the macula.
        anchor, spread = (macula, 0.35) if rng.random() < 0.7 else (centre, 0.75)
    else:
        anchor, spread = centre, 0.8
    angle = rng.uniform(0, 2 * math.pi)
    distance = radius * spread * math.sqrt(rng.random())
    x, y = anchor[0] + distance * math.cos(angle), anchor[1] + distance * math.sin(angle)
    # Keep every lesion inside the retina.
    dx, dy = x - centre[0], y - centre[1]
    limit = radius * 0.9
    if math.hypot(dx, dy) > limit:
        scale = limit / math.hypot(dx, dy)
        x, y = centre[0] + dx * scale, centre[1] + dy * scale
    size_factor = {
        "microaneurysm": (0.008, 0.014),
        "exudate": (0.008, 0.020),
        "haemorrhage": (0.020, 0.045),
        "cotton_wool": (0.035, 0.060),
        "neovascular": (0.060, 0.100),
    }[kind]
    return Lesion(kind=kind, x=x, y=y, radius=radius * rng.uniform(*size_factor))


def _paint(canvas: np.ndarray, mask: Image.Image, colour: np.ndarray, *, strength: float = 1.0) -> None:
    alpha = np.asarray(mask, dtype=np.float32)[..., None] * (strength / 255.0)
    canvas *= 1.0 - alpha
    canvas += alpha * colour


def _draw_vessel(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    *,
    start: tuple[float, float],
    angle: float,
    width: float,
    length: float,
    depth: int,
) -> None:
    x, y = start
    step = max(length / 24, 1.0)
    for _ in range(24):
        angle += rng.normal(0, 0.12)
        nx, ny = x + step * math.cos(angle), y + step * math.sin(angle)
        draw.line([(x, y), (nx, ny)], fill=255, width=max(round(width), 1))
        x, y = nx, ny
        width *= 0.985
        if depth > 0 and rng.random() < 0.09:
            _draw_vessel(
                draw,
                rng,
                start=(x, y),
                angle=angle + rng.choice([-1, 1]) * rng.uniform(0.4, 0.9),
                width=width * 0.7,
                length=length * 0.55,
                depth=depth - 1,
            )


def _draw_tangle(draw: ImageDraw.ImageDraw, rng: np.random.Generator, lesion: Lesion, width: int) -> None:
    for _ in range(int(rng.integers(5, 9))):
        x = lesion.x + rng.uniform(-0.5, 0.5) * lesion.radius
        y = lesion.y + rng.uniform(-0.5, 0.5) * lesion.radius
        angle = rng.uniform(0, 2 * math.pi)
        points = [(x, y)]
        for _ in range(14):
            angle += rng.normal(0, 0.9)
            x += lesion.radius * 0.18 * math.cos(angle)
            y += lesion.radius * 0.18 * math.sin(angle)
            points.append((x, y))
        draw.line(points, fill=255, width=width, joint="curve")


def render_scene(scene: FundusScene) -> Image.Image:
    """Paint a planned scene as an RGB photo."""
    size, radius = scene.size, scene.radius
    rng = np.random.default_rng([scene.seed, scene.grade, size, 1])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    distance = np.hypot(xx - scene.centre[0], yy - scene.centre[1]) / radius

    # Retina: orange-red with smooth low-frequency texture.
    coarse = rng.normal(0, 1, (8, 8)).astype(np.float32)
    texture = np.asarray(
        Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32
    )
    canvas = np.empty((size, size, 3), dtype=np.float32)
    canvas[:] = _RETINA
    canvas *= (1.0 + 0.06 * texture)[..., None]

    def layer() -> tuple[Image.Image, ImageDraw.ImageDraw]:
        mask = Image.new("L", (size, size), 0)
        return mask, ImageDraw.Draw(mask)

    def blob(draw: ImageDraw.ImageDraw, x: float, y: float, r: float) -> None:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=255)

    # Macula: a darker, soft patch.
    macula, draw = layer()
    blob(draw, *scene.macula, radius * 0.16)
    _paint(canvas, macula.filter(ImageFilter.GaussianBlur(radius * 0.08)), _BLOOD, strength=0.45)

    # Vessels: four arcades leaving the disc, branching as they go.
    vessels, draw = layer()
    toward_macula = scene.axis_angle + math.pi
    for offset in (-0.9, 0.9, -2.3, 2.3):
        _draw_vessel(
            draw,
            rng,
            start=scene.disc,
            angle=toward_macula + offset,
            width=radius * rng.uniform(0.018, 0.026),
            length=radius * rng.uniform(1.0, 1.4),
            depth=3,
        )
    _paint(canvas, vessels.filter(ImageFilter.GaussianBlur(0.6)), _VESSEL, strength=0.85)

    # Optic disc: bright, with a soft rim.
    disc, draw = layer()
    blob(draw, *scene.disc, scene.disc_radius)
    _paint(canvas, disc.filter(ImageFilter.GaussianBlur(scene.disc_radius * 0.25)), _DISC, strength=0.9)

    # Lesions, one layer per kind.
    thin = max(round(radius * 0.006), 1)
    layers = {kind: layer() for kind in LESION_KINDS}
    for lesion in scene.lesions:
        mask_draw = layers[lesion.kind][1]
        if lesion.kind == "neovascular":
            _draw_tangle(mask_draw, rng, lesion, thin)
        elif lesion.kind == "exudate":
            # Irregular flecks: a few overlapping small ellipses.
            for _ in range(int(rng.integers(1, 4))):
                r = lesion.radius * rng.uniform(0.5, 1.0)
                blob(mask_draw, lesion.x + rng.normal(0, r), lesion.y + rng.normal(0, r), r)
        else:
            blob(mask_draw, lesion.x, lesion.y, lesion.radius)
    blur = {"microaneurysm": 0.5, "exudate": 0.7, "haemorrhage": radius * 0.01, "cotton_wool": radius * 0.02}
    _paint(canvas, layers["microaneurysm"][0].filter(ImageFilter.GaussianBlur(blur["microaneurysm"])), _BLOOD)
    _paint(
        canvas,
        layers["haemorrhage"][0].filter(ImageFilter.GaussianBlur(blur["haemorrhage"])),
        _BLOOD,
        strength=0.9,
    )
    _paint(
        canvas,
        layers["exudate"][0].filter(ImageFilter.GaussianBlur(blur["exudate"])),
        _EXUDATE,
        strength=0.95,
    )
    _paint(
        canvas,
        layers["cotton_wool"][0].filter(ImageFilter.GaussianBlur(blur["cotton_wool"])),
        _COTTON,
        strength=0.8,
    )
    _paint(canvas, layers["neovascular"][0].filter(ImageFilter.GaussianBlur(0.5)), _VESSEL, strength=0.9)

    # Vignette, camera colour and brightness, sensor noise, black outside the retina.
    vignette = np.clip(1.0 - 0.55 * distance**2.5, 0.0, 1.0)
    edge = np.clip((1.0 - distance) * radius / 2.0, 0.0, 1.0)
    canvas *= (vignette * edge)[..., None]
    canvas *= np.asarray(scene.tint, dtype=np.float32) * scene.brightness
    canvas += rng.normal(0, 0.012, canvas.shape).astype(np.float32) * edge[..., None]
    pixels = np.clip(canvas * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="RGB")


def make_fundus_image(grade: int, *, size: int = 512, seed: int | None = None) -> Image.Image:
    """A synthetic fundus-like RGB photo, ``size``×``size``, whose lesions rise with ``grade`` (0–4)."""
    return render_scene(plan_scene(grade, size=size, seed=seed))


def encode_image(img: Image.Image, fmt: str = "JPEG", *, quality: int = 90) -> bytes:
    """Encode ``img`` as JPEG or PNG bytes."""
    name = fmt.upper()
    if name not in {"JPEG", "JPG", "PNG"}:
        raise ValueError(f"Image format must be 'JPEG' or 'PNG', got {fmt!r}.")
    buffer = io.BytesIO()
    if name == "PNG":
        img.save(buffer, format="PNG")
    else:
        img.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def make_dataset(n: int, *, size: int = 512, seed: int = 0) -> Iterator[tuple[Image.Image, int]]:
    """Yield ``n`` (image, grade) pairs, grades balanced and interleaved (0, 1, 2, 3, 4, 0, …)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"Dataset size must be a non-negative integer, got {n!r}.")
    seeds = np.random.default_rng(seed).integers(0, 2**63, size=n)
    for index in range(n):
        grade = GRADES[index % len(GRADES)]
        yield make_fundus_image(grade, size=size, seed=int(seeds[index])), grade
