from __future__ import annotations

import time

import pytest

from loadtest.shapes import SHAPES, ConstantShape, RandomShape, SpikeShape, StepShape, make_shape


def _at(shape, seconds: float):
    """The shape's tick as if ``seconds`` had passed since it started."""
    shape.start_time = time.perf_counter() - seconds
    return shape.tick()


def test_step_shape_holds_each_count_then_stops() -> None:
    shape = StepShape(steps=(2, 4), step_seconds=5.0, spawn_rate=4.0)
    assert [_at(shape, t) for t in (0.1, 4.9, 5.1, 9.9, 10.1)] == [
        (2, 4.0),
        (2, 4.0),
        (4, 4.0),
        (4, 4.0),
        None,
    ]
    assert shape.duration == 10.0
    assert shape.step_label(6.0) == "4 users"


def test_constant_and_spike() -> None:
    assert [_at(ConstantShape(users=3, seconds=2), t) for t in (0.5, 2.5)] == [(3, 10.0), None]
    spike = SpikeShape(base=1, peak=5, before_seconds=1, spike_seconds=1, after_seconds=1)
    assert [(_at(spike, t) or (None,))[0] for t in (0.5, 1.5, 2.5, 3.5)] == [1, 5, 1, None]
    assert spike.step_label(1.5) == "spike"


def test_random_shape_is_reproducible_by_seed() -> None:
    def counts(seed: int) -> list[int]:
        shape = RandomShape(min_users=1, max_users=50, change_seconds=1, seconds=8, seed=seed)
        return [_at(shape, t + 0.5)[0] for t in range(8)]

    assert counts(7) == counts(7)
    assert counts(7) != counts(8)
    assert all(1 <= n <= 50 for n in counts(7))
    assert _at(RandomShape(seconds=2), 2.5) is None


@pytest.mark.parametrize(
    ("name", "settings", "error"),
    [
        ("step", {"steps": ()}, ValueError),
        ("spike", {"base": 5, "peak": 2}, ValueError),
        ("random", {"min_users": 0}, ValueError),
        ("constant", {"users": 0}, ValueError),
        ("constant", {"colour": "red"}, TypeError),
        ("zigzag", {}, ValueError),
        ("step", {"spawn_rate": 500.0}, ValueError),
        ("spike", {"spawn_rate": 0.0}, ValueError),
    ],
    ids=[
        "no-steps",
        "peak-below-base",
        "zero-min",
        "zero-users",
        "unknown-setting",
        "unknown-shape",
        "spawn-rate-locust-warns-about",
        "zero-spawn-rate",
    ],
)
def test_bad_settings(name: str, settings: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        make_shape(name, **settings)


def test_every_shape_has_a_duration() -> None:
    assert sorted(SHAPES) == ["constant", "random", "spike", "step"]
    for name in SHAPES:
        assert make_shape(name).duration > 0
