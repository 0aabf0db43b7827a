"""Request parsing and response shapes for the wire protocols: KServe V1, Open Inference (V2), SageMaker.

Nothing here knows HTTP servers or KServe: bodies come in as bytes or parsed JSON, images go out as encoded
bytes (``ImageBatch``) or as an already-preprocessed float32 tensor (``TensorBatch``), answers as dicts.

- V1: raw ``image/jpeg|png`` body, or ``{"instances": [{"image_b64": "..."}, ...]}``.
- V2: one input, either ``BYTES`` ``[N]`` of encoded images (base64 strings in JSON, raw length-prefixed bytes
  with the binary tensor extension) or ``FP32`` ``[N, H, W, 3]`` of pixels already scaled for the model (JSON
  ``data`` or binary). The binary extension: header ``inference-header-content-length`` = length of the
  leading JSON, each binary input has ``parameters.binary_data_size``.
- SageMaker: ``POST /invocations`` with one raw image → ``{"predictions": [...], "requestLatency": s,
  "predictionLatency": s}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from serving.errors import InvalidImage, InvalidRequest, TooLarge, UnsupportedMediaType
from serving.grading import Grading
from serving.limits import Limits

__all__ = [
    "BINARY_HEADER",
    "IMAGE_MEDIA_TYPES",
    "ImageBatch",
    "TensorBatch",
    "V2Input",
    "V2Request",
    "media_type",
    "parse_json",
    "parse_raw_image",
    "parse_v1",
    "parse_v2_body",
    "sagemaker_response",
    "v1_response",
    "v2_batch",
    "v2_input_types",
    "v2_output_types",
    "v2_response",
]

#: Header of the V2 binary tensor extension: byte length of the JSON that starts the body.
BINARY_HEADER = "inference-header-content-length"
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/jpg", "image/pjpeg", "image/png", "application/x-image"})
JSON_MEDIA_TYPES = frozenset({"application/json", "application/cloudevents+json", "application/ld+json"})
_RAW_MEDIA_TYPES = IMAGE_MEDIA_TYPES | {"application/octet-stream"}
_DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, kw_only=True)
class ImageBatch:
    """Encoded images (JPEG/PNG bytes) from one request, and the protocol that carried them."""

    images: tuple[bytes, ...]
    protocol: str
    request_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class TensorBatch:
    """Already-preprocessed float32 pixels ``[N, H, W, 3]`` from one V2 request."""

    tensor: np.ndarray
    protocol: str = "v2"
    request_id: str | None = None


@dataclass(kw_only=True)
class V2Input:
    """One input tensor of a V2 request: JSON ``data`` or binary ``raw`` bytes."""

    name: str
    datatype: str
    shape: list[int]
    data: list[Any] | None = None
    raw: bytes | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class V2Request:
    """A parsed V2 inference request."""

    inputs: list[V2Input]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def media_type(content_type: str | None) -> str:
    """The bare media type of a ``Content-Type`` value, lower case (``""`` when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_json(body: bytes) -> Any:
    """Parse a JSON body; ``InvalidRequest`` names the position of the first error (NaN/Infinity are read)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            f"Expected a JSON body, got malformed JSON ({exc}).", reason="malformed_json"
        ) from None


def parse_raw_image(body: bytes, *, content_type: str | None, protocol: str) -> ImageBatch:
    """A body holding one encoded image; ``content_type`` must be an image type, octet-stream or absent."""
    kind = media_type(content_type)
    if kind and kind not in _RAW_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Expected an image/jpeg or image/png body, got content type {kind!r}.",
            reason="wrong_content_type",
        )
    if not body:
        raise InvalidImage("Expected a JPEG or PNG image, got an empty body.", reason="empty_body")
    return ImageBatch(images=(bytes(body),), protocol=protocol)


def parse_v1(body: Any, *, content_type: str | None, limits: Limits = _DEFAULT_LIMITS) -> ImageBatch:
    """A V1 predict body: raw image bytes, JSON bytes, or JSON already parsed (dict) → encoded images."""
    if isinstance(body, bytes | bytearray | memoryview):
        kind = media_type(content_type)
        if kind in JSON_MEDIA_TYPES:
            body = parse_json(bytes(body))
        elif kind in _RAW_MEDIA_TYPES:
            return parse_raw_image(bytes(body), content_type=content_type, protocol="v1")
        else:
            shown = kind or "none"
            raise UnsupportedMediaType(
                f"Expected content type image/jpeg, image/png or application/json, got {shown!r}.",
                reason="wrong_content_type",
            )
    if not isinstance(body, dict) or "instances" not in body:
        raise InvalidRequest(
            f'Expected a JSON object with "instances", got {_describe(body)}.', reason="invalid_json"
        )
    instances = body["instances"]
    if not isinstance(instances, list) or not instances:
        raise InvalidRequest(
            f'Expected "instances" to be a non-empty list, got {_describe(instances)}.', reason="invalid_json"
        )
    _check_batch(len(instances), limits)
    images = []
    for index, instance in enumerate(instances):
        encoded = instance.get("image_b64", instance.get("b64")) if isinstance(instance, dict) else instance
        if not isinstance(encoded, str):
            raise InvalidRequest(
                f'Expected instances[{index}] to be {{"image_b64": "<base64 JPEG/PNG>"}}, '
                f"got {_describe(instance)}.",
                reason="invalid_json",
            )
        images.append(_b64decode(encoded, where=f"instances[{index}].image_b64", limits=limits))
    return ImageBatch(images=tuple(images), protocol="v1", request_id=body.get("id"))


def parse_v2_body(body: bytes, *, headers: Mapping[str, str]) -> V2Request:
    """Parse a V2 infer body, JSON or JSON + binary tensors (``inference-header-content-length``)."""
    header = headers.get(BINARY_HEADER)
    raw = b""
    if header is not None:
        try:
            json_length = int(header)
        except ValueError:
            raise InvalidRequest(
                f"Expected header {BINARY_HEADER!r} to be an integer, got {header[:40]!r}.",
                reason="invalid_header",
            ) from None
        if not 0 < json_length <= len(body):
            raise InvalidRequest(
                f"Expected header {BINARY_HEADER!r} between 1 and the body length {len(body)}, "
                f"got {json_length}.",
                reason="invalid_header",
            )
        body, raw = body[:json_length], body[json_length:]
    if not body:
        raise InvalidRequest("Expected a V2 inference request, got an empty body.", reason="empty_body")
    document = parse_json(body)
    if not isinstance(document, dict):
        raise InvalidRequest(
            f'Expected a JSON object with "inputs", got {_describe(document)}.', reason="invalid_json"
        )
    items = document.get("inputs")
    if not isinstance(items, list) or not items:
        raise InvalidRequest(
            f'Expected "inputs" to be a non-empty list, got {_describe(items)}.', reason="invalid_json"
        )
    inputs: list[V2Input] = []
    offset = 0
    for index, item in enumerate(items):
        where = f"inputs[{index}]"
        if not isinstance(item, dict):
            raise InvalidRequest(
                f"Expected {where} to be an object, got {_describe(item)}.", reason="invalid_json"
            )
        name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
        if not isinstance(name, str) or not isinstance(datatype, str):
            raise InvalidRequest(
                f'Expected {where} to have string "name" and "datatype", got {name!r} and {datatype!r}.',
                reason="invalid_json",
            )
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise InvalidRequest(
                f"Expected {where}.shape to be a list of non-negative integers, got {shape!r}.",
                reason="invalid_json",
            )
        parameters = item.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise InvalidRequest(f"Expected {where}.parameters to be an object, got {_describe(parameters)}.")
        entry = V2Input(name=name, datatype=datatype.upper(), shape=shape, parameters=parameters)
        if "data" in item:
            if not isinstance(item["data"], list):
                raise InvalidRequest(f"Expected {where}.data to be a list, got {_describe(item['data'])}.")
            entry.data = item["data"]
        elif "binary_data_size" in parameters:
            size = parameters["binary_data_size"]
            if isinstance(size, bool) or not isinstance(size, int) or size < 0 or offset + size > len(raw):
                raise InvalidRequest(
                    f"Expected {where}.parameters.binary_data_size to fit the {len(raw) - offset} "
                    f"binary bytes left, got {size!r}.",
                    reason="invalid_binary",
                )
            entry.raw = raw[offset : offset + size]
            offset += size
        else:
            raise InvalidRequest(f'Expected {where} to carry "data" or binary data, got neither.')
        inputs.append(entry)
    request_id = document.get("id")
    parameters = document.get("parameters") or {}
    return V2Request(
        inputs=inputs,
        id=request_id if isinstance(request_id, str) else None,
        parameters=parameters if isinstance(parameters, dict) else {},
    )


def v2_batch(
    request: V2Request, *, height: int, width: int, limits: Limits = _DEFAULT_LIMITS
) -> ImageBatch | TensorBatch:
    """The images (BYTES input) or preprocessed pixels (FP32 ``[N, height, width, 3]``) of a V2 request."""
    if len(request.inputs) != 1:
        names = [entry.name for entry in request.inputs]
        raise InvalidRequest(f"Expected exactly one input tensor, got {len(names)}: {names!r}.")
    entry = request.inputs[0]
    count = math.prod(entry.shape) if entry.shape else 0
    if entry.datatype == "BYTES":
        if len(entry.shape) not in (1, 2) or (len(entry.shape) == 2 and entry.shape[1] != 1):
            raise InvalidRequest(
                f"Expected a BYTES input shaped [N] (or [N, 1]), got {entry.shape!r}.", reason="wrong_shape"
            )
        _check_batch(count, limits)
        if entry.raw is not None:
            images = _split_length_prefixed(entry.raw, limits=limits)
        else:
            images = [
                _b64decode(item, where=f"inputs[0].data[{index}]", limits=limits)
                for index, item in enumerate(_flatten(entry.data or []))
            ]
        if len(images) != count or count == 0:
            raise InvalidRequest(
                f"Expected {count} images as the shape {entry.shape!r} says, got {len(images)}.",
                reason="wrong_shape",
            )
        return ImageBatch(images=tuple(images), protocol="v2", request_id=request.id)
    if entry.datatype == "FP32":
        expected = ["N", height, width, 3]
        if len(entry.shape) != 4 or entry.shape[1:] != [height, width, 3] or entry.shape[0] < 1:
            raise InvalidRequest(
                f"Expected an FP32 input shaped {expected!r}, got {entry.shape!r}.", reason="wrong_shape"
            )
        _check_batch(entry.shape[0], limits)
        if entry.raw is not None:
            if len(entry.raw) != count * 4:
                raise InvalidRequest(
                    f"Expected {count * 4} bytes of FP32 data for shape {entry.shape!r}, "
                    f"got {len(entry.raw)}.",
                    reason="wrong_shape",
                )
            tensor = np.frombuffer(entry.raw, dtype="<f4").astype(np.float32)
        else:
            try:
                tensor = np.asarray(entry.data, dtype=np.float32)
            except (ValueError, TypeError):
                raise InvalidRequest(
                    "Expected FP32 data to be numbers, got values that are not.", reason="wrong_dtype"
                ) from None
            if tensor.size != count:
                raise InvalidRequest(
                    f"Expected {count} FP32 values for shape {entry.shape!r}, got {tensor.size}.",
                    reason="wrong_shape",
                )
        tensor = tensor.reshape(entry.shape)
        if not np.isfinite(tensor).all():
            bad = int((~np.isfinite(tensor)).sum())
            raise InvalidRequest(
                f"Expected finite FP32 pixels, got {bad} NaN or infinite values.", reason="non_finite"
            )
        return TensorBatch(tensor=tensor, request_id=request.id)
    raise InvalidRequest(
        f"Expected input datatype 'BYTES' (encoded images) or 'FP32' (pixels), got {entry.datatype!r}.",
        reason="wrong_dtype",
    )


def v1_response(
    gradings: Sequence[Grading], *, model: str, prediction_ms: float, server_ms: float
) -> dict[str, Any]:
    """The V1 answer: one ``predictions`` item per image plus batch timings."""
    return {
        "predictions": [grading.to_dict() for grading in gradings],
        "model": model,
        "batch_size": len(gradings),
        "prediction_ms": round(prediction_ms, 3),
        "server_ms": round(server_ms, 3),
    }


def v2_response(
    gradings: Sequence[Grading],
    *,
    model: str,
    request_id: str | None,
    prediction_ms: float,
    server_ms: float,
) -> dict[str, Any]:
    """The V2 answer: outputs grade INT64 [N], probabilities FP32 [N,k], referable BOOL, label BYTES."""
    count = len(gradings)
    classes = len(gradings[0].probabilities) if gradings else 0
    return {
        "id": request_id or "",
        "model_name": model,
        "model_version": None,
        "outputs": [
            {"name": "grade", "datatype": "INT64", "shape": [count], "data": [g.grade for g in gradings]},
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [count, classes],
                "data": [p for g in gradings for p in g.probabilities],
            },
            {
                "name": "referable",
                "datatype": "BOOL",
                "shape": [count],
                "data": [g.referable for g in gradings],
            },
            {"name": "label", "datatype": "BYTES", "shape": [count], "data": [g.label for g in gradings]},
        ],
        "parameters": {"prediction_ms": round(prediction_ms, 3), "server_ms": round(server_ms, 3)},
    }


def sagemaker_response(grading: Grading, *, request_s: float, prediction_s: float) -> dict[str, Any]:
    """The published study's SageMaker answer for one image."""
    return {
        "predictions": list(grading.probabilities),
        "requestLatency": round(request_s, 6),
        "predictionLatency": round(prediction_s, 6),
    }


def v2_input_types(*, input_name: str, height: int, width: int) -> list[dict[str, Any]]:
    """V2 metadata ``inputs``: encoded images (BYTES) or preprocessed pixels (FP32), one per request."""
    return [
        {"name": "image_bytes", "datatype": "BYTES", "shape": [-1]},
        {"name": input_name, "datatype": "FP32", "shape": [-1, height, width, 3]},
    ]


def v2_output_types(*, num_classes: int) -> list[dict[str, Any]]:
    """V2 metadata ``outputs``, as :func:`v2_response` writes them."""
    return [
        {"name": "grade", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, num_classes]},
        {"name": "referable", "datatype": "BOOL", "shape": [-1]},
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
    ]


