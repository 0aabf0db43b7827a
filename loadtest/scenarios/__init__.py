"""The lab's scenarios, one module each, with ``check(options, *, seed)`` and ``run(campaign, options)``.

Each scenario's options are one dataclass in ``options.py``; ``check`` runs in the campaign child before any
process starts (it may need Locust), ``run`` drives the targets.
"""

from __future__ import annotations

__all__ = ["SCENARIOS"]

#: Scenario name (as typed after ``dr-serving lab run``) → module under ``loadtest.scenarios``.
SCENARIOS: dict[str, str] = {
    "warm-up": "loadtest.scenarios.warm_up",
    "cold-start": "loadtest.scenarios.cold_start",
    "ramp": "loadtest.scenarios.ramp",
    "shape": "loadtest.scenarios.shape",
    "memory": "loadtest.scenarios.memory",
}
