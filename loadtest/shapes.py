"""Locust load shapes: constant, step (the ramp's 10/100/200/500), spike and seeded random.

Each ``tick()`` returns ``(users, spawn_rate)`` or ``None`` once the shape is over. Settings are class
attributes (so a locustfile can subclass them) and may be overridden per instance with keyword arguments.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

from locust import LoadTestShape

__all__ = [
    "MAX_SPAWN_RATE",
    "SHAPES",
    "ConstantShape",
    "RandomShape",
    "SpikeShape",
    "StepShape",
    "make_shape",
]


#: Users started per second at most: Locust warns above 100 ("spawn rate is very high"), and on a small load
#: generator faster spawning only delays the first requests of a step.
MAX_SPAWN_RATE = 100.0


class _ConfigurableShape(LoadTestShape):
    """A shape whose class-attribute settings can be overridden by keyword arguments."""

    abstract = True

    def __init__(self, **settings: Any) -> None:
        super().__init__()
        for key, value in settings.items():
            if key.startswith("_") or not hasattr(type(self), key) or callable(getattr(type(self), key)):
                raise TypeError(f"{type(self).__name__} has no setting {key!r}.")
            setattr(self, key, value)
        rate = getattr(self, "spawn_rate", None)
        if rate is not None and not 0 < rate <= MAX_SPAWN_RATE:
            raise ValueError(
                f"{type(self).__name__}.spawn_rate must be in (0, {MAX_SPAWN_RATE:g}] users per second "
                f"(Locust warns above {MAX_SPAWN_RATE:g}), got {rate!r}."
            )
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` for settings that cannot describe a load."""

    @property
    def duration(self) -> float:
        """Total length of the shape in seconds."""
        raise NotImplementedError

    def step_label(self, elapsed: float) -> str:
        """A label for the part of the shape at ``elapsed`` seconds (used by the report)."""
        return ""


class ConstantShape(_ConfigurableShape):
    """Holds ``users`` users for ``seconds`` seconds."""

    users: ClassVar[int] = 10
    """Number of users."""
    seconds: ClassVar[float] = 30.0
    """How long to hold them."""
    spawn_rate: ClassVar[float] = 10.0
    """Users started per second."""

    def validate(self) -> None:
        if self.users < 1 or self.seconds <= 0:
            raise ValueError(
                f"Constant shape needs users ≥ 1 and seconds > 0, got {self.users!r}, {self.seconds!r}."
            )

    @property
    def duration(self) -> float:
        return float(self.seconds)

    def tick(self) -> tuple[int, float] | None:
        return (self.users, self.spawn_rate) if self.get_run_time() < self.seconds else None


class StepShape(_ConfigurableShape):
    """Steps through ``steps`` user counts, each held ``step_seconds`` (course project: 10/100/200/500)."""

    steps: ClassVar[tuple[int, ...]] = (10, 100, 200, 500)
    """User count of each step, in order."""
    step_seconds: ClassVar[float] = 20.0
    """How long each step lasts."""
    spawn_rate: ClassVar[float] = 100.0
    """Users started per second when stepping up."""

    def validate(self) -> None:
        if not self.steps or any(int(n) < 1 for n in self.steps) or self.step_seconds <= 0:
            raise ValueError(
                "Step shape needs user counts ≥ 1 and step_seconds > 0, "
                f"got {self.steps!r}, {self.step_seconds!r}."
            )

    @property
    def duration(self) -> float:
        return len(self.steps) * float(self.step_seconds)

    def tick(self) -> tuple[int, float] | None:
        index = int(self.get_run_time() // self.step_seconds)
        return (int(self.steps[index]), self.spawn_rate) if index < len(self.steps) else None

    def step_label(self, elapsed: float) -> str:
        index = min(int(elapsed // self.step_seconds), len(self.steps) - 1)
        return f"{self.steps[index]} users"


class SpikeShape(_ConfigurableShape):
    """``base`` users, then a sudden ``peak`` for ``spike_seconds``, then ``base`` again."""

    base: ClassVar[int] = 2
    """Users before and after the spike."""
    peak: ClassVar[int] = 20
    """Users during the spike."""
    before_seconds: ClassVar[float] = 10.0
    """Calm period before the spike."""
    spike_seconds: ClassVar[float] = 10.0
    """Length of the spike."""
    after_seconds: ClassVar[float] = 10.0
    """Calm period after the spike."""
    spawn_rate: ClassVar[float] = 100.0
    """Users started per second (high, so the spike is sudden)."""

    def validate(self) -> None:
        if self.base < 1 or self.peak < self.base:
            raise ValueError(
                f"Spike shape needs 1 ≤ base ≤ peak, got base {self.base!r}, peak {self.peak!r}."
            )

    @property
    def duration(self) -> float:
        return float(self.before_seconds + self.spike_seconds + self.after_seconds)

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        if elapsed >= self.duration:
            return None
        in_spike = self.before_seconds <= elapsed < self.before_seconds + self.spike_seconds
        return (self.peak if in_spike else self.base, self.spawn_rate)

    def step_label(self, elapsed: float) -> str:
        if elapsed < self.before_seconds:
            return "before"
        return "spike" if elapsed < self.before_seconds + self.spike_seconds else "after"


class RandomShape(_ConfigurableShape):
    """A user count drawn from [``min_users``, ``max_users``] every ``change_seconds``, fixed by ``seed``."""

    min_users: ClassVar[int] = 1
    """Smallest user count."""
    max_users: ClassVar[int] = 10
    """Largest user count."""
    change_seconds: ClassVar[float] = 5.0
    """How often the count changes."""
    seconds: ClassVar[float] = 30.0
    """Total length."""
    seed: ClassVar[int] = 0
    """Seed of the random sequence (same seed, same load)."""
    spawn_rate: ClassVar[float] = 50.0
    """Users started per second."""

    def validate(self) -> None:
        if not 1 <= self.min_users <= self.max_users:
            raise ValueError(
                f"Random shape needs 1 ≤ min_users ≤ max_users, got {self.min_users!r}, {self.max_users!r}."
            )
        count = max(1, int(-(-self.seconds // self.change_seconds)))
        rng = random.Random(self.seed)
        self.plan = [rng.randint(self.min_users, self.max_users) for _ in range(count)]

    @property
    def duration(self) -> float:
        return float(self.seconds)

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        if elapsed >= self.seconds:
            return None
        return (self.plan[min(int(elapsed // self.change_seconds), len(self.plan) - 1)], self.spawn_rate)

    def step_label(self, elapsed: float) -> str:
        return f"{self.plan[min(int(elapsed // self.change_seconds), len(self.plan) - 1)]} users"


#: Shape names accepted by ``dr-serving lab run shape --shape NAME``.
SHAPES: dict[str, type[_ConfigurableShape]] = {
    "constant": ConstantShape,
    "step": StepShape,
    "spike": SpikeShape,
    "random": RandomShape,
}


def make_shape(name: str, **settings: Any) -> _ConfigurableShape:
    """Build the shape called ``name`` with the given settings (unknown names raise ``ValueError``)."""
    try:
        cls = SHAPES[name]
    except KeyError:
        raise ValueError(f"Shape must be one of {sorted(SHAPES)!r}, got {name!r}.") from None
    return cls(**settings)
