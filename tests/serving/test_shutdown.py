"""Graceful shutdown: during the drain period readiness answers 503 while predictions are still served."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from serving.launcher import PredictorProcess
from serving.shutdown import DrainState, is_readiness_route


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/v2/health/ready", True),
        ("GET", "/ping", True),
        ("GET", "/v1/models/mobilenet", True),
        ("GET", "/v2/models/mobilenet/ready", True),
        ("HEAD", "/v1/models/mobilenet", True),
        ("GET", "/v2/health/live", False),
        ("GET", "/v2/models/mobilenet", False),
        ("GET", "/metrics", False),
        ("POST", "/v1/models/mobilenet:predict", False),
        ("POST", "/invocations", False),
        ("POST", "/v1/models/mobilenet", False),
    ],
    ids=lambda value: str(value),
)
def test_readiness_routes(method: str, path: str, expected: bool) -> None:
    assert is_readiness_route(method, path) is expected


def test_drain_state_starts_once() -> None:
    state = DrainState()
    assert not state.draining
    state.start()
    assert state.draining
    assert repr(state) == "DrainState(draining=True)"


@pytest.mark.slow
def test_sigterm_drains_then_exits(mobilenet_dir: Path, fundus_jpegs: list[bytes], tmp_path: Path) -> None:
    drain_seconds = 6.0
    process = PredictorProcess(
        mobilenet_dir,
        model_name="mobilenet",
        extra_args=(f"--drain-seconds={drain_seconds}",),
        log_path=tmp_path / "predictor.log",
    )
    with process:  # starts it and waits until ready
        predict = f"{process.url}/v1/models/mobilenet:predict"
        headers = {"Content-Type": "image/jpeg"}
        with httpx.Client(timeout=30) as client:
            assert client.get(f"{process.url}/v2/health/ready").status_code == 200
            assert process.pid is not None
            os.kill(process.pid, signal.SIGTERM)
            # The handler runs on the server's own thread: wait (bounded) until readiness flips.
            deadline = time.monotonic() + drain_seconds / 2
            ready = client.get(f"{process.url}/v2/health/ready")
            while ready.status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.05)
                ready = client.get(f"{process.url}/v2/health/ready")
            assert ready.status_code == 503
            assert "shutting down" in ready.json()["error"]
            assert client.get(f"{process.url}/v1/models/mobilenet").status_code == 503
            # Still serving predictions, on this connection and on a new one.
            assert client.post(predict, content=fundus_jpegs[2], headers=headers).status_code == 200
        with httpx.Client(timeout=30) as fresh:
            answer = fresh.post(predict, content=fundus_jpegs[4], headers=headers)
            assert answer.status_code == 200
            assert answer.json()["predictions"][0]["grade"] in range(5)
        deadline = time.monotonic() + drain_seconds + 30
        while process.returncode is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process.returncode == 0, process.log_text()[-2000:]
    assert "draining for 6.0 s" in process.log_text()
