"""The lab's own Prometheus metrics, fed by Locust's ``request`` event and served on a 127.0.0.1 port.

``drlab_request_seconds`` (histogram; labels model, pool, arch, mode, scenario, outcome =
``success``|``failure``) holds client latency; ``drlab_server_prediction_seconds`` (same labels minus outcome)
holds the server-reported prediction time. Both live on ``REGISTRY``, a registry of their own, so a scrape
shows only the lab's series. Discarded warm-up requests are not observed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram, start_http_server

from loadtest.protocols import read_answer

if TYPE_CHECKING:
    from locust.env import Environment

__all__ = ["BUCKETS", "REGISTRY", "REQUEST_SECONDS", "SERVER_PREDICTION_SECONDS", "LabExporter"]

#: Bucket bounds (seconds) from 2.5 ms to 2 minutes: loopback warm requests up to cluster cold starts.
BUCKETS = (
    0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0,
)  # fmt: skip

REGISTRY = CollectorRegistry(auto_describe=True)
REQUEST_SECONDS = Histogram(
    "drlab_request_seconds",
    "Client-side request latency measured by the load lab.",
    ("model", "pool", "arch", "mode", "scenario", "outcome"),
    buckets=BUCKETS,
    registry=REGISTRY,
)
SERVER_PREDICTION_SECONDS = Histogram(
    "drlab_server_prediction_seconds",
    "Server-reported prediction time (X-DR-Prediction-Ms) of the lab's successful requests.",
    ("model", "pool", "arch", "mode", "scenario"),
    buckets=BUCKETS,
    registry=REGISTRY,
)


class LabExporter:
    """Observes every request into the lab histograms and serves ``REGISTRY`` over HTTP on 127.0.0.1."""

    def __init__(self) -> None:
        self.port: int | None = None
        self._server: Any = None
        self._thread: Any = None

    def register(self, environment: Environment) -> None:
        """Attach to ``environment``'s ``request`` and ``quitting`` events."""
        environment.events.request.add_listener(self._on_request)
        environment.events.quitting.add_listener(self._on_quitting)

    def serve(self, *, port: int = 0) -> int:
        """Start the HTTP endpoint on 127.0.0.1 (a free port when 0); returns the port."""
        self._server, self._thread = start_http_server(port, addr="127.0.0.1", registry=REGISTRY)
        self.port = int(self._server.server_port)
        return self.port

    def stop(self) -> None:
        """Stop the HTTP endpoint; safe to call twice."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _on_request(
        self,
        *,
        response_time: float | None = None,
        response: Any = None,
        context: dict[str, Any] | None = None,
        exception: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        context = context or {}
        if context.get("phase") == "discarded" or response_time is None:
            return
        answer = read_answer(response)
        header_labels = answer.labels or {}
        labels = {}
        for key in ("model", "pool", "arch", "mode"):
            value = context.get(key) or "unknown"
            labels[key] = header_labels.get(key, value) if value == "unknown" else value
        labels["scenario"] = context.get("scenario") or "unknown"
        ok = exception is None and answer.ok
        REQUEST_SECONDS.labels(**labels, outcome="success" if ok else "failure").observe(
            response_time / 1000.0
        )
        if ok and answer.prediction_ms is not None:
            SERVER_PREDICTION_SECONDS.labels(**labels).observe(answer.prediction_ms / 1000.0)

    def observe_row(self, row: dict[str, Any]) -> None:
        """Observe one ``requests.csv`` row (a distributed worker's request, sent to the master)."""
        if row.get("phase") == "discarded" or row.get("client_ms") in ("", None):
            return
        keys = ("model", "pool", "arch", "mode", "scenario")
        labels = {key: str(row.get(key) or "unknown") for key in keys}
        ok = not row.get("error")
        REQUEST_SECONDS.labels(**labels, outcome="success" if ok else "failure").observe(
            float(row["client_ms"]) / 1000.0
        )
        if ok and row.get("server_prediction_ms") not in ("", None):
            SERVER_PREDICTION_SECONDS.labels(**labels).observe(float(row["server_prediction_ms"]) / 1000.0)

    def _on_quitting(self, **kwargs: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LabExporter(port={self.port})"
