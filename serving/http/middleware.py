"""ASGI middleware: ``RequestGuard`` (arrival stamp, body limits and timeout, concurrency, last resort) and
``ReadinessGate`` (503 on readiness routes while draining), sharing one ``send_json``.

``RequestGuard`` reads every request body itself before the application sees it:

- the limit depends on the route: a raw image (``image/*`` or octet-stream body, ``/invocations``) may carry
  ``limits.max_image_bytes``; a JSON or V2 body ``limits.max_body_bytes`` (a full batch, capped by
  ``max_request_bytes``); anything else 64 KiB. A declared ``Content-Length`` over the limit is refused at
  once, and a chunked body as soon as the count passes it: 413, ``connection: close``, never read whole;
- the body must arrive within ``limits.body_timeout_seconds`` (408 otherwise);
- at most ``limits.max_inflight`` prediction requests are served at once; more answer 503 with
  ``Retry-After`` (health, readiness and metrics routes are never refused, so probes keep working);
- a client that leaves mid-upload is logged as one quiet 499 line; any exception that escapes the application
  is answered with a 500 ``{"error": ...}`` (when nothing was sent yet), logged as one line without a
  traceback and counted as ``reason="internal"``.

The arrival time and the body-read time travel to the model as request headers (``ARRIVAL_HEADER``,
``BODY_NS_HEADER``), the only contract between this module and ``DRModel``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import ClientDisconnect

from serving.http.errors import reject
from serving.limits import SMALL_BODY_BYTES, Limits
from serving.metrics import REQUESTS_IN_FLIGHT
from serving.protocol.common import RAW_MEDIA_TYPES, media_type
from serving.shutdown import DrainState, is_readiness_route

__all__ = [
    "ARRIVAL_HEADER",
    "BODY_NS_HEADER",
    "ReadinessGate",
    "RequestGuard",
    "body_limit",
    "is_work_route",
    "send_json",
]

#: Request header (set by ``RequestGuard``) holding the arrival time, ``time.perf_counter_ns()``.
ARRIVAL_HEADER = "x-dr-arrival-ns"
#: Request header (set by ``RequestGuard``) holding the time spent reading the body, nanoseconds.
BODY_NS_HEADER = "x-dr-body-ns"
_OWN_HEADERS = {ARRIVAL_HEADER.encode(), BODY_NS_HEADER.encode()}


async def send_json(
    send: Any, status: int, payload: dict[str, Any], *, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """Send a complete JSON response on an ASGI ``send``."""
    body = orjson.dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def is_work_route(method: str, path: str) -> bool:
    """True for the routes that run the model (predict, infer, invocations, preprocessed)."""
    return method == "POST" and (path == "/invocations" or path.startswith(("/v1/models/", "/v2/models/")))


def body_limit(method: str, path: str, content_type: str | None, limits: Limits) -> int:
    """The most body bytes the route may carry: image limit for raw images, batch limit for JSON/V2."""
    if method not in {"POST", "PUT", "PATCH"}:
        return SMALL_BODY_BYTES
    if path == "/invocations" or (
        not path.endswith("/infer") and media_type(content_type) in RAW_MEDIA_TYPES
    ):
        return limits.max_image_bytes
    return limits.max_body_bytes


class _Refused(Exception):
    """A request refused while its body was read."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


class _ClientLeft(Exception):
    """The client disconnected before its body arrived."""


