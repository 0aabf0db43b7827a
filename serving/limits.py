"""Input limits: how many bytes, pixels and images one request may carry.

Defaults (override with the environment, and flags of ``dr-serving serve`` over the environment):

| limit | default | environment | flag |
| --- | --- | --- | --- |
| encoded image size | 20 MiB | ``DR_MAX_IMAGE_BYTES`` | ``--max-image-bytes`` |
| decoded pixels (bomb guard) | 40 000 000 (40 MP) | ``DR_MAX_IMAGE_PIXELS`` | ``--max-image-pixels`` |
| shorter image side | 32 px | ``DR_MIN_IMAGE_SIDE`` | ``--min-image-side`` |
| images per request | 32 | ``DR_MAX_BATCH`` | ``--max-batch`` |

A fundus camera writes 3–24 MP images of 1–8 MB, so the defaults accept every real photograph with room to
spare. The byte limit applies to each encoded image; a request may carry ``max_batch`` of them (plus JSON).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_IMAGE_BYTES",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "DEFAULT_MIN_IMAGE_SIDE",
    "Limits",
]

DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
DEFAULT_MIN_IMAGE_SIDE = 32
DEFAULT_MAX_BATCH = 32

_ENVIRONMENT = {
    "max_image_bytes": "DR_MAX_IMAGE_BYTES",
    "max_image_pixels": "DR_MAX_IMAGE_PIXELS",
    "min_image_side": "DR_MIN_IMAGE_SIDE",
    "max_batch": "DR_MAX_BATCH",
}


@dataclass(frozen=True, kw_only=True)
class Limits:
    """The input limits one predictor enforces."""

    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    min_image_side: int = DEFAULT_MIN_IMAGE_SIDE
    max_batch: int = DEFAULT_MAX_BATCH

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Expected {field.name} to be a positive integer, got {value!r}.")

    @property
    def max_body_bytes(self) -> int:
        """Largest request body accepted: a full batch of base64-encoded images plus a little JSON."""
        return self.max_batch * (self.max_image_bytes * 4 // 3 + 1024)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: int | None) -> Limits:
        """Read ``DR_MAX_*`` variables from ``env`` (default ``os.environ``); non-``None`` overrides win."""
        env = os.environ if env is None else env
        values: dict[str, int] = {}
        for name, variable in _ENVIRONMENT.items():
            raw = env.get(variable)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[name] = int(raw)
            except ValueError:
                raise ValueError(f"Expected {variable} to be an integer, got {raw!r}.") from None
        unknown = set(overrides) - set(_ENVIRONMENT)
        if unknown:
            raise TypeError(f"Expected limits among {sorted(_ENVIRONMENT)}, got {sorted(unknown)!r}.")
        values.update({name: value for name, value in overrides.items() if value is not None})
        return replace(cls(), **values)
