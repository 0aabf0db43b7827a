from __future__ import annotations

import csv
from pathlib import Path

import pytest
import requests
from locust.env import Environment
from requests.structures import CaseInsensitiveDict

from loadtest.recorder import COLUMNS, RequestRecorder, request_row
from loadtest.targets import Target

TARGET = Target(model="mobilenet", url="http://127.0.0.1:1", pool="graviton", arch="unknown", mode="knative")


def _response(status: int, body: bytes, headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers = CaseInsensitiveDict(headers)
    return response


OK = _response(
    200,
    b'{"predictions": [{"grade": 2}], "prediction_ms": 9.0, "server_ms": 12.0}',
    {
        "X-DR-Prediction-Ms": "9.5",
        "X-DR-Server-Ms": "12.25",
        "X-DR-Arch": "arm64",
        "X-DR-Node": "node-a",
        "X-DR-Pool": "other",
        "X-DR-Backend": "litert",
        "X-DR-Precision": "int8",
    },
)


def _context(**extra: object) -> dict[str, object]:
    return {**TARGET.labels(), "scenario": "warm-up", "protocol": "v1", "users": 3, **extra}


def _fire(env: Environment, **kwargs: object) -> None:
    defaults = {
        "request_type": "POST",
        "name": TARGET.name,
        "response_time": 20.5,
        "response_length": 80,
        "response": OK,
        "context": _context(),
        "exception": None,
        "start_time": 1700000000.25,
        "url": TARGET.url,
    }
    env.events.request.fire(**{**defaults, **kwargs})


def test_rows_for_success_discarded_and_failure(tmp_path: Path) -> None:
    env = Environment()
    recorder = RequestRecorder(tmp_path / "out" / "requests.csv")
    recorder.register(env)
    _fire(env, context=_context(phase="discarded"))
    _fire(env, context=_context(phase="warm"))
    _fire(
        env,
        response=None,
        response_time=5000.0,
        response_length=0,
        exception=TimeoutError("read timed out"),
        context=_context(phase="cold"),
    )
    _fire(env, response=_response(503, b'{"error": "The model is not ready."}', {}), context=_context())
    env.events.quitting.fire(environment=env)
    with (tmp_path / "out" / "requests.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        rows = list(reader)
    assert [r["phase"] for r in rows] == ["discarded", "warm", "cold", "warm"]
    warm = rows[1]
    assert warm["timestamp"] == "1700000000.25"
    assert warm["target"] == "mobilenet@graviton/knative"
    assert warm["pool"] == "graviton", "the target's own label wins over the header"
    assert warm["arch"] == "arm64", "an 'unknown' target label is filled from X-DR-Arch"
    assert warm["node"] == "node-a"
    assert (warm["backend"], warm["precision"]) == ("litert", "int8"), "what answered, from X-DR-*"
    assert (rows[2]["backend"], rows[2]["precision"]) == ("", ""), "no answer, nothing said"
    assert (warm["status"], warm["client_ms"], warm["server_prediction_ms"], warm["server_ms"]) == (
        "200",
        "20.5",
        "9.5",
        "12.25",
    )
    assert (warm["users"], warm["bytes"], warm["error"]) == ("3", "80", "")
    assert (rows[2]["status"], rows[2]["error"], rows[2]["server_prediction_ms"]) == (
        "0",
        "read timed out",
        "",
    )
    assert rows[3]["status"] == "503"
    assert rows[3]["error"] == "HTTP 503: The model is not ready."
    assert recorder.rows == 4


def test_events_after_quitting_are_ignored(tmp_path: Path) -> None:
    env = Environment()
    recorder = RequestRecorder(tmp_path / "requests.csv")
    recorder.register(env)
    env.events.quitting.fire(environment=env)
    _fire(env)
    assert recorder.rows == 0
    assert (tmp_path / "requests.csv").read_text().strip() == ",".join(COLUMNS)


def test_unknown_phase_is_rejected() -> None:
    with pytest.raises(ValueError, match="phase"):
        request_row(response_time=1.0, response_length=0, context={"phase": "lukewarm"})
