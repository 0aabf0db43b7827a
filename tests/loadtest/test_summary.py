from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest.recorder import COLUMNS
from loadtest.summary import group_stats, latency_stats, read_requests, step_stats


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
    stats = latency_stats(values)
    data = [1.0, 3.0, 5.0, 7.0, 9.0]
    assert stats["count"] == 5
    assert stats["p50"] == pytest.approx(np.percentile(data, 50))
    assert stats["p95"] == pytest.approx(np.percentile(data, 95))
    assert (stats["min"], stats["max"], stats["mean"]) == (1.0, 9.0, 5.0)
    assert latency_stats([])["p50"] is None


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
    assert group["requests"] == 4 and group["failures"] == 1 and group["error_pct"] == 25.0
    assert group["client_ms"]["count"] == 3 and group["client_ms"]["max"] == 40.0
    assert group["throughput_rps"] == pytest.approx(3 / (3.5 + 0.04 - 1.0), abs=1e-3)
    steps = step_stats(parsed)
    assert [(s["users"], s["requests"], s["failures"]) for s in steps] == [(1, 1, 0), (2, 3, 1)]
    assert len(group_stats(parsed, include_discarded=True)) == 2


def test_wrong_columns_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="columns"):
        read_requests(path)
