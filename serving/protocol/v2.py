"""Open Inference Protocol (V2): one input, ``BYTES [N]`` encoded images or ``FP32 [N, H, W, 3]`` pixels.

Encoded images arrive as base64 strings in JSON ``data`` or, with the binary tensor extension, as raw
length-prefixed bytes; pixels already scaled for the model arrive as JSON ``data`` or raw little-endian
float32.
The binary extension: header ``inference-header-content-length`` = length of the leading JSON, each binary
input has ``parameters.binary_data_size``. The answer has outputs grade, probabilities, referable and label.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from serving.client import V2_BINARY_HEADER
from serving.errors import InvalidRequest
from serving.grading import Grading
from serving.limits import Limits
from serving.protocol.common import (
    Batch,
    ImageBatch,
    TensorBatch,
    Timings,
    b64decode,
    check_batch,
    describe,
    parse_json,
)

__all__ = [
    "BINARY_HEADER",
    "V2",
    "V2Codec",
    "V2Input",
    "V2Request",
    "input_types",
    "output_types",
    "parse_body",
    "response",
    "to_batch",
]

#: Header of the V2 binary tensor extension (byte length of the JSON that starts the body), as servers see it.
BINARY_HEADER = V2_BINARY_HEADER.lower()


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


def parse_body(body: bytes, *, headers: Mapping[str, str]) -> V2Request:
    """Parse a V2 infer body, JSON or JSON + binary tensors (``inference-header-content-length``)."""
    header = headers.get(BINARY_HEADER)
    raw = b""
    if header is not None:
        if not header.strip().isdigit() or len(header) > 18:
            raise InvalidRequest(
                f"Expected header {BINARY_HEADER!r} to be an integer, got {header[:40]!r}.",
                reason="invalid_header",
            )
        json_length = int(header)
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
            f'Expected a JSON object with "inputs", got {describe(document)}.', reason="invalid_json"
        )
    items = document.get("inputs")
    if not isinstance(items, list) or not items:
        raise InvalidRequest(
            f'Expected "inputs" to be a non-empty list, got {describe(items)}.', reason="invalid_json"
        )
    inputs: list[V2Input] = []
    offset = 0
    for index, item in enumerate(items):
        where = f"inputs[{index}]"
        if not isinstance(item, dict):
            raise InvalidRequest(
                f"Expected {where} to be an object, got {describe(item)}.", reason="invalid_json"
            )
        name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
        if not isinstance(name, str) or not isinstance(datatype, str):
            raise InvalidRequest(
                f'Expected {where} to have string "name" and "datatype", got {_show(name)} and '
                f"{_show(datatype)}.",
                reason="invalid_json",
            )
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31 for d in shape
        ):
            raise InvalidRequest(
                f"Expected {where}.shape to be a list of non-negative integers, got {_show(shape)}.",
                reason="invalid_json",
            )
        parameters = item.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise InvalidRequest(f"Expected {where}.parameters to be an object, got {describe(parameters)}.")
        entry = V2Input(name=name[:200], datatype=datatype.upper()[:20], shape=shape, parameters=parameters)
        if "data" in item:
            if not isinstance(item["data"], list):
                raise InvalidRequest(f"Expected {where}.data to be a list, got {describe(item['data'])}.")
            entry.data = item["data"]
        elif "binary_data_size" in parameters:
            size = parameters["binary_data_size"]
            if isinstance(size, bool) or not isinstance(size, int) or size < 0 or offset + size > len(raw):
                raise InvalidRequest(
                    f"Expected {where}.parameters.binary_data_size to fit the {len(raw) - offset} "
                    f"binary bytes left, got {_show(size)}.",
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


def to_batch(request: V2Request, *, height: int, width: int, limits: Limits) -> Batch:
    """The images (BYTES input) or preprocessed pixels (FP32 ``[N, height, width, 3]``) of a V2 request."""
    if len(request.inputs) != 1:
        names = [entry.name for entry in request.inputs][:5]
        raise InvalidRequest(f"Expected exactly one input tensor, got {len(request.inputs)}: {names!r}.")
    entry = request.inputs[0]
    count = math.prod(entry.shape) if entry.shape else 0
    if entry.datatype == "BYTES":
        if len(entry.shape) not in (1, 2) or (len(entry.shape) == 2 and entry.shape[1] != 1):
            raise InvalidRequest(
                f"Expected a BYTES input shaped [N] (or [N, 1]), got {entry.shape[:6]!r}.",
                reason="wrong_shape",
            )
        check_batch(count, limits)
        if entry.raw is not None:
            images = _split_length_prefixed(entry.raw, limits=limits)
        else:
            flat = _flatten(entry.data or [], limit=count + 1)
            images = [
                b64decode(item, where=f"inputs[0].data[{index}]", limits=limits)
                for index, item in enumerate(flat)
            ]
        if len(images) != count or count == 0:
            raise InvalidRequest(
                f"Expected {count} images as the shape {entry.shape!r} says, got {len(images)}.",
                reason="wrong_shape",
            )
        return ImageBatch(images=tuple(images), codec=V2, request_id=request.id)
    if entry.datatype == "FP32":
        expected = ["N", height, width, 3]
        if len(entry.shape) != 4 or entry.shape[1:] != [height, width, 3] or entry.shape[0] < 1:
            raise InvalidRequest(
                f"Expected an FP32 input shaped {expected!r}, got {entry.shape[:6]!r}.", reason="wrong_shape"
            )
        check_batch(entry.shape[0], limits)
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
            except (ValueError, TypeError, OverflowError):
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
        return TensorBatch(tensor=tensor, codec=V2, request_id=request.id)
    raise InvalidRequest(
        f"Expected input datatype 'BYTES' (encoded images) or 'FP32' (pixels), got {entry.datatype!r}.",
        reason="wrong_dtype",
    )


def response(
    gradings: Sequence[Grading], *, model: str, request_id: str | None, prediction_ms: float, server_ms: float
) -> dict[str, Any]:
    """The V2 answer: outputs grade INT64 [N], probabilities FP32 [N,k], referable BOOL, label BYTES.

    When the gradability gate looked at the images: also gradable BOOL [N] and ungradable_reason BYTES [N]
    (``""`` for a gradable image).
    """
    count = len(gradings)
    classes = len(gradings[0].probabilities) if gradings else 0
    answer: dict[str, Any] = {
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
    if any(g.gradable is not None for g in gradings):
        answer["outputs"] += [
            {
                "name": "gradable",
                "datatype": "BOOL",
                "shape": [count],
                "data": [g.gradable for g in gradings],
            },
            {
                "name": "ungradable_reason",
                "datatype": "BYTES",
                "shape": [count],
                "data": [g.ungradable_reason or "" for g in gradings],
            },
        ]
    return answer


def input_types(*, input_name: str, height: int, width: int) -> list[dict[str, Any]]:
    """V2 metadata ``inputs``: encoded images (BYTES) or preprocessed pixels (FP32), one per request."""
    return [
        {"name": "image_bytes", "datatype": "BYTES", "shape": [-1]},
        {"name": input_name, "datatype": "FP32", "shape": [-1, height, width, 3]},
    ]


def output_types(*, num_classes: int, gradability: bool = False) -> list[dict[str, Any]]:
    """V2 metadata ``outputs``, as :func:`response` writes them (``gradability``: the gate's two as well)."""
    outputs = [
        {"name": "grade", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, num_classes]},
        {"name": "referable", "datatype": "BOOL", "shape": [-1]},
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
    ]
    if gradability:
        outputs += [
            {"name": "gradable", "datatype": "BOOL", "shape": [-1]},
            {"name": "ungradable_reason", "datatype": "BYTES", "shape": [-1]},
        ]
    return outputs


