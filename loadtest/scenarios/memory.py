"""Memory: the published serverless memory experiment on real container limits (docker runtime).

For every model × memory profile (default {MobileNet, VGG19} × {1, 2, 3 GiB}), a warm-up (1 discarded + 25
sequential requests) and then cold starts (the container stopped and started again per cold request). Each
target is a container with ``--memory`` = its profile, so the report's container table shows its peak and
steady memory, and an OOM kill shows as a failed target with its profile.
"""

from __future__ import annotations

from loadtest.campaign import Campaign
from loadtest.containers import ContainerFleet
from loadtest.scenarios import cold_start, warm_up
from loadtest.scenarios.options import MemoryOptions, UsageError

__all__ = ["check", "run"]


def check(options: MemoryOptions, *, seed: int) -> None:
    """Nothing to check beyond ``MemoryOptions.validate`` (the runtime is checked by the spec)."""


def run(campaign: Campaign, options: MemoryOptions) -> None:
    """The warm-up of every target, then its cold starts."""
    if not isinstance(campaign.fleet, ContainerFleet):
        raise UsageError("The memory scenario needs --local --runtime docker (real memory limits).")
    campaign.settings["experiment"] = "published serverless memory experiment (warm-up, then cold starts)"
    warm_up.run(campaign, options.warm_up())
    cold_start.run(campaign, options.cold_start())
