from __future__ import annotations

import httpx
import requests
from locust.env import Environment
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from requests.structures import CaseInsensitiveDict

from loadtest.exporter import BUCKETS, REGISTRY, LabExporter


def _response(status: int, prediction_ms: str | None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = b'{"predictions": []}' if status == 200 else b'{"error": "bad"}'
    response.headers = CaseInsensitiveDict({"X-DR-Prediction-Ms": prediction_ms} if prediction_ms else {})
    return response


def _samples(text: str, name: str, scenario: str) -> dict[tuple[str, ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("scenario") == scenario:
                key = tuple(f"{k}={v}" for k, v in sorted(sample.labels.items()) if k != "scenario")
                found[key] = sample.value
    return found


def _fire_campaign(env: Environment, scenario: str) -> None:
    context = {
        "model": "mobilenet",
        "pool": "amd64",
        "arch": "amd64",
        "mode": "standard",
        "scenario": scenario,
    }
    for ms, prediction in ((12.0, "4.0"), (30.0, "6.0"), (250.0, "8.0")):
        env.events.request.fire(
            request_type="POST",
            name="x",
            response_time=ms,
            response_length=10,
            response=_response(200, prediction),
            context=context,
            exception=None,
        )
    env.events.request.fire(
        request_type="POST",
        name="x",
        response_time=5.0,
        response_length=10,
        response=_response(200, "1.0"),
        context={**context, "phase": "discarded"},
        exception=None,
    )
    env.events.request.fire(
        request_type="POST",
        name="x",
        response_time=40.0,
        response_length=10,
        response=_response(400, None),
        context=context,
        exception=None,
    )


def test_histograms_from_request_events_parse() -> None:
    env = Environment()
    LabExporter().register(env)
    _fire_campaign(env, "exporter-parse")
    text = generate_latest(REGISTRY).decode()
    counts = _samples(text, "drlab_request_seconds_count", "exporter-parse")
    base = ("arch=amd64", "mode=standard", "model=mobilenet")
    assert counts == {
        (*base, "outcome=success", "pool=amd64"): 3.0,
        (*base, "outcome=failure", "pool=amd64"): 1.0,
    }
    sums = _samples(text, "drlab_request_seconds_sum", "exporter-parse")
    assert abs(sums[(*base, "outcome=success", "pool=amd64")] - 0.292) < 1e-9
    prediction = _samples(text, "drlab_server_prediction_seconds_count", "exporter-parse")
    assert prediction == {(*base, "pool=amd64"): 3.0}
    buckets = {
        next(part for part in key if part.startswith("le=")): value
        for key, value in _samples(text, "drlab_request_seconds_bucket", "exporter-parse").items()
        if "outcome=success" in key
    }
    assert buckets["le=0.015"] == 1.0 and buckets["le=0.03"] == 2.0 and buckets["le=0.3"] == 3.0
    assert len(buckets) == len(BUCKETS) + 1


def test_served_over_http_on_loopback() -> None:
    env = Environment()
    exporter = LabExporter()
    exporter.register(env)
    port = exporter.serve()
    try:
        _fire_campaign(env, "exporter-http")
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        env.events.quitting.fire(environment=env)
    counts = _samples(text, "drlab_request_seconds_count", "exporter-http")
    assert sum(counts.values()) == 4.0
    names = {family.name for family in text_string_to_metric_families(text)}
    assert names >= {"drlab_request_seconds", "drlab_server_prediction_seconds"}
    assert not any(name.startswith(("python_", "process_")) for name in names), "own registry only"
