"""The lab's scenarios, one module each, each with ``run(campaign, options)`` (options: ``options.py``)."""

from __future__ import annotations

__all__ = ["SCENARIOS"]

#: Scenario name (as typed after ``dr-serving lab run``) → module under ``loadtest.scenarios``.
SCENARIOS: dict[str, str] = {
    "warm-up": "loadtest.scenarios.warm_up",
    "cold-start": "loadtest.scenarios.cold_start",
    "ramp": "loadtest.scenarios.ramp",
    "shape": "loadtest.scenarios.shape",
}
