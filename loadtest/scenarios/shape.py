"""Shape: drive each target with one of the Locust load shapes (constant, step, spike, seeded random)."""

from __future__ import annotations

from typing import Any

from loadtest.campaign import Campaign
from loadtest.scenarios.options import ShapeOptions, UsageError
from loadtest.shapes import SHAPES, make_shape

__all__ = ["check", "run", "shape_settings"]


def shape_settings(name: str, pairs: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> dict[str, Any]:
    """Convert ``KEY=VALUE`` strings to the types of the shape's class attributes."""
    cls = SHAPES[name]
    settings: dict[str, Any] = {}
    for key, value in pairs:
        if key.startswith("_") or not hasattr(cls, key) or callable(getattr(cls, key)):
            raise UsageError(f"Shape {name!r} has no setting {key!r}.")
        default = getattr(cls, key)
        try:
            if isinstance(default, tuple):
                settings[key] = tuple(int(part) for part in value.split(",") if part.strip())
            elif isinstance(default, bool):
                settings[key] = value.lower() in {"1", "true", "yes"}
            else:
                settings[key] = type(default)(value)
        except ValueError:
            raise UsageError(
                f"Shape setting {key!r} expects {type(default).__name__} like {default!r}, got {value!r}."
            ) from None
    return settings


def check(options: ShapeOptions, *, seed: int) -> dict[str, Any]:
    """The shape's settings, typed and checked once against the shape (``UsageError`` if they cannot work)."""
    settings = shape_settings(options.shape, options.settings)
    if options.shape == "random":
        settings.setdefault("seed", seed)
    try:
        make_shape(options.shape, **settings)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    return settings


def run(campaign: Campaign, options: ShapeOptions) -> None:
    """Run the chosen shape against each target in turn."""
    settings = check(options, seed=campaign.seed)
    campaign.settings.update(shape=options.shape, shape_settings=settings, pause_s=options.pause)
    for index, target in enumerate(campaign.targets):
        shape = make_shape(options.shape, **settings)
        message = f"shape {options.shape}: {target.name}: {shape.duration:g} s"
        campaign.run_shape(target, index, shape, pause=options.pause, message=message)
