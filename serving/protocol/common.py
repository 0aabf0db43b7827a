"""What every wire protocol shares: media types, JSON and base64 reading, decoded batches, the codec contract.

A ``Codec`` turns one request body into a ``Batch`` in one place (``decode``) and one batch's gradings into
the protocol's answer (``encode``); the predictor never asks which protocol it serves. Nothing here knows HTTP
servers or KServe: bodies come in as bytes (or JSON a framework already parsed), answers go out as dicts.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import orjson

from serving.errors import InvalidImage, InvalidRequest, TooLarge, UnsupportedMediaType
from serving.grading import Grading
from serving.limits import Limits

__all__ = [
    "IMAGE_MEDIA_TYPES",
    "JSON_MEDIA_TYPES",
    "RAW_MEDIA_TYPES",
    "Batch",
    "Codec",
    "Encoded",
    "ImageBatch",
    "TensorBatch",
    "Timings",
    "b64decode",
    "check_batch",
    "describe",
    "media_type",
    "parse_json",
    "raw_image",
]

IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/jpg", "image/pjpeg", "image/png", "application/x-image"})
JSON_MEDIA_TYPES = frozenset({"application/json", "application/cloudevents+json", "application/ld+json"})
RAW_MEDIA_TYPES = IMAGE_MEDIA_TYPES | {"application/octet-stream"}


@dataclass(frozen=True, kw_only=True)
class Timings:
    """Where one request's server time went, milliseconds (definitions in ``docs/architecture.md``)."""

    body_ms: float
    decode_ms: float
    queue_ms: float
    prediction_ms: float
    server_ms: float


class Codec(Protocol):
    """One wire protocol: decode a body into a batch, encode a batch's gradings into the answer."""

    name: str

    def decode(
        self, body: Any, headers: Mapping[str, str], *, limits: Limits, input_size: tuple[int, int]
    ) -> Batch:
        """The batch a request body carries; ``RequestError`` naming the problem otherwise."""
        ...

    def encode(
        self, gradings: Sequence[Grading], *, model: str, request_id: str | None, timings: Timings
    ) -> dict[str, Any]:
        """The protocol's answer for the gradings of one batch."""
        ...


@dataclass(frozen=True, kw_only=True)
class ImageBatch:
    """Encoded images (JPEG/PNG bytes) from one request, and the codec that will answer it."""

    images: tuple[bytes, ...]
    codec: Codec
    request_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class TensorBatch:
    """Already-preprocessed float32 pixels ``[N, H, W, 3]`` from one request, and its codec."""

    tensor: np.ndarray
    codec: Codec
    request_id: str | None = None


Batch = ImageBatch | TensorBatch


@dataclass(frozen=True, kw_only=True)
class Encoded:
    """A request body not decoded yet and the codec of its route (decoded in ``preprocess``)."""

    body: bytes
    codec: Codec


def media_type(content_type: str | None) -> str:
    """The bare media type of a ``Content-Type`` value, lower case (``""`` when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_json(body: bytes) -> Any:
    """Parse a JSON body; ``InvalidRequest`` names the first error (NaN/Infinity literals are read).

    orjson refuses nesting deeper than 1024 and integers beyond 64 bits; the standard library's parser, tried
    second for NaN/Infinity, refuses deep nesting with ``RecursionError`` and integers of more than 4300
    digits with ``ValueError``: each becomes a 400, never a 500.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except RecursionError:
        raise InvalidRequest(
            "Expected JSON nested at most 1000 deep, got deeper.", reason="too_deep"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError, as is the digit limit
        detail = str(exc)[:200]
        raise InvalidRequest(
            f"Expected a JSON body, got malformed JSON ({detail}).", reason="malformed_json"
        ) from None


def raw_image(body: bytes, *, content_type: str | None) -> bytes:
    """A body holding one encoded image; ``content_type`` must be an image type, octet-stream or absent."""
    kind = media_type(content_type)
    if kind and kind not in RAW_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Expected an image/jpeg or image/png body, got content type {kind!r}.",
            reason="wrong_content_type",
        )
    if not body:
        raise InvalidImage("Expected a JPEG or PNG image, got an empty body.", reason="empty_body")
    return bytes(body)


def check_batch(count: int, limits: Limits) -> None:
    """``TooLarge`` when a request carries more images than ``limits.max_batch``."""
    if count > limits.max_batch:
        raise TooLarge(
            f"Expected at most {limits.max_batch} images per request, got {count}.", reason="batch_too_large"
        )


def b64decode(value: Any, *, where: str, limits: Limits) -> bytes:
    """Decode one base64 image (a ``data:`` URL prefix is accepted), within the image byte limit."""
    if not isinstance(value, str):
        raise InvalidRequest(
            f"Expected {where} to be a base64 string, got {describe(value)}.", reason="invalid_json"
        )
    if len(value) > limits.max_image_bytes * 4 // 3 + 4:
        raise TooLarge(
            f"Expected {where} to hold at most {limits.max_image_bytes} bytes, "
            f"got {len(value)} base64 characters.",
            reason="too_many_bytes",
        )
    text = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(
            f"Expected {where} to be valid base64, got {len(value)} characters that are not.",
            reason="malformed_base64",
        ) from None
    if not data:
        raise InvalidImage(
            f"Expected {where} to hold a JPEG or PNG image, got an empty string.", reason="empty_body"
        )
    return data


def describe(value: Any) -> str:
    """Name a JSON value's type (and size) without quoting possibly huge or binary content."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        keys = sorted(str(key)[:40] for key in value)[:5]
        return f"an object with keys {keys!r}"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**40:
        return "a very large integer"
    return f"{type(value).__name__} {repr(value)[:60]}"
