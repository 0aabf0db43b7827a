"""Each scenario's options as one small frozen dataclass: its flags, its checks and its JSON form.

Kept free of Locust, so the parent command line parses them unpatched. ``SCENARIO_OPTIONS`` maps a scenario
name (as typed after ``dr-serving lab run``) to its class; ``loadtest.scenarios.SCENARIOS`` maps it to the
module whose ``run(campaign, options)`` runs it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from dr_cli.types import key_value, non_negative_float, positive_int, user_counts

if TYPE_CHECKING:
    import argparse

__all__ = [
    "SCENARIO_OPTIONS",
    "ColdStartOptions",
    "MemoryOptions",
    "RampOptions",
    "ScenarioOptions",
    "ShapeOptions",
    "UsageError",
    "WarmUpOptions",
    "options_from_dict",
]


class UsageError(ValueError):
    """A campaign option that cannot work; the command exits with code 2."""


@dataclass(frozen=True, kw_only=True)
class WarmUpOptions:
    """Sequential warm requests, an interval apart, after some discarded ones (published: 1 + 25 at 5 s)."""

    name: ClassVar[str] = "warm-up"
    requests: int = 25
    """Warm requests per target (published: 25)."""
    interval: float = 0.2
    """Seconds between requests (published: 5)."""
    discard: int = 1
    """Requests sent first and discarded (published: 1)."""

    @staticmethod
    def add_arguments(group: argparse._ArgumentGroup) -> None:
        """Add ``--requests``, ``--interval`` and ``--discard``."""
        group.add_argument("--requests", type=positive_int, default=25, help="warm requests (published: 25)")
        group.add_argument(
            "--interval", type=non_negative_float, default=0.2, help="seconds between requests (published: 5)"
        )
        group.add_argument("--discard", type=int, default=1, help="requests discarded first (published: 1)")

    def validate(self) -> None:
        """Reject a negative discard count."""
        if self.discard < 0:
            raise UsageError(f"--discard expects a count ≥ 0, got {self.discard!r}.")


@dataclass(frozen=True, kw_only=True)
class ColdStartOptions:
    """Cold requests per target, each sent once the target is at zero, then some warm ones for comparison."""

    name: ClassVar[str] = "cold-start"
    cold_requests: int = 3
    """Cold requests per target (published: 10)."""
    warm_after: int = 2
    """Warm requests after each cold one."""
    ready_timeout: float = 300.0
    """Client timeout, longer than any cold start (s)."""
    zero_timeout: float = 900.0
    """How long to wait for zero pods on a cluster (s)."""
    namespace: str | None = None
    """Namespace of the InferenceServices (cluster; default: the target's, else ``dr-serving``)."""
    metrics_timeout: float = 60.0
    """How long to wait for Prometheus's first scrape of the fresh pod (cluster; s)."""

    @staticmethod
    def add_arguments(group: argparse._ArgumentGroup) -> None:
        """Add the cold-start flags."""
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
        group.add_argument(
            "--metrics-timeout",
            type=non_negative_float,
            default=60.0,
            help="how long to wait for Prometheus (--prometheus-url) to scrape the fresh pod's start-up "
            "gauges (cluster; s)",
        )

    def validate(self) -> None:
        """Reject a negative warm count."""
        if self.warm_after < 0:
            raise UsageError(f"--warm-after expects a count ≥ 0, got {self.warm_after!r}.")


@dataclass(frozen=True, kw_only=True)
class RampOptions:
    """Step through user counts (course project: 10/100/200/500), each step for a fixed time."""

    name: ClassVar[str] = "ramp"
    users: tuple[int, ...] = (10, 100, 200, 500)
    """User counts, one step each."""
    step_seconds: float = 10.0
    """Length of each step (s)."""
    pause: float = 1.0
    """Each user's pause after an answer (s)."""

    @staticmethod
    def add_arguments(group: argparse._ArgumentGroup) -> None:
        """Add ``--users``, ``--step-seconds`` and ``--pause``."""
        group.add_argument(
            "--users", type=user_counts, default=[10, 100, 200, 500], help="user counts, comma-separated"
        )
        group.add_argument(
            "--step-seconds", type=non_negative_float, default=10.0, help="length of each step (s)"
        )
        group.add_argument(
            "--pause", type=non_negative_float, default=1.0, help="each user's pause after an answer (s)"
        )

    def validate(self) -> None:
        """Reject steps of no length."""
        if self.step_seconds <= 0:
            raise UsageError(f"--step-seconds expects a length > 0, got {self.step_seconds!r}.")


@dataclass(frozen=True, kw_only=True)
class ShapeOptions:
    """One of the Locust load shapes (constant, step, spike, seeded random) with ``KEY=VALUE`` settings."""

    name: ClassVar[str] = "shape"
    shape: Literal["constant", "step", "spike", "random"] = "step"
    """The load shape (``loadtest.shapes.SHAPES``)."""
    settings: tuple[tuple[str, str], ...] = ()
    """``KEY=VALUE`` settings as typed; converted to the shape's attribute types by ``scenarios.shape``."""
    pause: float = 0.5
    """Each user's pause after an answer (s)."""

    @staticmethod
    def add_arguments(group: argparse._ArgumentGroup) -> None:
        """Add ``--shape``, ``--set KEY=VALUE`` and ``--pause``."""
        group.add_argument(
            "--shape", choices=("constant", "step", "spike", "random"), default="step", help="load shape"
        )
        group.add_argument(
            "--set",
            dest="settings",
            type=key_value,
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a shape setting, e.g. steps=2,4 or seconds=10 (repeatable)",
        )
        group.add_argument(
            "--pause", type=non_negative_float, default=0.5, help="each user's pause after an answer (s)"
        )

    def validate(self) -> None:
        """Nothing to check without Locust: the settings are checked against the shape in the campaign."""


@dataclass(frozen=True, kw_only=True)
class MemoryOptions:
    """The published memory experiment: per model × memory size, a warm-up then cold starts (docker)."""

    name: ClassVar[str] = "memory"
    requests: int = 25
    """Warm requests per target (published: 25)."""
    interval: float = 0.2
    """Seconds between warm requests (published: 5)."""
    discard: int = 1
    """Warm requests sent first and discarded (published: 1)."""
    cold_requests: int = 3
    """Cold requests per target (published: 10)."""
    ready_timeout: float = 300.0
    """Client timeout of a cold request (s)."""

    #: What ``dr-serving lab run memory`` measures when not told otherwise: the published models and sizes.
    DEFAULT_MODELS: ClassVar[tuple[str, ...]] = ("mobilenet=models/mobilenet", "vgg19=models/vgg19")
    DEFAULT_PROFILES: ClassVar[tuple[str, ...]] = ("1Gi", "2Gi", "3Gi")

    @staticmethod
    def add_arguments(group: argparse._ArgumentGroup) -> None:
        """Add the warm-up and cold-start flags of the memory experiment."""
        group.add_argument("--requests", type=positive_int, default=25, help="warm requests (published: 25)")
        group.add_argument(
            "--interval", type=non_negative_float, default=0.2, help="seconds between requests (published: 5)"
        )
        group.add_argument("--discard", type=int, default=1, help="requests discarded first (published: 1)")
        group.add_argument(
            "--cold-requests", type=positive_int, default=3, help="cold requests per target (published: 10)"
        )
        group.add_argument(
            "--ready-timeout",
            type=non_negative_float,
            default=300.0,
            help="client timeout, longer than any cold start (s)",
        )

    def validate(self) -> None:
        """Reject a negative discard count."""
        if self.discard < 0:
            raise UsageError(f"--discard expects a count ≥ 0, got {self.discard!r}.")

    def warm_up(self) -> WarmUpOptions:
        """The warm-up part."""
        return WarmUpOptions(requests=self.requests, interval=self.interval, discard=self.discard)

    def cold_start(self) -> ColdStartOptions:
        """The cold-start part (no warm requests after each cold one: the warm-up measured them)."""
        return ColdStartOptions(
            cold_requests=self.cold_requests, warm_after=0, ready_timeout=self.ready_timeout
        )


ScenarioOptions = WarmUpOptions | ColdStartOptions | RampOptions | ShapeOptions | MemoryOptions

#: Scenario name → its options class.
SCENARIO_OPTIONS: dict[str, type[ScenarioOptions]] = {
    cls.name: cls for cls in (WarmUpOptions, ColdStartOptions, RampOptions, ShapeOptions, MemoryOptions)
}


def options_from_dict(name: str, data: dict[str, Any]) -> ScenarioOptions:
    """Build scenario ``name``'s options from parsed flags or JSON (unknown keys ignored; lists → tuples)."""
    if name not in SCENARIO_OPTIONS:
        raise UsageError(f"Unknown scenario {name!r}; choose from {sorted(SCENARIO_OPTIONS)!r}.")
    cls = SCENARIO_OPTIONS[name]
    values = {}
    for item in dataclasses.fields(cls):
        if item.name in data:
            value = data[item.name]
            if isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            values[item.name] = value
    options = cls(**values)
    options.validate()
    return options
