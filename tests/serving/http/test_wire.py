"""Header deadline and header size bound on the real predictor (session env: 2 s, 16 KiB)."""

from __future__ import annotations

import socket
import time

import httpx

from serving.launcher import PredictorProcess


def _connect(predictor: PredictorProcess) -> socket.socket:
    sock = socket.create_connection((predictor.host, predictor.port), timeout=10)
    sock.settimeout(10)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_headers_that_never_end_are_refused_with_408_and_closed(
    predictor: PredictorProcess, client: httpx.Client
) -> None:
    with _connect(predictor) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n")
        answer = _read_until_closed(sock)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b'"error":"Expected the request headers within 2 s' in answer
    assert 1.5 < waited < 8, waited
    assert client.get("/ping").status_code == 200


def test_a_silent_connection_is_closed_after_the_header_timeout(predictor: PredictorProcess) -> None:
    with _connect(predictor) as sock:
        started = time.monotonic()
        answer = _read_until_closed(sock)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ") and 1.5 < waited < 8


def test_an_endless_header_line_is_refused_with_431(
    predictor: PredictorProcess, client: httpx.Client
) -> None:
    with _connect(predictor) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Padding: ")
        try:
            for _ in range(16):  # 64 KiB of one header line that never ends: four times the session's bound
                sock.sendall(b"a" * 4096)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = _read_until_closed(sock)
        except ConnectionResetError:  # the server closed with unread bytes in its buffer
            answer = b""
    assert answer.startswith(b"HTTP/1.1 431 ") or answer == b"", answer[:200]
    lines = [line for line in predictor.log_text().splitlines() if "(header_too_large)" in line]
    assert lines and "got more" in lines[-1] and "Traceback" not in predictor.log_text()
    assert client.get("/ping").status_code == 200


def test_normal_requests_on_a_kept_alive_connection_are_not_affected(client: httpx.Client) -> None:
    for _ in range(3):
        assert client.get("/v2/health/ready").status_code == 200
        time.sleep(1.2)  # idle longer than half the header timeout between requests
    assert client.get("/ping").status_code == 200


def test_bytes_that_are_not_http_get_a_400_and_a_count(
    predictor: PredictorProcess, client: httpx.Client
) -> None:
    with _connect(predictor) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 this is a TLS hello, not HTTP\r\n\r\n")
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 400 ")
    lines = [line for line in predictor.log_text().splitlines() if "(invalid_http)" in line]
    assert lines and "Traceback" not in predictor.log_text()
    assert client.get("/ping").status_code == 200
