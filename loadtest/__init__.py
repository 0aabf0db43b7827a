"""The dr-serving load lab: Locust campaigns, Prometheus metrics and reports."""

from __future__ import annotations

__all__: list[str] = []
