from __future__ import annotations

import time

import pytest
import requests
from locust.env import Environment
from requests.structures import CaseInsensitiveDict

from loadtest.exporter import BUCKETS, LabExporter
from loadtest.prometheus_local import (
    LocalPrometheus,
    PrometheusError,
    ScrapeTarget,
    quantile_query,
    query_quantiles,
)
from loadtest.report.analysis import histogram_quantile

LATENCIES_MS = {
    "amd64": [8.0, 11.0, 14.0, 18.0, 26.0, 45.0, 60.0, 95.0],
    "graviton": [120.0, 140.0, 180.0, 650.0],
}


def _ok() -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = b'{"predictions": []}'
    response.headers = CaseInsensitiveDict({"X-DR-Prediction-Ms": "5.0"})
    return response


def test_config_scrapes_every_target_with_labels() -> None:
    prom = LocalPrometheus(
        [
            ScrapeTarget(job="drlab", address="127.0.0.1:1"),
            ScrapeTarget(job="predictor", address="127.0.0.1:2", labels={"pool": "x86-1cpu", "model": "m"}),
        ],
        scrape_interval=0.5,
    )
    config = prom.config()
    assert config["global"]["scrape_interval"] == "500ms"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["predictor"]["static_configs"] == [
        {"targets": ["127.0.0.1:2"], "labels": {"pool": "x86-1cpu", "model": "m"}}
    ]
    assert all(job["honor_labels"] for job in jobs.values())


def test_query_forms() -> None:
    assert quantile_query(0.5, metric="m", matchers='a="b"') == (
        'histogram_quantile(0.5, sum by (le, pool, model) (m_bucket{a="b"}))'
    )
    assert "increase(m_bucket{}[30s])" in quantile_query(0.95, metric="m", window_s=29.6)


def test_missing_binary_says_how_to_install() -> None:
    prom = LocalPrometheus([ScrapeTarget(job="x", address="127.0.0.1:1")], binary="prometheus-not-installed")
    with pytest.raises(PrometheusError, match="apt-get install prometheus"):
        prom.start()


@pytest.mark.slow
def test_real_prometheus_scrapes_the_exporter_and_answers_quantiles() -> None:
    env = Environment()
    exporter = LabExporter()
    exporter.register(env)
    port = exporter.serve()
    scenario = "prometheus-test"
    for pool, values in LATENCIES_MS.items():
        context = {"model": "mobilenet", "pool": pool, "arch": "amd64", "mode": "local", "scenario": scenario}
        for ms in values:
            env.events.request.fire(
                request_type="POST",
                name="x",
                response_time=ms,
                response_length=1,
                response=_ok(),
                context=context,
                exception=None,
            )
    fired = time.time()
    try:
        with LocalPrometheus([ScrapeTarget(job="drlab", address=f"127.0.0.1:{port}")]) as prom:
            prom.wait_for_scrape(after=fired)
            (health,) = prom.target_health()
            assert health["health"] == "up"
            rows = query_quantiles(
                prom.url, metric="drlab_request_seconds", matchers=f'scenario="{scenario}",outcome="success"'
            )
    finally:
        env.events.quitting.fire(environment=env)
    by_pool = {row["pool"]: row for row in rows}
    assert sorted(by_pool) == ["amd64", "graviton"]
    for pool, values in LATENCIES_MS.items():
        # The report's own histogram_quantile (what it compares Prometheus with) answers as Prometheus does.
        seconds = [v / 1000.0 for v in values]
        for q in (0.5, 0.95):
            expected = 1000.0 * histogram_quantile(q, seconds, BUCKETS)
            assert by_pool[pool][f"p{round(q * 100)}_ms"] == pytest.approx(expected, abs=1e-3)
        assert by_pool[pool]["model"] == "mobilenet"
        assert by_pool[pool]["buckets"] == list(BUCKETS)
