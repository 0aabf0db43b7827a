"""RequestGuard and ReadinessGate: streaming body limits, body timeout, in-flight limit, clients that leave,
the last resort (on the real predictor: image limit 2 MB, batch limit 4, body timeout 2 s, 6 in flight), and
the gates as ASGI applications on their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import select
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from serving.http.middleware import ReadinessGate, RequestGuard, body_limit
from serving.launcher import PredictorProcess
from serving.limits import SMALL_BODY_BYTES, Limits
from serving.metrics import REJECTED_REQUESTS
from serving.shutdown import DrainState
from tests.serving.conftest import TEST_IMAGE, sample_value

MODEL = "mobilenet"


def _connect(predictor: PredictorProcess) -> socket.socket:
    sock = socket.create_connection((predictor.host, predictor.port), timeout=10)
    sock.settimeout(10)
    return sock


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _head(path: str = "/invocations", content_type: str = "image/jpeg", length: int | None = None) -> bytes:
    """A request line and headers; ends the header block when ``length`` is given."""
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
    return (head + f"Content-Length: {length}\r\n\r\n" if length is not None else head).encode()


def _answer(sock: socket.socket) -> bytes:
    """The whole answer of a response sent with ``connection: close``."""
    sock.settimeout(10)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def _send_chunked_until_answered(sock: socket.socket, head: bytes, *, total: int) -> tuple[int, bytes]:
    """Send a chunked body in 64 KiB chunks until the server answers (or ``total`` bytes went out)."""
    sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"\0" * 65536
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sent = 0
    while sent < total:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            break
        try:
            sock.sendall(framed)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
    return sent, _answer(sock)


@pytest.mark.parametrize(
    ("path", "content_type", "limit"),
    [
        ("/invocations", "image/jpeg", 2_000_000),
        (f"/v1/models/{MODEL}:predict", "image/png", 2_000_000),
        (
            f"/v2/models/{MODEL}/infer",
            "application/json",
            Limits(max_image_bytes=2_000_000, max_batch=4).max_body_bytes,
        ),
    ],
    ids=["sagemaker-raw", "v1-raw", "v2-json"],
)
def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_route_limit(
    rejections: Callable[[str], float],
    predictor: PredictorProcess,
    client: httpx.Client,
    path: str,
    content_type: str,
    limit: int,
) -> None:
    if TEST_IMAGE:
        pytest.skip("through docker's port proxy, tens of MB sit in its buffers before the refusal arrives")
    before = rejections("too_many_bytes")
    with _connect(predictor) as sock:
        sent, answer = _send_chunked_until_answered(sock, _head(path, content_type), total=limit + 30_000_000)
    assert _status(answer) == 413, answer[:300]
    assert f"at most {limit} bytes".encode() in answer
    # The server stopped reading near the limit (socket buffers hold a few MB), never the whole 30 MB more.
    assert sent < limit + 8_000_000, sent
    assert rejections("too_many_bytes") == before + 1


def test_a_declared_length_over_the_limit_is_refused_before_the_body(
    predictor: PredictorProcess, client: httpx.Client
) -> None:
    with _connect(predictor) as sock:
        sock.sendall(_head(content_type="image/png", length=900000000))
        answer = _answer(sock)
    assert _status(answer) == 413 and b"at most 2000000 bytes, got 900000000 bytes" in answer


def test_a_body_that_stalls_is_refused_with_408(
    rejections: Callable[[str], float], predictor: PredictorProcess, client: httpx.Client
) -> None:
    before = rejections("body_timeout")
    with _connect(predictor) as sock:
        started = time.monotonic()
        sock.sendall(_head(length=5000))
        sock.sendall(b"\xff\xd8" + b"\0" * 998)
        answer = _answer(sock)
        waited = time.monotonic() - started
    assert _status(answer) == 408 and b"within 2 s, got 1000 bytes" in answer
    assert 1.5 < waited < 8
    assert rejections("body_timeout") == before + 1


@pytest.fixture
def held_requests(predictor: PredictorProcess, client: httpx.Client) -> Iterator[list[socket.socket]]:
    """Six prediction requests whose bodies never finish: the in-flight limit of the session's predictor.

    Returned once the server counts all six in flight (a busy machine may take a moment to read them).
    """
    socks = []
    for _ in range(6):
        sock = _connect(predictor)
        sock.sendall(_head(length=5000) + b"\xff")
        socks.append(sock)
    deadline = time.monotonic() + 1.5  # well inside the session's 2 s body timeout
    while sample_value(client, "dr_requests_in_flight", {"model": MODEL}) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield socks
    finally:
        for sock in socks:
            sock.close()


def test_more_requests_than_the_in_flight_limit_get_503_while_probes_still_answer(
    rejections: Callable[[str], float],
    held_requests: list[socket.socket],
    client: httpx.Client,
    fundus_jpegs: list[bytes],
) -> None:
    before = rejections("overloaded")
    refused = client.post("/invocations", content=fundus_jpegs[0], headers={"content-type": "image/jpeg"})
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert "at most 6 requests in flight" in refused.json()["error"]
    assert client.get("/ping").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    assert rejections("overloaded") == before + 1
    # The held requests time out (408) and free their places.
    for sock in held_requests:
        assert _status(_answer(sock)) == 408
    served = client.post("/invocations", content=fundus_jpegs[0], headers={"content-type": "image/jpeg"})
    assert served.status_code == 200


def test_a_client_that_leaves_mid_upload_is_one_quiet_499_line(
    rejections: Callable[[str], float], predictor: PredictorProcess, client: httpx.Client
) -> None:
    before = rejections("client_disconnected")
    with _connect(predictor) as sock:
        sock.sendall(_head(length=100000))
        sock.sendall(b"\xff\xd8" + b"\0" * 5000)
        time.sleep(0.2)
    deadline = time.monotonic() + 5
    while rejections("client_disconnected") == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rejections("client_disconnected") == before + 1
    log = predictor.log_text()
    lines = [line for line in log.splitlines() if "(client_disconnected)" in line]
    assert lines and "with 499" in lines[-1] and " INFO " in lines[-1]
    assert "Traceback" not in log


# -- the gates as ASGI applications -------------------------------------------------------------------------


async def _call(app: Any, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [(b"content-type", b"image/jpeg")]}
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(payload) if payload else {}


def test_the_last_resort_answers_500_logs_one_line_and_counts_internal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise RuntimeError("secret details that must not leak")

    guard = RequestGuard(broken, limits=Limits(), model_name="unit")
    counter = REJECTED_REQUESTS.labels(model="unit", reason="internal")
    before = counter._value.get()
    with caplog.at_level(logging.INFO, logger="serving"):
        status, body = asyncio.run(_call(guard, "POST", "/invocations", b"\xff\xd8"))
    assert status == 500
    assert body == {"error": "Expected to answer, got an internal RuntimeError; the server keeps serving."}
    assert counter._value.get() == before + 1
    records = [r for r in caplog.records if "internal" in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is None
    assert "secret" not in caplog.text


@pytest.mark.parametrize(
    ("draining", "ready", "status"), [(False, True, 200), (False, False, 503), (True, True, 503)]
)
def test_readiness_follows_the_model_and_the_drain(draining: bool, ready: bool, status: int) -> None:
    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    state = DrainState()
    if draining:
        state.start()
    gate = ReadinessGate(ok, state=state, ready=lambda: ready)
    for path in ("/v2/health/ready", "/ping", f"/v1/models/{MODEL}", f"/v2/models/{MODEL}/ready"):
        assert asyncio.run(_call(gate, "GET", path))[0] == status
    assert asyncio.run(_call(gate, "GET", "/v2/health/live"))[0] == 200


def test_body_limits_per_route() -> None:
    limits = Limits(max_image_bytes=1000, max_batch=2, max_request_bytes=10_000_000)
    assert body_limit("POST", "/invocations", None, limits) == 1000
    assert body_limit("POST", "/v1/models/m:predict", "image/jpeg; q=1", limits) == 1000
    assert body_limit("POST", "/v1/models/m:predict", "application/json", limits) == limits.max_body_bytes
    assert (
        body_limit("POST", "/v2/models/m/infer", "application/octet-stream", limits) == limits.max_body_bytes
    )
    assert body_limit("GET", "/v2/health/ready", None, limits) == SMALL_BODY_BYTES
    assert Limits().max_body_bytes == 32 * 1024 * 1024  # the small default cap, not 32 × 26.7 MB
