"""Ramp: step through user counts (course project: 10/100/200/500); p50/p95/p99, throughput, errors."""

from __future__ import annotations

import argparse

from loadtest.campaign import Campaign
from loadtest.shapes import StepShape

__all__ = ["run"]


def run(campaign: Campaign, options: argparse.Namespace) -> None:
    """Run the step shape against each target in turn; every request carries the user count it was sent at."""
    steps = tuple(options.users)
    campaign.settings.update(users=list(steps), step_seconds=options.step_seconds, pause_s=options.pause)
    for index, target in enumerate(campaign.targets):
        shape = StepShape(steps=steps, step_seconds=options.step_seconds, spawn_rate=float(max(steps)))
        message = f"ramp: {target.name}: users {list(steps)}, {options.step_seconds:g} s each"
        campaign.run_shape(target, index, shape, pause=options.pause, message=message)
