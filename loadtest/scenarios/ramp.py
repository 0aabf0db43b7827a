"""Ramp: step through user counts (course project: 10/100/200/500); p50/p95/p99, throughput, errors."""

from __future__ import annotations

from loadtest.campaign import Campaign
from loadtest.scenarios.options import RampOptions
from loadtest.shapes import MAX_SPAWN_RATE, StepShape

__all__ = ["check", "run", "spawn_rate"]

# Users start at most MAX_SPAWN_RATE per second between steps (Locust warns above 100), so a step up from
# 200 to 500 users takes 3 s; requests sent meanwhile are recorded with ``active_users`` < ``users`` and left
# out of the step's statistics.


def spawn_rate(steps: tuple[int, ...]) -> float:
    """Users started per second: the largest step at once, capped at ``MAX_SPAWN_RATE``."""
    return min(float(max(steps)), MAX_SPAWN_RATE)


def check(options: RampOptions, *, seed: int) -> None:
    """Nothing to check beyond ``RampOptions.validate``."""


def run(campaign: Campaign, options: RampOptions) -> None:
    """Run the step shape against each target in turn; every request carries the user count it was sent at."""
    steps = tuple(options.users)
    campaign.settings.update(users=list(steps), step_seconds=options.step_seconds, pause_s=options.pause)
    for index, target in enumerate(campaign.targets):
        shape = StepShape(steps=steps, step_seconds=options.step_seconds, spawn_rate=spawn_rate(steps))
        message = f"ramp: {target.name}: users {list(steps)}, {options.step_seconds:g} s each"
        campaign.run_shape(target, index, shape, pause=options.pause, message=message)
