from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from loadtest.targets import Target


@pytest.mark.slow
def test_spike_shape_drives_the_user_count(quick_run, predictor: Target, tmp_path: Path) -> None:
    run_dir = quick_run(
        "shape",
        "--shape",
        "spike",
        "--set",
        "base=1",
        "--set",
        "peak=3",
        "--set",
        "before_seconds=1.5",
        "--set",
        "spike_seconds=2",
        "--set",
        "after_seconds=1.5",
        "--pause",
        "0.1",
        "--url",
        predictor.url,
        out=tmp_path,
    )
    with (run_dir / "requests.csv").open(newline="") as handle:
        users = [int(r["users"]) for r in csv.DictReader(handle)]
    assert users[0] == 1 and max(users) == 3 and users[-1] == 1, "calm, spike, calm again"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["settings"]["shape"] == "spike"
    assert summary["settings"]["shape_settings"]["peak"] == 3


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["--set", "colour=red"], "has no setting 'colour'"),
        (["--set", "peak=lots"], "expects int"),
        (["--set", "base=5", "--set", "peak=2"], "base ≤ peak"),
    ],
    ids=["unknown-setting", "wrong-type", "peak-below-base"],
)
def test_bad_shape_settings_are_usage_errors(cli, tmp_path: Path, settings: list[str], message: str) -> None:
    result = cli(
        "lab",
        "run",
        "shape",
        "--shape",
        "spike",
        *settings,
        "--url",
        "http://127.0.0.1:9",
        "--out",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert message in result.stderr
    assert not list(tmp_path.glob("*-shape")), "no run folder for a usage error"
