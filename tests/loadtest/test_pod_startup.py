"""``wait_pod_startup`` against the real Prometheus server scraping real expositions under pod target labels.

The targets carry ``namespace`` and ``pod`` the way prometheus-operator labels a PodMonitor's targets
(v0.88.1 ``pkg/prometheus/promcfg.go:1488-1502``): one is a real predictor process, the other a
prometheus_client exposition of the same gauges with other values, standing for a second pod of the revision.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.server import HTTPServer
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from loadtest.containers import server_startup_metrics
from loadtest.pod_startup import wait_pod_startup
from loadtest.prometheus_local import LocalPrometheus, ScrapeTarget, instant_query
from loadtest.targets import Target

NAMESPACE = "dr-serving"
POD = "dr-serving-mobilenet-amd64-predictor-00001-deployment-6d8f9c7b5-x2k4q"
OTHER_POD = "dr-serving-mobilenet-amd64-predictor-00001-deployment-6d8f9c7b5-p9z3m"
OTHER_FIGURES = {"dr_startup_seconds": 9.5, "dr_model_load_seconds": 7.25}


@pytest.fixture
def other_pod() -> Iterator[HTTPServer]:
    """A second pod's exposition: the predictor's start-up gauges with known values."""
    registry = CollectorRegistry()
    for name, value in OTHER_FIGURES.items():
        gauge = Gauge(name, "start-up figure", ["model", "backend"], registry=registry)
        gauge.labels(model="mobilenet", backend="tflite").set(value)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _target(address: str, pod: str) -> ScrapeTarget:
    return ScrapeTarget(job="dr-serving", address=address, labels={"namespace": NAMESPACE, "pod": pod})


def test_figures_come_from_the_named_pod_and_outlive_it(predictor: Target, other_pod: HTTPServer) -> None:
    """The pod's own gauges, chosen by namespace and pod; still found after its target went away."""
    expected = server_startup_metrics(httpx.get(f"{predictor.base_url}/metrics", timeout=10).text)
    assert set(expected) == set(OTHER_FIGURES)
    since = time.time()
    targets = [
        _target(urlsplit(predictor.base_url).netloc, POD),
        _target(f"127.0.0.1:{other_pod.server_port}", OTHER_POD),
    ]
    with LocalPrometheus(targets, scrape_interval=1.0) as prometheus:
        found = wait_pod_startup(prometheus.url, namespace=NAMESPACE, pod=POD, since=since, timeout=30)
        assert found.figures == expected
        assert found.breakdown() == {
            "server_startup_s": expected["dr_startup_seconds"],
            "model_load_s": expected["dr_model_load_seconds"],
            "server_figures_from": f"Prometheus {prometheus.url}: pod {NAMESPACE}/{POD}",
        }
        other = wait_pod_startup(prometheus.url, namespace=NAMESPACE, pod=OTHER_POD, since=since, timeout=30)
        assert other.figures == OTHER_FIGURES

        elsewhere = wait_pod_startup(prometheus.url, namespace="other", pod=POD, since=since, timeout=2)
        assert elsewhere.figures == {}
        assert elsewhere.source == (
            f"missing: Prometheus {prometheus.url} had not scraped dr_startup_seconds, dr_model_load_seconds "
            f"of pod other/{POD} within 2 s"
        )

        # Knative removes the pod: its scrapes fail, its series end in stale markers and a plain instant
        # query finds nothing; last_over_time still answers with the pod's figures.
        other_pod.shutdown()
        other_pod.server_close()
        stale = f'dr_startup_seconds{{pod="{OTHER_POD}"}}'
        deadline = time.monotonic() + 30
        while instant_query(prometheus.url, stale) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert instant_query(prometheus.url, stale) == []
        gone = wait_pod_startup(prometheus.url, namespace=NAMESPACE, pod=OTHER_POD, since=since, timeout=0)
        assert gone.figures == OTHER_FIGURES


def test_without_a_prometheus_url_the_breakdown_says_so() -> None:
    """No ``--prometheus-url``: no figures, and the reason instead of a silent gap."""
    missing = wait_pod_startup(None, namespace=NAMESPACE, pod=POD, since=time.time(), timeout=30)
    assert missing.breakdown() == {
        "server_startup_s": None,
        "model_load_s": None,
        "server_figures_from": "missing: no --prometheus-url (the gateway does not serve the predictor's "
        "metrics port)",
    }


def test_an_unreachable_prometheus_is_named_after_the_timeout() -> None:
    """A Prometheus that does not answer: polled until the timeout, then named with the error."""
    from serving.launcher import free_port

    url = f"http://127.0.0.1:{free_port()}"
    missing = wait_pod_startup(url, namespace=NAMESPACE, pod=POD, since=time.time(), timeout=1, poll_s=0.2)
    assert missing.figures == {}
    assert missing.source.startswith(f"missing: Prometheus {url} had not scraped dr_startup_seconds")
    assert "did not answer the query" in missing.source
