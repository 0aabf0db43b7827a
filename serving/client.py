"""The client side of the predictor's wire contract (``docs/architecture.md``), spelt once.

Header names (the predictor imports them too), request building for every protocol the predictor speaks, and
reading an answer back. No Locust, no TensorFlow, no HTTP library: a request is a path, a body and headers,
and an answer is read from a status, a header mapping and a body, so ``requests``, ``httpx``, Locust and
``http.client`` callers all use the same two functions.

Protocols:

``v1``
    raw image bytes to ``POST /v1/models/{model}:predict`` (``Content-Type: image/jpeg|png``).
``v2``
    one ``BYTES`` input, the image base64-encoded in JSON, to ``POST /v2/models/{model}/infer``.
``v2-binary``
    the same input with the V2 binary tensor extension: JSON header (length in
    ``Inference-Header-Content-Length``), then the element as a little-endian uint32 length and its bytes.
``sagemaker``
    raw image bytes to ``POST /invocations`` (SageMaker's container contract).
"""

from __future__ import annotations

import base64
import contextlib
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "HEADER_ARCH",
    "HEADER_BACKEND",
    "HEADER_BODY_MS",
    "HEADER_DECODE_MS",
    "HEADER_INSTANCE_TYPE",
    "HEADER_MODE",
    "HEADER_MODEL",
    "HEADER_NODE",
    "HEADER_POOL",
    "HEADER_POSTPROCESS_MS",
    "HEADER_PRECISION",
    "HEADER_PREDICTION_MS",
    "HEADER_QUEUE_MS",
    "HEADER_SERVER_MS",
    "HEADER_UNGRADABLE",
    "LABEL_HEADERS",
    "PROTOCOLS",
    "TIMING_HEADERS",
    "V2_BINARY_HEADER",
    "PreparedRequest",
    "ServerAnswer",
    "build_request",
    "read_answer",
]

Protocol = Literal["v1", "v2", "v2-binary", "sagemaker"]
PROTOCOLS: tuple[str, ...] = ("v1", "v2", "v2-binary", "sagemaker")

HEADER_MODEL = "X-DR-Model"
HEADER_BACKEND = "X-DR-Backend"
HEADER_PRECISION = "X-DR-Precision"
HEADER_PREDICTION_MS = "X-DR-Prediction-Ms"
"""The backend call alone, ms (the published ``predictionLatency``)."""
HEADER_SERVER_MS = "X-DR-Server-Ms"
"""From the request's arrival in the server to the start of postprocessing, ms."""
HEADER_BODY_MS = "X-DR-Body-Ms"
HEADER_DECODE_MS = "X-DR-Decode-Ms"
HEADER_QUEUE_MS = "X-DR-Queue-Ms"
HEADER_POSTPROCESS_MS = "X-DR-Postprocess-Ms"
HEADER_POOL = "X-DR-Pool"
HEADER_ARCH = "X-DR-Arch"
HEADER_INSTANCE_TYPE = "X-DR-Instance-Type"
HEADER_MODE = "X-DR-Mode"
HEADER_NODE = "X-DR-Node"
HEADER_UNGRADABLE = "X-DR-Ungradable"
"""Why a photo graded under ``DR_GRADABILITY=flag`` looked ungradable (comma-separated reasons)."""

#: Header of the V2 binary tensor extension: byte length of the JSON that starts the body.
V2_BINARY_HEADER = "Inference-Header-Content-Length"

#: Timing headers → the name of the time they carry (ms).
TIMING_HEADERS: dict[str, str] = {
    HEADER_PREDICTION_MS: "prediction_ms",
    HEADER_SERVER_MS: "server_ms",
    HEADER_BODY_MS: "body_ms",
    HEADER_DECODE_MS: "decode_ms",
    HEADER_QUEUE_MS: "queue_ms",
    HEADER_POSTPROCESS_MS: "postprocess_ms",
}

#: Label headers → the label they carry (node labels of the pool that answered, and what answered).
LABEL_HEADERS: dict[str, str] = {
    HEADER_POOL: "pool",
    HEADER_ARCH: "arch",
    HEADER_INSTANCE_TYPE: "instance_type",
    HEADER_MODE: "mode",
    HEADER_NODE: "node",
    HEADER_MODEL: "model",
    HEADER_BACKEND: "backend",
    HEADER_PRECISION: "precision",
}


