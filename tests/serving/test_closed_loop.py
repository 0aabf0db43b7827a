"""``closed_loop``: N connections keep one request each in flight; answers and failures are counted."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from serving.closed_loop import closed_loop


class _Handler(BaseHTTPRequestHandler):
    """200 for /ok, 503 for anything else; reads the body so the connection can be reused."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        status = 200 if self.path == "/ok" else 503
        self.send_response(status)
        self.send_header("x-decode-ms", "2.5")
        self.send_header("x-odd-ms", "n/a")
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        """Silent."""


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    """A local HTTP/1.1 server on a free port of 127.0.0.1."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_answers_are_counted_with_their_latencies(server: ThreadingHTTPServer) -> None:
    host, port = server.server_address[:2]
    result = closed_loop(str(host), int(port), "/ok", b"x" * 10, {}, connections=4, seconds=0.5)
    assert result.connections == 4 and result.errors == 0
    assert result.requests > 4 and result.answered_in_run >= result.requests
    assert result.per_second == pytest.approx(result.requests / 0.5)
    assert 0 < result.p50_ms <= result.p99_ms


def test_failed_answers_are_errors(server: ThreadingHTTPServer) -> None:
    host, port = server.server_address[:2]
    result = closed_loop(str(host), int(port), "/busy", b"", {}, connections=2, seconds=0.3)
    assert result.requests == 0 and result.errors > 0 and result.per_second == 0


def test_a_refused_connection_is_an_error_not_a_crash() -> None:
    from serving.launcher import free_port

    result = closed_loop(
        "127.0.0.1", free_port(), "/ok", b"", {}, connections=1, seconds=0.2, warmup_seconds=0
    )
    assert result.requests == 0 and result.errors > 0


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="connections"):
        closed_loop("127.0.0.1", 1, "/", b"", {}, connections=0, seconds=1)


def test_numeric_phase_headers_are_averaged_and_others_are_nan(server: ThreadingHTTPServer) -> None:
    host, port = server.server_address[:2]
    phases = ("X-Decode-Ms", "X-Odd-Ms", "X-Absent-Ms")
    result = closed_loop(str(host), int(port), "/ok", b"", {}, connections=2, seconds=0.3, phases=phases)
    assert result.requests > 0
    assert result.phases_ms["X-Decode-Ms"] == 2.5
    assert math.isnan(result.phases_ms["X-Odd-Ms"]) and math.isnan(result.phases_ms["X-Absent-Ms"])
