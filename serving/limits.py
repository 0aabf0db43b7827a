"""Input and wire limits: how many bytes, pixels, images, seconds and requests one predictor accepts.

Defaults (override with the environment, and flags of ``dr-serving serve`` over the environment):

| limit | default | environment | flag |
| --- | --- | --- | --- |
| encoded image size (raw-image body limit) | 20 MiB | ``DR_MAX_IMAGE_BYTES`` | ``--max-image-bytes`` |
| decoded pixels (bomb guard) | 40 000 000 (40 MP) | ``DR_MAX_IMAGE_PIXELS`` | ``--max-image-pixels`` |
| decoded bytes per image (mode, bit depth) | 128 MiB | ``DR_MAX_DECODED_BYTES`` | ``--max-decoded-bytes`` |
| longer side / shorter side | 2.5 | ``DR_MAX_ASPECT_RATIO`` | ``--max-aspect-ratio`` |
| shorter image side | 32 px | ``DR_MIN_IMAGE_SIDE`` | ``--min-image-side`` |
| images per request | 32 | ``DR_MAX_BATCH`` | ``--max-batch`` |
| JSON / V2 body | min(batch × b64 image, 32 MiB) | ``DR_MAX_REQUEST_BYTES`` | ``--max-request-bytes`` |
| images decoded at once | 2 | ``DR_DECODE_SLOTS`` | ``--decode-slots`` |
| prediction requests in flight | 64 | ``DR_MAX_INFLIGHT`` | ``--max-inflight`` |
| request header bytes | 64 KiB | ``DR_MAX_HEADER_BYTES`` | ``--max-header-bytes`` |
| time to receive the headers | 10 s | ``DR_HEADER_TIMEOUT_SECONDS`` | ``--header-timeout-seconds`` |
| time to receive the body | 30 s | ``DR_BODY_TIMEOUT_SECONDS`` | ``--body-timeout-seconds`` |

A fundus camera writes 3–24 MP images of 1–8 MB in aspect ratios from 1:1 to about 16:9, so the defaults
accept every real photograph with room to spare. Memory per request is bounded by the body limit of its
route plus, per decode slot, ``max_decoded_bytes`` (see the README's limits section for the figures).
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
    "ENVIRONMENT",
    "Limits",
    "env_number",
]

DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
DEFAULT_MIN_IMAGE_SIDE = 32
DEFAULT_MAX_BATCH = 32

#: Field name → environment variable.
ENVIRONMENT = {
    "max_image_bytes": "DR_MAX_IMAGE_BYTES",
    "max_image_pixels": "DR_MAX_IMAGE_PIXELS",
    "max_decoded_bytes": "DR_MAX_DECODED_BYTES",
    "max_aspect_ratio": "DR_MAX_ASPECT_RATIO",
    "min_image_side": "DR_MIN_IMAGE_SIDE",
    "max_batch": "DR_MAX_BATCH",
    "max_request_bytes": "DR_MAX_REQUEST_BYTES",
    "decode_slots": "DR_DECODE_SLOTS",
    "max_inflight": "DR_MAX_INFLIGHT",
    "max_header_bytes": "DR_MAX_HEADER_BYTES",
    "header_timeout_seconds": "DR_HEADER_TIMEOUT_SECONDS",
    "body_timeout_seconds": "DR_BODY_TIMEOUT_SECONDS",
}
#: Body limit of routes that carry no image (GET, metadata), bytes.
SMALL_BODY_BYTES = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class Limits:
    """The input and wire limits one predictor enforces."""

    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_decoded_bytes: int = 128 * 1024 * 1024
    max_aspect_ratio: float = 2.5
    min_image_side: int = DEFAULT_MIN_IMAGE_SIDE
    max_batch: int = DEFAULT_MAX_BATCH
    max_request_bytes: int = 32 * 1024 * 1024
    decode_slots: int = 2
    max_inflight: int = 64
    max_header_bytes: int = 64 * 1024
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type == "float":
                if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                    raise ValueError(f"Expected {field.name} to be a positive number, got {value!r}.")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Expected {field.name} to be a positive integer, got {value!r}.")
        if self.max_aspect_ratio < 1:
            raise ValueError(f"Expected max_aspect_ratio to be 1 or more, got {self.max_aspect_ratio!r}.")

    @property
    def max_body_bytes(self) -> int:
        """Body limit of JSON and V2 routes: a full batch of base64 images plus JSON, at most the cap."""
        return min(self.max_batch * (self.max_image_bytes * 4 // 3 + 1024), self.max_request_bytes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: float | None) -> Limits:
        """Read ``DR_*`` limit variables from ``env`` (default ``os.environ``); non-``None`` overrides win."""
        env = os.environ if env is None else env
        kinds = {field.name: field.type for field in fields(cls)}
        values: dict[str, float] = {}
        for name, variable in ENVIRONMENT.items():
            raw = env.get(variable)
            if raw is None or raw.strip() == "":
                continue
            values[name] = env_number(variable, raw, integer=kinds[name] != "float")
        unknown = set(overrides) - set(ENVIRONMENT)
        if unknown:
            raise TypeError(f"Expected limits among {sorted(ENVIRONMENT)}, got {sorted(unknown)!r}.")
        values.update({name: value for name, value in overrides.items() if value is not None})
        return replace(cls(), **values)


def env_number(variable: str, raw: str, *, integer: bool) -> float:
    """``raw``, the value of ``$variable``, as an int (``integer``) or a float; ``ValueError`` naming both."""
    try:
        return int(raw) if integer else float(raw)
    except ValueError:
        noun = "an integer" if integer else "a number"
        raise ValueError(f"Expected {variable} to be {noun}, got {raw!r}.") from None
