"""Every ``dr_*`` Prometheus metric of the predictor, created once in the default registry; the metrics port.

:func:`start_metrics_server` serves the registry on a port of its own (``DR_METRICS_PORT``, the chart's 9102)
so a NetworkPolicy can admit only Prometheus to it; with no metrics port, on the HTTP port's ``/metrics``.

Label values come from small fixed sets: the model name, the backend, and the node labels the chart sets in
the environment (``DR_POOL``, ``DR_ARCH``, ``DR_INSTANCE_TYPE``, ``DR_MODE``; see :func:`node_labels`).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram, start_http_server

__all__ = [
    "BATCH_SECONDS",
    "BATCH_SIZE",
    "CALL_IMAGES",
    "IMAGE_SECONDS",
    "MODEL_INFO",
    "MODEL_LOAD_SECONDS",
    "PHASES",
    "PHASE_SECONDS",
    "PREDICTIONS",
    "REJECTED_REQUESTS",
    "REQUESTS_IN_FLIGHT",
    "STARTUP_SECONDS",
    "UNGRADABLE_IMAGES",
    "MetricsPortError",
    "NodeLabels",
    "node_labels",
    "normalise_arch",
    "start_metrics_server",
]

#: Latency buckets, seconds: 1 ms … 30 s (MobileNet ≈ 10 ms, VGG19 ≈ 100 ms, a cold TF call a few seconds).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Batch-size buckets (images per request).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)

_NODE = ("pool", "arch", "instance_type")

MODEL_LOAD_SECONDS = Gauge(
    "dr_model_load_seconds", "Time to load the model and run its warm-up batch.", ["model", "backend"]
)
STARTUP_SECONDS = Gauge(
    "dr_startup_seconds", "Time from process start to the model being ready.", ["model", "backend"]
)
BATCH_SECONDS = Histogram(
    "dr_inference_batch_seconds",
    "Backend time of the call that served one request's batch (under --micro-batch, shared with others).",
    ["model", "backend", *_NODE],
    buckets=LATENCY_BUCKETS,
)
IMAGE_SECONDS = Histogram(
    "dr_inference_image_seconds",
    "Backend time per image (a backend call's time divided by its images).",
    ["model", "backend", *_NODE],
    buckets=LATENCY_BUCKETS,
)
#: Phases of a prediction request, in order (definitions in docs/architecture.md).
PHASES = ("body", "decode", "queue", "prediction", "postprocess")
PHASE_SECONDS = Histogram(
    "dr_request_phase_seconds",
    "Server time of one prediction request per phase: body read, decode (incl. the wait for a decode slot), "
    "queue (wait for the inference thread), prediction (the backend call), postprocess.",
    ["model", "phase"],
    buckets=LATENCY_BUCKETS,
)
REQUESTS_IN_FLIGHT = Gauge(
    "dr_requests_in_flight",
    "Prediction requests being served now (refused with 503 beyond the limit).",
    ["model"],
)
BATCH_SIZE = Histogram("dr_batch_size", "Images per prediction request.", ["model"], buckets=BATCH_BUCKETS)
CALL_IMAGES = Histogram(
    "dr_inference_call_images",
    "Images per backend call: a request's own, or several requests' under --micro-batch.",
    ["model"],
    buckets=BATCH_BUCKETS,
)
PREDICTIONS = Counter("dr_predictions", "Images graded, by predicted grade.", ["model", "grade"])
REJECTED_REQUESTS = Counter(
    "dr_rejected_requests",
    "Requests refused with a 4xx/503 answer, left by the client (499) or failed (500, reason internal).",
    ["model", "reason"],
)
UNGRADABLE_IMAGES = Counter(
    "dr_ungradable_images",
    "Photos the gradability gate found ungradable, by reason (refused with 422 or graded with a flag).",
    ["model", "reason", "policy"],
)
MODEL_INFO = Gauge(
    "dr_model_info",
    "Always 1; labels describe the served model and the node.",
    ["model", "backend", "precision", "architecture", *_NODE, "mode"],
)

_ARCH_ALIASES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def normalise_arch(machine: str) -> str:
    """Kubernetes' spelling of a CPU architecture: ``x86_64`` → ``amd64``, ``aarch64`` → ``arm64``."""
    return _ARCH_ALIASES.get(machine.lower(), machine.lower() or "unknown")


@dataclass(frozen=True, kw_only=True)
class NodeLabels:
    """Where this predictor runs, as the chart describes it in the environment."""

    pool: str
    arch: str
    instance_type: str
    mode: str
    node: str | None = None

    def as_labels(self) -> dict[str, str]:
        """The ``pool``/``arch``/``instance_type`` metric labels."""
        return {"pool": self.pool, "arch": self.arch, "instance_type": self.instance_type}


def node_labels(env: Mapping[str, str] | None = None) -> NodeLabels:
    """Read ``DR_POOL``, ``DR_ARCH``, ``DR_INSTANCE_TYPE``, ``DR_MODE`` with the contract's defaults."""
    env = os.environ if env is None else env
    return NodeLabels(
        pool=env.get("DR_POOL") or "local",
        arch=normalise_arch(env.get("DR_ARCH") or platform.machine()),
        instance_type=env.get("DR_INSTANCE_TYPE") or "unknown",
        mode=env.get("DR_MODE") or "local",
        node=env.get("DR_NODE_NAME") or None,
    )


class MetricsPortError(OSError):
    """The metrics port could not be bound."""


def start_metrics_server(host: str, port: int) -> None:
    """Serve the default registry on ``host:port`` from a daemon thread (prometheus_client's WSGI server)."""
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise MetricsPortError(
            f"Expected to serve metrics on {host}:{port}, but it cannot be bound: {exc.strerror or exc}."
        ) from exc
