"""Command-line options of each scenario, kept free of Locust so the parent CLI can parse them unpatched."""

from __future__ import annotations

import argparse

from dr_cli.types import key_value, non_negative_float, positive_int, user_counts

__all__ = ["UsageError", "add_scenario_arguments"]


class UsageError(ValueError):
    """A campaign option that cannot work; the command exits with code 2."""


def add_scenario_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Add the options of scenario ``name`` to ``parser``."""
    group = parser.add_argument_group(f"{name} options")
    if name == "warm-up":
        group.add_argument("--requests", type=positive_int, default=25, help="warm requests (published: 25)")
        group.add_argument(
            "--interval", type=non_negative_float, default=0.2, help="seconds between requests (published: 5)"
        )
        group.add_argument("--discard", type=int, default=1, help="requests discarded first (published: 1)")
    elif name == "cold-start":
        group.add_argument(
            "--cold-requests", type=positive_int, default=3, help="cold requests per target (published: 10)"
        )
        group.add_argument(
            "--warm-after", type=int, default=2, help="warm requests after each cold one, for comparison"
        )
        group.add_argument(
            "--ready-timeout",
            type=non_negative_float,
            default=300.0,
            help="client timeout, longer than any cold start (s)",
        )
        group.add_argument(
            "--zero-timeout",
            type=non_negative_float,
            default=900.0,
            help="how long to wait for zero pods on a cluster (s)",
        )
        group.add_argument("--namespace", default=None, help="namespace of the InferenceServices (cluster)")
    elif name == "ramp":
        group.add_argument(
            "--users", type=user_counts, default=[10, 100, 200, 500], help="user counts, comma-separated"
        )
        group.add_argument(
            "--step-seconds", type=non_negative_float, default=10.0, help="length of each step (s)"
        )
        group.add_argument(
            "--pause", type=non_negative_float, default=1.0, help="each user's pause after an answer (s)"
        )
    elif name == "shape":
        group.add_argument(
            "--shape", choices=("constant", "step", "spike", "random"), default="step", help="load shape"
        )
        group.add_argument(
            "--set",
            dest="shape_settings",
            type=key_value,
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a shape setting, e.g. steps=2,4 or seconds=10 (repeatable)",
        )
        group.add_argument(
            "--pause", type=non_negative_float, default=0.5, help="each user's pause after an answer (s)"
        )
    else:
        raise ValueError(f"Unknown scenario {name!r}.")
