from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest.targets import Target


def test_spawn_rate_stays_where_locust_does_not_warn() -> None:
    from loadtest.scenarios.ramp import spawn_rate
    from loadtest.shapes import MAX_SPAWN_RATE

    assert MAX_SPAWN_RATE == 100.0
    assert spawn_rate((10, 100, 200, 500)) == 100.0
    assert spawn_rate((2, 4)) == 4.0


@pytest.mark.slow
def test_small_ramp_reports_each_step(cli, predictor: Target, tmp_path: Path) -> None:
    result = cli(
        "lab",
        "run",
        "ramp",
        "--url",
        predictor.url,
        "--users",
        "2,4",
        "--step-seconds",
        "2",
        "--pause",
        "0.1",
        "--protocol",
        "v2",
        "--image-size",
        "256",
        "--no-prometheus",
        "--out",
        str(tmp_path),
        "--quiet",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "spawn rate is very high" not in result.stderr
    (run_dir,) = tmp_path.glob("*-ramp")
    summary = json.loads((run_dir / "summary.json").read_text())
    settings = dict(summary["settings"])
    assert (
        settings.pop("generator")["kind"] == "local-process"
    )  # the load generator the run was measured with
    assert settings == {"seed": 0, "users": [2, 4], "step_seconds": 2.0, "pause_s": 0.1}
    assert summary["protocol"] == "v2"
    steps = {s["users"]: s for s in summary["steps"]}
    assert sorted(steps) == [2, 4], "requests are grouped by the step they were sent in"
    for step in steps.values():
        assert step["error_pct"] == 0.0
        assert set(step["client_ms"]) >= {"p50", "p95", "p99"}
        assert step["client_ms"]["p50"] <= step["client_ms"]["p95"] <= step["client_ms"]["p99"]
    assert steps[4]["throughput_rps"] > 0
    report = (run_dir / "report.md").read_text()
    assert "## Load steps (client latency ms)" in report
    assert (run_dir / "plots" / "load_steps.png").is_file()


@pytest.mark.slow
def test_under_load_queue_time_grows_while_prediction_time_does_not(
    quick_run, predictor: Target, tmp_path: Path
) -> None:
    """The server's phase headers reach the step statistics: more users wait longer for the one inference
    thread, but the backend call itself (what "prediction" means) stays near its one-user time."""
    run_dir = quick_run(
        "ramp", "--url", predictor.url, "--users", "1,6", "--step-seconds", "4", "--pause", "0", out=tmp_path
    )
    steps = {s["users"]: s for s in json.loads((run_dir / "summary.json").read_text())["steps"]}
    one, six = steps[1], steps[6]
    assert one["anatomy"]["requests"] > 0 and six["anatomy"]["requests"] > 0
    assert six["anatomy"]["queue_ms"] > max(3 * one["anatomy"]["queue_ms"], 1.0), (
        one["anatomy"],
        six["anatomy"],
    )
    assert six["server_prediction_ms"]["p50"] < 4 * one["server_prediction_ms"]["p50"], (one, six)
    assert six["server_queue_ms"]["p50"] > one["server_queue_ms"]["p50"]
