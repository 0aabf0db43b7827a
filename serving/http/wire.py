"""Guards below HTTP: a deadline for the request headers and a bound on their size, per connection.

uvicorn (0.54, httptools) has neither: its keep-alive timer only runs between requests, and a request line or
header that never ends is buffered without bound. ``guarded_protocol`` returns uvicorn's ``HttpToolsProtocol``
with both: the headers of each request must be complete within ``limits.header_timeout_seconds`` of its first
byte (or of the connection opening) and fit in ``limits.max_header_bytes``; otherwise the server answers
408 or 431 as JSON, closes the connection, logs one line and counts it in ``dr_rejected_requests_total``.
"""

from __future__ import annotations

import asyncio

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.http.errors import reject
from serving.limits import Limits

__all__ = ["guarded_protocol"]

_STATUS_LINES = {
    408: b"HTTP/1.1 408 Request Timeout\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
}


def guarded_protocol(*, limits: Limits, model_name: str) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a header deadline and a header size bound (``Config.http``)."""

    class Guarded(_GuardedHttpTools):
        header_timeout = limits.header_timeout_seconds
        max_header_bytes = limits.max_header_bytes
        model = model_name

    return Guarded


class _GuardedHttpTools(HttpToolsProtocol):
    header_timeout: float
    max_header_bytes: int
    model: str

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._awaiting_headers = True
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Feed the parser, then count what is still header bytes and refuse when they pass the bound."""
        super().data_received(data)
        if self._awaiting_headers and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                message = f"Expected request headers of at most {self.max_header_bytes} bytes, got more."
                self._refuse(431, "header_too_large", message)

    def on_message_begin(self) -> None:
        """A request starts: its headers are due within the header timeout."""
        super().on_message_begin()
        self._awaiting_headers = True
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        """The headers are complete: stop the header deadline and the count."""
        self._awaiting_headers = False
        self._header_bytes = 0
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        """The answer went out: the next request's headers are counted afresh."""
        self._awaiting_headers = True
        self._header_bytes = 0
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the header deadline with the connection."""
        self._disarm()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes that are not HTTP, counted and logged like every refusal."""
        reject(model=self.model, method="-", path="-", status=400, reason="invalid_http", message=msg)
        super().send_400_response(msg)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._awaiting_headers and not self.transport.is_closing():
            seconds, received = self.header_timeout, self._header_bytes
            message = f"Expected the request headers within {seconds:g} s, got {received} bytes."
            self._refuse(408, "header_timeout", message)

    def _refuse(self, status: int, reason: str, message: str) -> None:
        reject(model=self.model, method="-", path="-", status=status, reason=reason, message=message)
        body = orjson.dumps({"error": message})
        self.transport.write(
            _STATUS_LINES[status]
            + b"content-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + body
        )
        self.transport.close()
        self._awaiting_headers = False
