"""Warm-up: one discarded request, then N sequential requests an interval apart (published: 25 at 5 s)."""

from __future__ import annotations

from loadtest.campaign import Campaign
from loadtest.scenarios.options import WarmUpOptions
from loadtest.users import SequentialUser

__all__ = ["check", "run"]


def check(options: WarmUpOptions, *, seed: int) -> None:
    """Nothing to check beyond ``WarmUpOptions.validate``."""


def run(campaign: Campaign, options: WarmUpOptions) -> None:
    """Measure each target in turn with one sequential user, so targets never compete for cores."""
    campaign.settings.update(requests=options.requests, interval_s=options.interval, discard=options.discard)
    per_target = options.discard + options.requests
    for index, target in enumerate(campaign.targets):
        user = campaign.user_for(
            SequentialUser,
            target,
            index,
            requests=options.requests,
            interval=options.interval,
            discard=options.discard,
            fixed_count=1,
        )
        campaign.say(
            f"warm-up: {target.name}: {options.discard} discarded + {options.requests} requests, "
            f"{options.interval:g} s apart"
        )
        campaign.run_users(
            [user],
            users=1,
            expected_requests=per_target * (index + 1),
            max_seconds=per_target * (options.interval + 60.0) + 60.0,
        )
