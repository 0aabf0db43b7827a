"""A Locust listener that writes one CSV row per request: ``requests.csv`` in the run folder.

Columns, in order (times in milliseconds unless said otherwise; empty when unknown):

``timestamp``
    Unix time in seconds (float, 6 decimals) at which the request was sent.
``scenario``
    The scenario that sent it (``warm-up``, ``cold-start``, ``ramp``, ``shape``, ``locustfile``).
``target``
    The target's name, ``model@pool/mode`` (see ``loadtest/targets.py``).
``model``, ``pool``, ``arch``, ``instance_type``, ``mode``
    The target's labels; a label the target file leaves ``unknown`` is taken from the answer's ``X-DR-*``
    header.
``node``
    The node that answered (``X-DR-Node``; empty locally).
``backend``, ``precision``
    What answered: ``savedmodel`` or ``litert`` (``X-DR-Backend``) computing in ``fp32``, ``int8`` or ``bf16``
    (``X-DR-Precision``); empty when the server does not say (failures before an answer, other servers).
``protocol``
    ``v1`` (raw image bytes), ``v2`` (BYTES input as JSON), ``v2-binary`` (the binary tensor extension) or
    ``sagemaker`` (``/invocations``).
``phase``
    ``warm``, ``cold`` (first request after the target was at zero) or ``discarded`` (a warm-up request kept
    out of every statistic).
``users``
    The user count Locust was driving towards when the request was sent: the step of a ramp or shape, not the
    transient count while users are still spawning (``1`` for sequential scenarios).
``active_users``
    The users running when the request was sent; below ``users`` while a step's users are still spawning
    (such requests are kept out of the step's statistics).
``status``
    HTTP status code (int); ``0`` when no answer arrived (connection error, timeout).
``client_ms``
    Client-side latency: from sending the request to the end of the answer, as Locust measures it.
``server_prediction_ms``
    The backend call inside the server (``X-DR-Prediction-Ms``).
``server_ms``
    Time inside the server from the request's arrival to the start of postprocessing (``X-DR-Server-Ms``).
``server_body_ms``, ``server_decode_ms``, ``server_queue_ms``, ``server_postprocess_ms``
    The server's phases (``X-DR-Body-Ms``, ``X-DR-Decode-Ms``, ``X-DR-Queue-Ms``, ``X-DR-Postprocess-Ms``):
    reading the body, decoding and preprocessing, waiting for the inference executor, grading and encoding.
    Empty when the server does not send them. Client side (network, client queueing) = ``client_ms`` −
    ``server_ms`` − ``server_postprocess_ms``.
``bytes``
    Size of the answer body in bytes (int).
``error``
    Empty for a success, else one sentence on what went wrong.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadtest.protocols import read_answer

if TYPE_CHECKING:
    from locust.env import Environment

__all__ = ["COLUMNS", "OPTIONAL_COLUMNS", "PHASES", "RequestRecorder", "request_row"]

COLUMNS = (
    "timestamp",
    "scenario",
    "target",
    "model",
    "pool",
    "arch",
    "instance_type",
    "mode",
    "node",
    "backend",
    "precision",
    "protocol",
    "phase",
    "users",
    "active_users",
    "status",
    "client_ms",
    "server_prediction_ms",
    "server_ms",
    "server_body_ms",
    "server_decode_ms",
    "server_queue_ms",
    "server_postprocess_ms",
    "bytes",
    "error",
)
#: Columns added after the first run folders were written; ``summary.read_requests`` reads files without them.
OPTIONAL_COLUMNS = (
    "backend",
    "precision",
    "active_users",
    "server_body_ms",
    "server_decode_ms",
    "server_queue_ms",
    "server_postprocess_ms",
)
PHASES = ("warm", "cold", "discarded")
_LABELS = ("model", "pool", "arch", "instance_type", "mode", "node")


def _status(response: Any) -> int:
    try:
        return int(response.status_code)
    except (AttributeError, TypeError, ValueError):
        return 0


def request_row(
    *,
    response_time: float | None,
    response_length: int | None,
    response: Any = None,
    context: dict[str, Any] | None = None,
    exception: BaseException | None = None,
    start_time: float | None = None,
) -> dict[str, Any]:
    """One CSV row (as a mapping of ``COLUMNS``) from the arguments of a Locust ``request`` event."""
    context = dict(context or {})
    answer = read_answer(response)
    header_labels = dict(answer.labels or {})
    row: dict[str, Any] = {column: "" for column in COLUMNS}
    row["timestamp"] = round(start_time if start_time is not None else time.time(), 6)
    for key in ("scenario", "target", "protocol"):
        row[key] = context.get(key, "")
    for key in _LABELS:
        value = context.get(key) or "unknown"
        if value == "unknown" and header_labels.get(key):
            value = header_labels[key]
        row[key] = "" if (key == "node" and value == "unknown") else value
    for key in ("backend", "precision"):
        row[key] = header_labels.get(key, "")
    phase = context.get("phase", "warm")
    if phase not in PHASES:
        raise ValueError(f"Request phase must be one of {PHASES!r}, got {phase!r}.")
    row["phase"] = phase
    row["users"] = int(context.get("users", 1) or 1)
    row["active_users"] = int(context.get("active_users", row["users"]) or row["users"])
    row["status"] = _status(response)
    row["client_ms"] = round(float(response_time), 3) if response_time is not None else ""
    for column, value in (
        ("server_prediction_ms", answer.prediction_ms),
        ("server_ms", answer.server_ms),
        ("server_body_ms", answer.body_ms),
        ("server_decode_ms", answer.decode_ms),
        ("server_queue_ms", answer.queue_ms),
        ("server_postprocess_ms", answer.postprocess_ms),
    ):
        row[column] = round(value, 3) if value is not None else ""
    row["bytes"] = int(response_length or 0)
    if exception is not None:
        row["error"] = " ".join(str(exception).split()) or type(exception).__name__
    elif response is not None and not answer.ok:
        row["error"] = answer.problem
    return row


class RequestRecorder:
    """Listens to Locust's ``request`` event and appends one row per request to a CSV file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows = 0
        self._file: io.TextIOWrapper | None = None
        self._writer: csv.DictWriter | None = None

    def register(self, environment: Environment) -> None:
        """Attach to ``environment``'s ``request`` and ``quitting`` events; the first call creates the CSV.

        A campaign runs one Locust environment per target, so later calls only attach to another environment.
        """
        if self._file is None and self.rows == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", newline="", encoding="utf-8")
            self._writer = csv.DictWriter(self._file, fieldnames=COLUMNS)
            self._writer.writeheader()
            self._file.flush()
        environment.events.request.add_listener(self._on_request)
        environment.events.quitting.add_listener(self._on_quitting)

    def close(self) -> None:
        """Flush and close the file; safe to call twice."""
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._file = None
        self._writer = None

    def _on_request(
        self,
        *,
        response_time: float | None = None,
        response_length: int | None = 0,
        response: Any = None,
        context: dict[str, Any] | None = None,
        exception: BaseException | None = None,
        start_time: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.write_row(
            request_row(
                response_time=response_time,
                response_length=response_length,
                response=response,
                context=context,
                exception=exception,
                start_time=start_time,
            )
        )

    def write_row(self, row: dict[str, Any]) -> None:
        """Append one ``request_row`` (e.g. built by a distributed worker); ignored once closed."""
        if self._writer is None or self._file is None:
            return
        self._writer.writerow(row)
        self._file.flush()
        self.rows += 1

    def _on_quitting(self, **kwargs: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RequestRecorder({str(self.path)!r}, rows={self.rows})"
