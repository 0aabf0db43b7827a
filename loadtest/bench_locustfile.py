"""The locustfile of ``dr-serving lab generator-bench``: users that GET one cheap route back to back.

The same client as every campaign (Locust's ``HttpUser``), no pause, so the request rate is bounded by what
the generator can send, not by the server's model. The route comes from ``DRLAB_BENCH_PATH`` (default
the KServe liveness route ``/v2/health/live``); the host from Locust's ``--host``.
"""

from __future__ import annotations

import os

from locust import HttpUser, task

__all__ = ["CheapRouteUser"]


class CheapRouteUser(HttpUser):
    """GETs ``DRLAB_BENCH_PATH`` as fast as answers come back."""

    path = os.environ.get("DRLAB_BENCH_PATH", "/v2/health/live")

    @task
    def cheap(self) -> None:
        """One GET of the cheap route."""
        self.client.get(self.path, name=self.path)