class RequestGuard:
    """ASGI middleware guarding every HTTP request (see the module docstring)."""

    def __init__(self, app: Any, *, limits: Limits, model_name: str) -> None:
        self.app = app
        self.limits = limits
        self.model_name = model_name
        self.in_flight = 0
        self._gauge = REQUESTS_IN_FLIGHT.labels(model=model_name)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrival = time.perf_counter_ns()
        method, path = scope.get("method", ""), scope.get("path", "")
        headers = [(key, value) for key, value in scope["headers"] if key not in _OWN_HEADERS]
        content_type = next((v.decode("latin-1") for k, v in headers if k == b"content-type"), None)
        limit = body_limit(method, path, content_type, self.limits)
        work = is_work_route(method, path)
        if work and self.in_flight >= self.limits.max_inflight:
            message = (
                f"Expected at most {self.limits.max_inflight} requests in flight, got one more; retry soon."
            )
            await self._refuse(scope, send, 503, "overloaded", message, extra=((b"retry-after", b"1"),))
            return
        length = next((value for key, value in headers if key == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > limit:
            message = f"Expected a request body of at most {limit} bytes, got {int(length)} bytes."
            await self._refuse(scope, send, 413, "too_many_bytes", message)
            return
        if work:
            self.in_flight += 1
            self._gauge.set(self.in_flight)
        started = False

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            try:
                body = await self._read_body(receive, limit=limit, deadline=arrival + self._timeout_ns())
            except _Refused as refused:
                await self._refuse(scope, send, refused.status, refused.reason, str(refused))
                return
            except _ClientLeft as left:
                self._client_left(scope, str(left))
                return
            headers.append((ARRIVAL_HEADER.encode(), str(arrival).encode()))
            headers.append((BODY_NS_HEADER.encode(), str(time.perf_counter_ns() - arrival).encode()))
            await self.app(dict(scope, headers=headers), _replay(body, receive), watched_send)
        except Exception as exc:  # the last resort: one line, no traceback, counted
            if _is_disconnect(exc):
                self._client_left(scope, "while the answer was prepared")
                return
            message = f"Expected to answer, got an internal {type(exc).__name__}; the server keeps serving."
            reject(
                model=self.model_name,
                method=method,
                path=path,
                status=500,
                reason="internal",
                message=message,
            )
            if not started:
                await send_json(send, 500, {"error": message}, headers=((b"connection", b"close"),))
        finally:
            if work:
                self.in_flight -= 1
                self._gauge.set(self.in_flight)

    def _timeout_ns(self) -> int:
        return int(self.limits.body_timeout_seconds * 1e9)

    async def _read_body(self, receive: Any, *, limit: int, deadline: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = (deadline - time.perf_counter_ns()) / 1e9
            try:
                if remaining <= 0:
                    raise TimeoutError
                message = await asyncio.wait_for(receive(), timeout=remaining)
            except TimeoutError:
                seconds = self.limits.body_timeout_seconds
                raise _Refused(
                    408,
                    "body_timeout",
                    f"Expected the request body within {seconds:g} s, got {size} bytes by then.",
                ) from None
            if message["type"] == "http.disconnect":
                raise _ClientLeft(f"after {size} body bytes")
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise _Refused(
                        413,
                        "too_many_bytes",
                        f"Expected a request body of at most {limit} bytes, got more ({size} so far).",
                    )
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _refuse(
        self,
        scope: dict[str, Any],
        send: Any,
        status: int,
        reason: str,
        message: str,
        *,
        extra: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        reject(
            model=self.model_name,
            method=scope.get("method", ""),
            path=scope.get("path", ""),
            status=status,
            reason=reason,
            message=message,
        )
        # connection: close — the server stops reading what is left of the body instead of buffering it.
        await send_json(send, status, {"error": message}, headers=((b"connection", b"close"), *extra))

    def _client_left(self, scope: dict[str, Any], when: str) -> None:
        reject(
            model=self.model_name,
            method=scope.get("method", ""),
            path=scope.get("path", ""),
            status=499,
            reason="client_disconnected",
            message=f"The client left {when}.",
        )


def _replay(body: bytes, receive: Any) -> Any:
    """An ASGI ``receive`` that hands over the body read already, then waits on the real one (disconnect)."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _is_disconnect(exc: Exception) -> bool:
    return isinstance(exc, ClientDisconnect | ConnectionResetError | BrokenPipeError)


class ReadinessGate:
    """ASGI middleware: readiness routes answer 503 while draining or whenever the model cannot answer.

    KServe's ``/v2/health/ready`` answers 200 whatever its models' state; this gate makes every readiness
    route (V1, V2, SageMaker) follow ``ready()`` too.
    """

    def __init__(self, app: Any, *, state: DrainState, ready: Callable[[], bool]) -> None:
        self.app = app
        self.state = state
        self.ready = ready

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Handle one ASGI call."""
        if scope["type"] == "http" and is_readiness_route(scope.get("method", ""), scope.get("path", "")):
            if self.state.draining:
                await send_json(send, 503, {"error": "The server is shutting down and takes no new work."})
                return
            if not self.ready():
                await send_json(send, 503, {"error": "The model is not ready to answer."})
                return
        await self.app(scope, receive, send)
