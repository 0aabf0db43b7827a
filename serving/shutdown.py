"""Graceful shutdown: on SIGTERM, report not-ready for a drain period while still serving, then stop.

Kubernetes removes a stopping pod from its Service endpoints only after it has sent SIGTERM, so requests keep
arriving for a moment. uvicorn's own graceful shutdown closes the listening socket at once, which resets every
connection that is queued but not yet read. With a drain period (``--drain-seconds`` / ``DR_DRAIN_SECONDS``)
the server instead answers 503 on its readiness routes (``serving.http.middleware.ReadinessGate``), keeps
answering predictions, and only then lets uvicorn finish the requests in flight and exit. A second signal
stops at once, as uvicorn does.
"""

from __future__ import annotations

import logging
import threading
from types import FrameType

import uvicorn

__all__ = ["DrainState", "DrainingServer", "is_readiness_route"]

logger = logging.getLogger(__name__)


class DrainState:
    """Whether the server has been asked to stop and is draining."""

    def __init__(self) -> None:
        self._event = threading.Event()

    @property
    def draining(self) -> bool:
        """True once a stop signal arrived."""
        return self._event.is_set()

    def start(self) -> None:
        """Enter the drain period."""
        self._event.set()

    def __repr__(self) -> str:
        return f"DrainState(draining={self.draining})"


def is_readiness_route(method: str, path: str) -> bool:
    """True for the routes probes and load balancers read readiness from (V1, V2, SageMaker)."""
    if method not in {"GET", "HEAD"}:
        return False
    if path in {"/v2/health/ready", "/ping"}:
        return True
    parts = path.strip("/").split("/")
    # /v1/models/{name} (KServe V1 model ready) and /v2/models/{name}/ready (V2 model ready).
    return (len(parts) == 3 and parts[:2] == ["v1", "models"]) or (
        len(parts) == 4 and parts[:2] == ["v2", "models"] and parts[3] == "ready"
    )


class DrainingServer(uvicorn.Server):
    """uvicorn server whose first SIGTERM/SIGINT starts a drain period before the graceful shutdown."""

    def __init__(self, config: uvicorn.Config, *, state: DrainState, drain_seconds: float) -> None:
        super().__init__(config)
        self.state = state
        self.drain_seconds = drain_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First signal: drain, then exit gracefully; a second signal: uvicorn's own handling."""
        if self.drain_seconds <= 0 or self.state.draining:
            super().handle_exit(sig, frame)
            return
        self.state.start()
        logger.info("Stop signal %d: draining for %.1f s before shutting down.", sig, self.drain_seconds)
        timer = threading.Timer(self.drain_seconds, super().handle_exit, args=(sig, frame))
        timer.daemon = True
        timer.start()
