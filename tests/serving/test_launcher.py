"""``PredictorProcess``: free port, readiness, CPU pinning, log capture, clean SIGTERM mid-request."""

from __future__ import annotations

import base64
import os
import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.launcher import PredictorProcess, free_port
from serving.zoo.synthetic import encode_image, make_fundus_image


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_command_line(tmp_path: Path) -> None:
    process = PredictorProcess(tmp_path, model_name="vgg19", port=8123, extra_args=("--backend=litert",))
    assert process.url == "http://127.0.0.1:8123"
    assert process.command() == [
        sys.executable,
        "-m",
        "serving",
        "serve",
        f"--model-dir={tmp_path.absolute()}",
        "--model-name=vgg19",
        "--host=127.0.0.1",
        "--http-port=8123",
        "--backend=litert",
    ]
    assert process.pid is None and process.returncode is None and process.stop() is None


def test_wait_ready_before_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="call start\\(\\) first"):
        PredictorProcess(tmp_path).wait_ready(1)


def _in_flight(client: httpx.Client) -> float:
    """The predictor's ``dr_requests_in_flight`` gauge, summed over its labels."""
    families = text_string_to_metric_families(client.get("/metrics").text)
    return sum(s.value for f in families if f.name == "dr_requests_in_flight" for s in f.samples)


def test_lifecycle_pinning_and_clean_stop(mobilenet_dir: Path, tmp_path: Path) -> None:
    cpu = min(os.sched_getaffinity(0))
    log_path = tmp_path / "predictor.log"
    process = PredictorProcess(mobilenet_dir, model_name="pinned", cpus=[cpu], log_path=log_path)
    with process:
        assert process.returncode is None
        assert os.sched_getaffinity(process.pid) == {cpu}
        with pytest.raises(RuntimeError, match="already running"):
            process.start()
        images = [encode_image(make_fundus_image(g, size=1024, seed=g), "PNG") for g in range(4)]
        body = {"instances": [{"image_b64": base64.b64encode(data).decode()} for data in images]}
        answers: list[httpx.Response] = []
        with httpx.Client(base_url=process.url, timeout=60, trust_env=False) as client:
            assert client.get("/v1/models/pinned").json() == {"name": "pinned", "ready": True}
            thread = threading.Thread(
                target=lambda: answers.append(client.post("/v1/models/pinned:predict", json=body))
            )
            thread.start()
            # SIGTERM once the server holds the batch (its in-flight gauge, read on a second connection):
            # it finishes the batch before exiting. A SIGTERM sent before the request is read would race the
            # client's connect against the closing listener.
            with httpx.Client(base_url=process.url, timeout=10, trust_env=False) as probe:
                deadline = time.monotonic() + 30
                while not answers and time.monotonic() < deadline and _in_flight(probe) < 1:
                    time.sleep(0.005)
            code = process.stop(timeout=60)
            thread.join(60)
    assert code == 0
    assert answers and answers[0].status_code == 200
    assert answers[0].json()["batch_size"] == 4
    log = log_path.read_text()
    assert "Loaded pinned" in log
    assert "Shutting down" in log


def test_failed_start_reports_the_error_line(tmp_path: Path) -> None:
    process = PredictorProcess(tmp_path, model_name="empty", log_path=tmp_path / "log.txt")
    process.start()
    with pytest.raises(RuntimeError) as info:
        process.wait_ready(120)
    assert str(info.value) == (
        "Expected the predictor to become ready, but it exited with code 1: "
        f"Error: Expected a TensorFlow SavedModel (saved_model.pb) in {str(tmp_path)!r}, found none."
    )
