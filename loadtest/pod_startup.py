"""One predictor pod's start-up figures read back from a cluster's Prometheus, by the pod's name.

A cluster cold start cannot read ``/metrics`` through the gateway: the chart serves it on
``monitoring.metricsPort``, which only the monitoring namespaces reach, and the HTTP port answers 404 there.
The PodMonitor's targets carry ``namespace`` and ``pod`` labels (prometheus-operator v0.88.1
``pkg/prometheus/promcfg.go:1488-1502``, the ServiceMonitor's too at ``:2003-2030``; the chart's own
relabelings, appended after them at ``:1549``, leave both alone), so the fresh pod's ``dr_startup_seconds``
and ``dr_model_load_seconds`` are asked for by those labels, waiting a bounded time for Prometheus's first
scrape. ``last_over_time`` over the pod's lifetime keeps the figure once Knative has removed the pod: its
series then end in stale markers, which range selectors skip.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from loadtest.prometheus_local import PrometheusError, instant_query

__all__ = ["STARTUP_METRICS", "PodStartup", "pod_metric_query", "query_pod_startup", "wait_pod_startup"]

#: The predictor's start-up gauges and the cold-start breakdown keys they fill.
STARTUP_METRICS = {"dr_startup_seconds": "server_startup_s", "dr_model_load_seconds": "model_load_s"}

#: Seconds the lookback reaches before the pod was created (clock skew between the lab and Prometheus).
LOOKBACK_MARGIN_S = 60.0


@dataclass(frozen=True, kw_only=True)
class PodStartup:
    """A pod's start-up figures (seconds, by metric) and where they came from or why they are missing."""

    figures: dict[str, float]
    source: str

    def breakdown(self) -> dict[str, Any]:
        """The breakdown fields ``server_startup_s``, ``model_load_s`` and ``server_figures_from``."""
        fields: dict[str, Any] = {key: self.figures.get(metric) for metric, key in STARTUP_METRICS.items()}
        return {**fields, "server_figures_from": self.source}


def pod_metric_query(metric: str, *, namespace: str, pod: str, window_s: float) -> str:
    """PromQL for the newest sample of ``metric`` from one pod within the last ``window_s`` seconds."""
    matchers = f"namespace={json.dumps(namespace)},pod={json.dumps(pod)}"
    return f"max(last_over_time({metric}{{{matchers}}}[{max(1, math.ceil(window_s))}s]))"


def query_pod_startup(url: str, *, namespace: str, pod: str, window_s: float) -> dict[str, float]:
    """The start-up gauges Prometheus at ``url`` holds for the pod (absent ones left out)."""
    found: dict[str, float] = {}
    for metric in STARTUP_METRICS:
        expr = pod_metric_query(metric, namespace=namespace, pod=pod, window_s=window_s)
        for item in instant_query(url, expr):
            found[metric] = float(item["value"][1])
    return found


def wait_pod_startup(
    url: str | None, *, namespace: str, pod: str, since: float, timeout: float, poll_s: float = 1.0
) -> PodStartup:
    """Ask Prometheus until it has scraped the pod (created at Unix time ``since``) or ``timeout`` s pass."""
    if not url:
        return PodStartup(
            figures={},
            source="missing: no --prometheus-url (the gateway does not serve the predictor's metrics port)",
        )
    deadline = time.monotonic() + timeout
    found: dict[str, float] = {}
    problem = ""
    while True:
        window = time.time() - since + LOOKBACK_MARGIN_S
        try:
            found = query_pod_startup(url, namespace=namespace, pod=pod, window_s=window)
            problem = ""
        except PrometheusError as exc:
            problem = f" ({exc})"
        if len(found) == len(STARTUP_METRICS):
            return PodStartup(figures=found, source=f"Prometheus {url}: pod {namespace}/{pod}")
        if time.monotonic() >= deadline:
            break
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
    lacking = ", ".join(m for m in STARTUP_METRICS if m not in found)
    return PodStartup(
        figures=found,
        source=f"missing: Prometheus {url} had not scraped {lacking} of pod {namespace}/{pod} "
        f"within {timeout:g} s{problem}",
    )
