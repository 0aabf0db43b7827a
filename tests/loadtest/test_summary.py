from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest.recorder import COLUMNS
from loadtest.summary import LatencyStats, RunSummary, group_stats, read_requests, step_stats


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    lines = [",".join(COLUMNS)]
    for row in rows:
        full = {c: "" for c in COLUMNS} | {k: str(v) for k, v in row.items()}
        lines.append(",".join(full[c] for c in COLUMNS))
    path.write_text("\n".join(lines) + "\n")
    return path


def _row(
    t: float, ms: float, *, phase: str = "warm", users: int = 1, status: int = 200, error: str = ""
) -> dict:
    return {
        "timestamp": t,
        "scenario": "ramp",
        "target": "m@p/local",
        "model": "m",
        "pool": "p",
        "arch": "amd64",
        "instance_type": "m5.xlarge",
        "mode": "local",
        "protocol": "v1",
        "phase": phase,
        "users": users,
        "status": status,
        "client_ms": ms,
        "server_prediction_ms": ms / 2,
        "bytes": 10,
        "error": error,
    }


def test_latency_stats_match_numpy() -> None:
    values = [5.0, 1.0, 9.0, 3.0, None, 7.0]
    stats = LatencyStats.of(values)
    data = [1.0, 3.0, 5.0, 7.0, 9.0]
    assert stats.count == 5
    assert stats.p50 == pytest.approx(np.percentile(data, 50))
    assert stats.p95 == pytest.approx(np.percentile(data, 95))
    assert (stats.min, stats.max, stats.mean) == (1.0, 9.0, 5.0)
    assert LatencyStats.of([]) == LatencyStats() and LatencyStats().p50 is None


def test_groups_and_steps_leave_out_discarded_and_count_errors(tmp_path: Path) -> None:
    rows = [
        _row(0.0, 500.0, phase="discarded"),
        _row(1.0, 10.0),
        _row(2.0, 20.0, users=2),
        _row(3.0, 30.0, users=2, status=503, error="HTTP 503"),
        _row(3.5, 40.0, users=2),
    ]
    parsed = read_requests(_write(tmp_path / "requests.csv", rows))
    (group,) = group_stats(parsed)
    assert group.requests == 4 and group.failures == 1 and group.error_pct == 25.0
    assert group.client_ms.count == 3 and group.client_ms.max == 40.0
    assert group.throughput_rps == pytest.approx(3 / (3.5 + 0.04 - 1.0), abs=1e-3)
    assert group.users_max == 2
    steps = step_stats(parsed)
    assert [(s.users, s.requests, s.failures) for s in steps] == [(1, 1, 0), (2, 3, 1)]
    assert len(group_stats(parsed, include_discarded=True)) == 2


def test_wrong_columns_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="columns"):
        read_requests(path)


def test_spawning_requests_stay_out_of_a_step(tmp_path: Path) -> None:
    rows = [
        {**_row(1.0, 900.0, users=4), "active_users": 2},
        {**_row(2.0, 10.0, users=4), "active_users": 4},
        {**_row(3.0, 20.0, users=4), "active_users": 4},
    ]
    (step,) = step_stats(read_requests(_write(tmp_path / "requests.csv", rows)))
    assert (step.requests, step.spawning, step.client_ms.max) == (2, 1, 20.0)


def test_a_csv_without_the_newer_columns_is_read(tmp_path: Path) -> None:
    from loadtest.recorder import OPTIONAL_COLUMNS

    old = [c for c in COLUMNS if c not in OPTIONAL_COLUMNS]
    path = tmp_path / "requests.csv"
    full = {c: "" for c in COLUMNS} | {k: str(v) for k, v in _row(1.0, 10.0).items()}
    path.write_text(",".join(old) + "\n" + ",".join(full[c] for c in old) + "\n")
    (row,) = read_requests(path)
    assert row["client_ms"] == 10.0 and row["server_queue_ms"] is None and row["active_users"] is None
    # The file before the backend and precision columns (every other optional column present) is read too.
    before = [c for c in COLUMNS if c not in ("backend", "precision")]
    path.write_text(",".join(before) + "\n" + ",".join(full[c] for c in before) + "\n")
    (row,) = read_requests(path)
    assert row["client_ms"] == 10.0 and row["backend"] == ""


def test_columns_out_of_order_or_unknown_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    path.write_text(",".join(reversed(COLUMNS)) + "\n")
    with pytest.raises(ValueError, match="does not have the columns"):
        read_requests(path)
    path.write_text(",".join(c for c in COLUMNS if c != "client_ms") + "\n")
    with pytest.raises(ValueError, match="does not have the columns"):
        read_requests(path)


def test_groups_say_what_answered(tmp_path: Path) -> None:
    rows = [
        {**_row(1.0, 10.0), "backend": "litert", "precision": "int8"},
        {**_row(2.0, 12.0), "backend": "litert", "precision": "int8"},
        {**_row(3.0, 11.0), "backend": "savedmodel", "precision": "fp32"},
    ]
    (group,) = group_stats(read_requests(_write(tmp_path / "requests.csv", rows)))
    assert (group.backend, group.precision) == ("litert+savedmodel", "fp32+int8")
    (silent,) = group_stats(read_requests(_write(tmp_path / "silent.csv", [_row(1.0, 10.0)])))
    assert (silent.backend, silent.precision) == ("", "")


def test_run_summary_round_trips_through_json(tmp_path: Path) -> None:
    from loadtest.targets import Target

    rows = read_requests(_write(tmp_path / "requests.csv", [_row(1.0, 10.0), _row(2.0, 30.0, users=3)]))
    target = Target(model="m", url="http://127.0.0.1:1", pool="p", memory_profile="2Gi")
    summary = RunSummary(
        scenario="ramp",
        environment="emulation (2-core machine, no cluster)",
        started="2026-11-30T10:00:00+00:00",
        finished="2026-11-30T10:00:05+00:00",
        duration_s=5.0,
        started_unix=1.0,
        finished_unix=6.0,
        protocol="v1",
        images="synthetic",
        settings={"users": [1, 3]},
        targets=(target,),
        requests=2,
        groups=tuple(group_stats(rows, [target])),
        steps=tuple(step_stats(rows)),
        cold_start=({"target": "m@p/local", "ready_s": 1.5},),
        prometheus={"url": "http://127.0.0.1:9090"},
    )
    assert summary.groups[0].memory_profile == "2Gi" and summary.emulated
    path = summary.write(tmp_path / "summary.json")
    assert RunSummary.read(path) == summary
    with pytest.raises(ValueError, match="Cannot read"):
        RunSummary.read(tmp_path / "absent.json")