@dataclass(frozen=True)
class PreparedRequest:
    """A request ready to send: ``POST`` path, body and headers."""

    path: str
    body: bytes
    headers: dict[str, str]


def build_request(
    protocol: Protocol | str,
    model: str,
    image: bytes,
    *,
    content_type: str = "image/jpeg",
    host: str | None = None,
) -> PreparedRequest:
    """The request that sends one encoded ``image`` to ``model`` over ``protocol``.

    ``content_type`` is the image's media type (``image/jpeg`` or ``image/png``); ``host`` sets the ``Host``
    header a Knative ingress routes on.
    """
    headers = {"Host": host} if host else {}
    if protocol in ("v1", "sagemaker"):
        headers["Content-Type"] = content_type
        path = f"/v1/models/{model}:predict" if protocol == "v1" else "/invocations"
        return PreparedRequest(path, image, headers)
    if protocol == "v2":
        data = [base64.b64encode(image).decode("ascii")]
        payload = {"inputs": [{"name": "image_bytes", "shape": [1], "datatype": "BYTES", "data": data}]}
        headers["Content-Type"] = "application/json"
        return PreparedRequest(f"/v2/models/{model}/infer", json.dumps(payload).encode(), headers)
    if protocol == "v2-binary":
        element = struct.pack("<I", len(image)) + image
        head = json.dumps(
            {
                "inputs": [
                    {
                        "name": "image_bytes",
                        "shape": [1],
                        "datatype": "BYTES",
                        "parameters": {"binary_data_size": len(element)},
                    }
                ]
            }
        ).encode()
        headers["Content-Type"] = "application/octet-stream"
        headers[V2_BINARY_HEADER] = str(len(head))
        return PreparedRequest(f"/v2/models/{model}/infer", head + element, headers)
    raise ValueError(f"Protocol must be one of {PROTOCOLS!r}, got {protocol!r}.")


@dataclass(frozen=True, kw_only=True)
class ServerAnswer:
    """What the server said about a request: its timings (ms), node labels and grades, where present."""

    status: int = 0
    ok: bool = False
    problem: str = ""
    """Empty for a usable answer, else one phrase on what was wrong (``HTTP 400: ...``)."""
    prediction_ms: float | None = None
    server_ms: float | None = None
    body_ms: float | None = None
    decode_ms: float | None = None
    queue_ms: float | None = None
    postprocess_ms: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    """The decoded JSON answer (``None`` when it was not JSON)."""


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _lower(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers or {}).items()}


def read_answer(status: int, headers: Mapping[str, str] | None, body: bytes | str | None) -> ServerAnswer:
    """Read timings, labels and outcome from an answer's status, headers (any case) and body.

    Timings come from the ``X-DR-*-Ms`` headers, else (prediction and server time) from the answer's own
    ``prediction_ms`` / ``server_ms`` fields (V1 top level, V2 ``parameters``; SageMaker's
    ``predictionLatency`` in seconds).
    """
    lowered = _lower(headers)
    labels = {
        label: lowered[name.lower()] for name, label in LABEL_HEADERS.items() if lowered.get(name.lower())
    }
    timings = {key: _float(lowered.get(name.lower())) for name, key in TIMING_HEADERS.items()}
    parsed: Any = None
    with contextlib.suppress(ValueError, TypeError):
        parsed = json.loads(body) if body else None
    if status != 200:
        problem = f"HTTP {status}"
        if isinstance(parsed, dict) and parsed.get("error"):
            problem += f": {parsed['error']}"
        return ServerAnswer(status=status, problem=problem, labels=labels, body=parsed, **timings)
    if not isinstance(parsed, dict):
        return ServerAnswer(status=status, problem="answer is not JSON", labels=labels, **timings)
    if not ("predictions" in parsed or "outputs" in parsed):
        problem = "answer has neither 'predictions' nor 'outputs'"
        return ServerAnswer(status=status, problem=problem, labels=labels, body=parsed, **timings)
    params = parsed.get("parameters") or {}
    for key in ("prediction_ms", "server_ms"):
        if timings[key] is None:
            timings[key] = _float(parsed.get(key, params.get(key)))
    if timings["prediction_ms"] is None and _float(parsed.get("predictionLatency")) is not None:
        timings["prediction_ms"] = float(parsed["predictionLatency"]) * 1000.0  # SageMaker: seconds
    return ServerAnswer(status=status, ok=True, labels=labels, body=parsed, **timings)
