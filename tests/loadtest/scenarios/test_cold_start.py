from __future__ import annotations

import csv
import json
from pathlib import Path

import httpx
import pytest

from loadtest.emulation import DEFAULT_POOLS
from loadtest.scenarios.cold_start import server_startup_metrics
from loadtest.targets import Target


@pytest.mark.slow
def test_local_cold_starts_restart_the_predictor(quick_run, mobilenet_dir: Path, tmp_path: Path) -> None:
    pool = next(iter(DEFAULT_POOLS))
    run_dir = quick_run(
        "cold-start",
        "--local",
        "--model-dir",
        f"mobilenet={mobilenet_dir}",
        "--pools",
        pool,
        "--cold-requests",
        "2",
        "--warm-after",
        "1",
        out=tmp_path,
    )
    with (run_dir / "requests.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["phase"] for r in rows] == ["cold", "warm", "cold", "warm"]
    assert all(r["status"] == "200" and not r["error"] for r in rows)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["settings"]["client_timeout_s"] == 300.0
    breakdowns = summary["cold_start"]
    assert len(breakdowns) == 2
    for entry, row in zip(breakdowns, [r for r in rows if r["phase"] == "cold"], strict=True):
        assert entry["kind"] == "local process restart" and entry["error"] == ""
        assert entry["model_load_s"] > 0 and entry["server_startup_s"] > 0
        assert entry["first_response_server_prediction_ms"] == pytest.approx(
            float(row["server_prediction_ms"])
        )
        # The cold request is timed from the restart: the wait for readiness plus the request itself.
        assert entry["total_s"] >= entry["process_start_to_ready_s"]
        assert entry["total_s"] >= entry["ready_to_first_response_s"]
        assert float(row["client_ms"]) >= 1000 * entry["process_start_to_ready_s"]
    phases = {(g["phase"], g["requests"]) for g in summary["groups"]}
    assert phases == {("cold", 2), ("warm", 2)}


def test_server_startup_metrics_from_a_real_predictor(predictor: Target) -> None:
    found = server_startup_metrics(httpx.get(f"{predictor.base_url}/metrics", timeout=10).text)
    assert set(found) == {"dr_model_load_seconds", "dr_startup_seconds"}
    assert 0 < found["dr_model_load_seconds"] < found["dr_startup_seconds"]
