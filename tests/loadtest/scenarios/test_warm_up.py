from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from loadtest.emulation import DEFAULT_POOLS
from loadtest.recorder import COLUMNS

pytestmark = pytest.mark.slow


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "requests.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        return list(reader)


def test_every_pool_gets_one_discarded_then_the_warm_requests(warm_up_run: Path) -> None:
    rows = _rows(warm_up_run)
    for pool in DEFAULT_POOLS:
        mine = [r for r in rows if r["pool"] == pool]
        assert [r["phase"] for r in mine] == ["discarded"] + ["warm"] * 6
        assert {r["target"] for r in mine} == {f"mobilenet@{pool}/local"}
        assert {(r["status"], r["error"], r["protocol"], r["users"], r["scenario"]) for r in mine} == {
            ("200", "", "v1", "1", "warm-up")
        }
        for row in mine:
            assert 0 < float(row["server_prediction_ms"]) <= float(row["server_ms"]) < float(row["client_ms"])
    assert {r["instance_type"] for r in rows} == {pool.stands_for for pool in DEFAULT_POOLS.values()}


def test_summary_describes_the_run(warm_up_run: Path) -> None:
    summary = json.loads((warm_up_run / "summary.json").read_text())
    assert (
        summary["environment"]
        == f"emulation ({len(next(iter(DEFAULT_POOLS.values())).cpus)}-core machine, no cluster)"
    )
    assert summary["scenario"] == "warm-up"
    settings = dict(summary["settings"])
    assert (
        settings.pop("generator")["kind"] == "local-process"
    )  # the load generator the run was measured with
    assert settings == {
        "seed": 0,
        "runtime": "process",
        "backend": "auto",
        "precision": "fp32",
        "threads": "auto",
        "requests": 6,
        "interval_s": 0.05,
        "discard": 1,
    }
    assert summary["requests"] == 7 * len(DEFAULT_POOLS)
    groups = {g["pool"]: g for g in summary["groups"]}
    assert sorted(groups) == sorted(DEFAULT_POOLS)
    for group in groups.values():
        assert (group["phase"], group["requests"], group["failures"]) == ("warm", 6, 0)
        assert group["client_ms"]["count"] == 6
        assert group["server_prediction_ms"]["p50"] <= group["client_ms"]["p50"]
    assert [t["pool"] for t in summary["targets"]] == list(DEFAULT_POOLS)


def test_each_pools_predictor_sizes_its_threads_by_its_pinned_cores(warm_up_run: Path) -> None:
    """No thread variables reach the predictors: each counts the cores it is pinned to, as a pod its limit."""
    for name, pool in DEFAULT_POOLS.items():
        log = (warm_up_run / f"predictor-mobilenet-{name}.log").read_text()
        count = len(pool.cpus)
        assert f" on {count} CPU thread{'s' if count > 1 else ''} in " in log, log[-2000:]


def test_the_threads_flag_reaches_every_predictor(quick_run, mobilenet_dir: Path, tmp_path: Path) -> None:
    """``lab run --threads 1`` gives a predictor on every core of the machine one thread per model call."""
    pool = next(iter(DEFAULT_POOLS))
    run_dir = quick_run(
        "warm-up",
        "--local",
        "--model-dir",
        f"mobilenet={mobilenet_dir}",
        "--pools",
        pool,
        "--threads",
        "1",
        "--requests",
        "2",
        "--interval",
        "0",
        out=tmp_path,
    )
    assert " on 1 CPU thread in " in (run_dir / f"predictor-mobilenet-{pool}.log").read_text()
    assert json.loads((run_dir / "summary.json").read_text())["settings"]["threads"] == 1


def test_locust_stats_and_prometheus_answers_are_kept(warm_up_run: Path) -> None:
    with (warm_up_run / "locust_stats.csv").open(newline="") as handle:
        stats = {row["Name"]: row for row in csv.DictReader(handle)}
    assert stats["Aggregated"]["Request Count"] == str(7 * len(DEFAULT_POOLS))
    prometheus = json.loads((warm_up_run / "prometheus.json").read_text())
    assert "error" not in prometheus, prometheus.get("error")
    assert prometheus["local"] is True
    assert sorted(row["pool"] for row in prometheus["request_seconds"]) == sorted(DEFAULT_POOLS)
    assert all(row["p50_ms"] > 0 for row in prometheus["server_prediction_seconds"])