class V2Codec:
    """The Open Inference Protocol (V2) codec, JSON and binary."""

    name = "v2"

    def decode(
        self, body: Any, headers: Mapping[str, str], *, limits: Limits, input_size: tuple[int, int]
    ) -> Batch:
        """A V2 body (JSON, or JSON + binary tensors) → images or pixels."""
        height, width = input_size
        return to_batch(parse_body(bytes(body), headers=headers), height=height, width=width, limits=limits)

    def encode(
        self, gradings: Sequence[Grading], *, model: str, request_id: str | None, timings: Timings
    ) -> dict[str, Any]:
        """The V2 answer."""
        return response(
            gradings,
            model=model,
            request_id=request_id,
            prediction_ms=timings.prediction_ms,
            server_ms=timings.server_ms,
        )


V2 = V2Codec()


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
            check_batch(len(items), limits)
    return items


def _flatten(data: list[Any], *, limit: int) -> list[Any]:
    """Flatten nested lists without recursion, stopping after ``limit`` items."""
    flat: list[Any] = []
    stack = [iter(data)]
    while stack and len(flat) < limit:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        else:
            flat.append(item)
    return flat


_END = object()


def _show(value: Any) -> str:
    """A short value quoted as it came (``repr``); a long or huge one only described."""
    try:
        text = repr(value)
    except ValueError:  # an integer beyond the 4300-digit conversion limit
        return describe(value)
    return text if len(text) <= 80 else describe(value)
