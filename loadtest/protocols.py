"""How the lab speaks to a predictor: the request for each protocol, and what it reads back from the answer.

``v1`` sends the raw image bytes to ``POST /v1/models/{model}:predict`` (``Content-Type: image/jpeg|png``);
``v2`` sends one BYTES input (the image base64-encoded) to ``POST /v2/models/{model}/infer``. The answer's
``X-DR-*`` headers (see docs/architecture.md) give the server-side timings and the node labels.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loadtest.images import Image

__all__ = ["PROTOCOLS", "ServerAnswer", "build_request", "read_answer"]

PROTOCOLS = ("v1", "v2")


@dataclass(frozen=True)
class PreparedRequest:
    """A request ready to send: path, body and headers."""

    path: str
    body: bytes
    headers: dict[str, str]


def build_request(protocol: str, model: str, image: Image, *, host: str | None = None) -> PreparedRequest:
    """Build the request that sends ``image`` to ``model`` over ``protocol`` (``v1`` or ``v2``)."""
    headers = {"Host": host} if host else {}
    if protocol == "v1":
        headers["Content-Type"] = image.content_type
        return PreparedRequest(f"/v1/models/{model}:predict", image.data, headers)
    if protocol == "v2":
        payload = {
            "inputs": [
                {
                    "name": "image_bytes",
                    "shape": [1],
                    "datatype": "BYTES",
                    "data": [base64.b64encode(image.data).decode("ascii")],
                }
            ]
        }
        headers["Content-Type"] = "application/json"
        return PreparedRequest(f"/v2/models/{model}/infer", json.dumps(payload).encode(), headers)
    raise ValueError(f"Protocol must be one of {PROTOCOLS!r}, got {protocol!r}.")


@dataclass(frozen=True, kw_only=True)
class ServerAnswer:
    """What the server said about a request: its own timings (ms) and node labels, where present."""

    prediction_ms: float | None = None
    server_ms: float | None = None
    labels: Mapping[str, str] | None = None
    ok: bool = False
    problem: str = ""


_HEADER_LABELS = {
    "x-dr-pool": "pool",
    "x-dr-arch": "arch",
    "x-dr-instance-type": "instance_type",
    "x-dr-mode": "mode",
    "x-dr-node": "node",
    "x-dr-model": "model",
    "x-dr-backend": "backend",
}


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_answer(response: Any) -> ServerAnswer:
    """Read timings and labels from a response object with ``status_code``, ``headers`` and ``content``."""
    if response is None:
        return ServerAnswer(problem="no response")
    headers = getattr(response, "headers", None) or {}
    labels = {label: headers[name] for name, label in _HEADER_LABELS.items() if headers.get(name)}
    prediction_ms = _float(headers.get("x-dr-prediction-ms"))
    server_ms = _float(headers.get("x-dr-server-ms"))
    status = int(getattr(response, "status_code", 0) or 0)
    if status != 200:
        problem = f"HTTP {status}"
        with contextlib.suppress(ValueError, KeyError, TypeError):
            problem += f": {json.loads(response.content)['error']}"
        return ServerAnswer(prediction_ms=prediction_ms, server_ms=server_ms, labels=labels, problem=problem)
    try:
        body = json.loads(response.content)
    except (ValueError, TypeError):
        return ServerAnswer(labels=labels, problem="answer is not JSON")
    if not isinstance(body, dict) or not ("predictions" in body or "outputs" in body):
        return ServerAnswer(labels=labels, problem="answer has neither 'predictions' nor 'outputs'")
    params = body.get("parameters") or {}
    if prediction_ms is None:
        prediction_ms = _float(body.get("prediction_ms", params.get("prediction_ms")))
    if server_ms is None:
        server_ms = _float(body.get("server_ms", params.get("server_ms")))
    return ServerAnswer(prediction_ms=prediction_ms, server_ms=server_ms, labels=labels, ok=True)
