"""The counter-examples and the measurement of the gate against them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from serving.gradability import REASONS, Thresholds
from serving.zoo.synthetic import make_fundus_image
from serving.zoo.ungradable import NON_FUNDUS, SPOILED, calibrate, jpeg_round_trip

CHECKOUT = Path(__file__).resolve().parents[3]


def test_every_spoiler_names_a_reason_and_keeps_the_size() -> None:
    photo = make_fundus_image(3, size=200, seed=1)
    rng = np.random.default_rng(0)
    for name, (reason, spoil) in SPOILED.items():
        assert reason in REASONS, name
        spoiled = spoil(photo, rng)
        assert spoiled.size == photo.size and spoiled.mode == "RGB"
        assert not np.array_equal(np.asarray(spoiled), np.asarray(photo)), name
    for name, make in NON_FUNDUS.items():
        assert make(128, rng).mode == "RGB", name


def test_jpeg_round_trip_changes_pixels_a_little() -> None:
    photo = make_fundus_image(0, size=128, seed=2)
    again = np.asarray(jpeg_round_trip(photo), dtype=np.int16)
    difference = np.abs(again - np.asarray(photo, dtype=np.int16))
    assert 0 < difference.mean() < 3


def test_calibration_counts_false_rejects_and_catches() -> None:
    found = calibrate(photos=10, counter_examples=2, sizes=(224, 320), seed=5)
    assert found.photos == 10 and found.false_reject_rate == 0.0
    assert set(found.caught) == set(NON_FUNDUS) | set(SPOILED)
    assert all(hits == total == 2 for hits, total, _ in found.caught.values())
    for name, (reason, _) in SPOILED.items():
        assert found.caught[name][2] == {reason: 2}
    low, high = found.good_range["sharpness"]
    assert Thresholds().min_sharpness < low <= high
    assert "false-reject rate 0.00%" in found.table()


def test_a_strict_threshold_shows_up_as_false_rejects() -> None:
    found = calibrate(photos=5, counter_examples=1, sizes=(224,), thresholds=Thresholds(min_sharpness=50.0))
    assert found.false_rejects == {"blurred": 5}
    assert found.false_reject_rate == pytest.approx(1.0)


def test_the_command_prints_the_report() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "serving", "model", "gradability", "--photos", "5", "--counter-examples", "1"],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Good synthetic photos: 5, rejected 0" in done.stdout
    assert "| portrait_on_black | 1/1 | not_fundus 1 |" in done.stdout