def _check_batch(count: int, limits: Limits) -> None:
    if count > limits.max_batch:
        raise TooLarge(
            f"Expected at most {limits.max_batch} images per request, got {count}.", reason="batch_too_large"
        )


def _b64decode(value: Any, *, where: str, limits: Limits) -> bytes:
    if not isinstance(value, str):
        raise InvalidRequest(
            f"Expected {where} to be a base64 string, got {_describe(value)}.", reason="invalid_json"
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


def _split_length_prefixed(raw: bytes, *, limits: Limits) -> list[bytes]:
    """Split V2 binary BYTES data: each element is a little-endian uint32 length, then that many bytes."""
    items: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidRequest(
                "Expected a 4-byte length before each binary BYTES element, got a truncated one."
            )
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise InvalidRequest(
                f"Expected {length} bytes for binary element {len(items)}, got {len(raw) - offset}.",
                reason="invalid_binary",
            )
        items.append(raw[offset : offset + length])
        offset += length
        if len(items) > limits.max_batch:
            _check_batch(len(items), limits)
    return items


def _flatten(data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in data:
        if isinstance(item, list):
            flat.extend(_flatten(item))
        else:
            flat.append(item)
    return flat


def _describe(value: Any) -> str:
    """Name a JSON value's type (and size) without quoting possibly huge or binary content."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        keys = sorted(map(str, value))[:5]
        return f"an object with keys {keys!r}"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    return f"{type(value).__name__} {value!r}"
