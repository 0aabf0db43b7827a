"""The report's analysis on small hand-written runs: every number checked by hand, no campaign needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loadtest.exporter import BUCKETS
from loadtest.recorder import COLUMNS
from loadtest.report.analysis import analyse, bucket_bounds, histogram_quantile
from loadtest.report.prices import load_prices
from loadtest.report.run import RunData, load_run
from loadtest.report.tables import TableKind, all_tables
from loadtest.summary import RunSummary, group_stats, read_requests, step_stats
from loadtest.targets import Target
from serving.metrics import LATENCY_BUCKETS

X86 = Target(model="mobilenet", url="http://127.0.0.1:1", pool="x86", instance_type="m5.xlarge")
OLD = Target(model="mobilenet", url="http://127.0.0.1:2", pool="old", instance_type="m4.xlarge")


def _row(target: Target, t: float, client: float, **extra: Any) -> dict[str, Any]:
    row = {
        "timestamp": t,
        "scenario": "test",
        "target": target.name,
        "model": target.model,
        "pool": target.pool,
        "arch": "amd64",
        "instance_type": target.instance_type,
        "mode": "local",
        "protocol": "v1",
        "phase": "warm",
        "users": 1,
        "status": 200,
        "client_ms": client,
        "bytes": 100,
        "error": "",
    }
    return row | extra


def _run(tmp_path: Path, rows: list[dict[str, Any]], **summary: Any) -> RunData:
    """Write ``rows`` as requests.csv and a summary computed from them; read both back as the report does."""
    lines = [",".join(COLUMNS)]
    for row in rows:
        full = {c: "" for c in COLUMNS} | {k: str(v) for k, v in row.items()}
        lines.append(",".join(full[c] for c in COLUMNS))
    (tmp_path / "requests.csv").write_text("\n".join(lines) + "\n")
    parsed = read_requests(tmp_path / "requests.csv")
    targets = (X86, OLD)
    scenario = summary.pop("scenario", "cold-start")
    RunSummary(
        scenario=scenario,
        environment="emulation (2-core machine, no cluster)",
        started="2026-11-30T10:00:00+00:00",
        finished="2026-11-30T10:01:00+00:00",
        duration_s=60.0,
        started_unix=0.0,
        finished_unix=60.0,
        protocol="v1",
        images="synthetic",
        targets=targets,
        requests=len(parsed),
        groups=tuple(group_stats(parsed, targets)),
        steps=tuple(step_stats(parsed)) if scenario == "ramp" else (),
        **summary,
    ).write(tmp_path / "summary.json")
    return load_run(tmp_path)


@pytest.fixture
def cold_run(tmp_path: Path) -> RunData:
    """Two pools, each 4 warm requests and 2 cold ones; x86 twice as fast as old; one failed warm request."""
    rows = []
    for i, client in enumerate((100.0, 110.0, 120.0, 130.0)):
        rows.append(_row(X86, i, client, server_ms=client - 40, server_prediction_ms=client / 2))
        rows.append(_row(OLD, i, 2 * client, server_ms=2 * client - 40, server_prediction_ms=client))
    rows.append(_row(OLD, 9.0, 5.0, status=503, error="HTTP 503"))
    for i, client in enumerate((5000.0, 7000.0)):
        rows.append(_row(X86, 10 + i, client, phase="cold", server_ms=90.0, server_prediction_ms=60.0))
        rows.append(_row(OLD, 10 + i, 2 * client, phase="cold", server_ms=180.0, server_prediction_ms=120.0))
    cold_start = (
        {"target": X86.name, "kind": "local", "process_start_to_ready_s": 4.5, "request_s": 0.5},
        {"target": OLD.name, "kind": "local", "process_start_to_ready_s": 9.0, "error": "slow"},
    )
    prometheus = {
        "url": "http://127.0.0.1:9090",
        "method": "instant query",
        "request_seconds": [
            {
                "pool": "x86",
                "model": "mobilenet",
                "p50_ms": 118.0,
                "p95_ms": 900.0,
                "queries": {"p50": "q50", "p95": "q95"},
            }
        ],
    }
    return _run(tmp_path, rows, cold_start=cold_start, prometheus=prometheus)


def test_latency_rows_are_per_target_and_sequential_phase(cold_run: RunData) -> None:
    analysis = analyse(cold_run, load_prices())
    rows = {(r.target, r.phase): r for r in analysis.latency}
    assert set(rows) == {(t.name, p) for t in (X86, OLD) for p in ("warm", "cold")}
    warm = rows[(X86.name, "warm")]
    assert (warm.users, warm.requests, warm.total.p50, warm.prediction.p50, warm.server.p50) == (
        1,
        4,
        115.0,
        57.5,
        75.0,
    )
    assert warm.share == pytest.approx(57.5 / 115.0)
    old = rows[(OLD.name, "warm")]
    assert (old.requests, old.error_pct, old.total.p50) == (5, 20.0, 230.0)


def test_warm_vs_cold_and_cold_breakdown(cold_run: RunData) -> None:
    analysis = analyse(cold_run, load_prices())
    by_target = {r.target: r for r in analysis.warm_cold}
    x86 = by_target[X86.name]
    assert (x86.cold_requests, x86.warm_p50_ms, x86.cold_p50_ms) == (2, 115.0, 6000.0)
    assert x86.ratio == pytest.approx(6000.0 / 115.0)
    assert by_target[OLD.name].ratio == pytest.approx(12000.0 / 230.0)
    breakdown = analysis.cold_breakdown
    assert breakdown.keys == ("process_start_to_ready_s", "request_s")
    assert [e["target"] for e in breakdown.entries] == [X86.name, OLD.name]
    (table,) = [
        t
        for t in all_tables(analysis, emulated=True, price_source="p", prometheus=None)
        if t.kind is TableKind.COLD_BREAKDOWN
    ]
    assert table.header == ["target", "kind", "process_start_to_ready_s", "request_s", "error"]
    assert table.rows[1] == [OLD.name, "local", "9.000", "–", "slow"]


def test_published_speedups_and_costs(cold_run: RunData) -> None:
    analysis = analyse(cold_run, load_prices())
    published = {(r.target, r.compared_as): r for r in analysis.published}
    # Real-time instances publish warm figures only; cold figures exist for serverless memory sizes.
    assert set(published) == {(X86.name, "warm-up"), (OLD.name, "warm-up")}
    m5 = published[(X86.name, "warm-up")]
    assert (m5.source, m5.published_prediction_ms, m5.published_full_ms) == (
        "ml.m5.xlarge real-time",
        61,
        262,
    )
    assert m5.prediction_ratio == pytest.approx(57.5 / 61)
    (speedup,) = analysis.speedups
    assert (speedup.faster, speedup.slower) == ("x86", "old")
    assert speedup.prediction == pytest.approx(2.0) and speedup.total == pytest.approx(2.0)
    assert speedup.published == "m5.xlarge faster than m4.xlarge: 1.32× / 1.09×"
    costs = {(c.target, c.phase): c for c in analysis.costs}
    assert costs[(X86.name, "warm")].usd_sequential == pytest.approx(0.23 / 3600 * 0.115)
    assert costs[(X86.name, "warm")].usd_at_throughput is None  # one user: no throughput price


def test_prometheus_check_runs_once_and_can_disagree(cold_run: RunData) -> None:
    checks = analyse(cold_run, load_prices()).prometheus
    # Warm and cold requests of the pool together (the exporter's histogram holds both). In the exporter's
    # buckets the six client latencies 100, 110, 120, 130, 5000, 7000 ms give rank 3 in (0.1, 0.15]
    # (one below, three inside: 100 + 50 × 2/3) and rank 5.7 in (5, 7.5] (five below: 5000 + 2500 × 0.7).
    assert [(c.quantile, c.csv_ms, c.csv_histogram_ms, c.prometheus_ms, c.requests) for c in checks] == [
        ("p50", 125.0, pytest.approx(133.333, abs=1e-3), 118.0, 6),
        ("p95", 6500.0, pytest.approx(6750.0), 900.0, 6),
    ]
    p50, p95 = checks
    low, high = bucket_bounds(0.1333)
    assert p50.agree and p50.tolerance_ms == pytest.approx((high - low) * 1000)
    assert not p95.agree and p95.tolerance_ms == pytest.approx(2500.0)
    tables = all_tables(
        analyse(cold_run, load_prices()), emulated=True, price_source="p", prometheus=cold_run.prometheus
    )
    (prometheus,) = [t for t in tables if t.kind is TableKind.PROMETHEUS]
    assert [r[-1] for r in prometheus.rows] == ["yes", "NO"]
    assert prometheus.rows[0][4:8] == ["6", "125", "133", "118"]


@pytest.mark.parametrize(
    ("values_ms", "q", "expected_ms"),
    [
        # One value: p50 halfway through its bucket (7.5, 10] ms, whatever the value.
        ([9.9], 0.5, 8.75),
        # Three cold-start-like values: the CSV's p95 (1362 ms, linear between 25 and 1510) is in (1, 1.5] s,
        # histogram_quantile's in the bucket of the slowest, (1.5, 2] s: 1500 + 500 × 0.85.
        ([23.0, 25.0, 1510.0], 0.95, 1925.0),
        # Past the last finite bound: that bound.
        ([200_000.0], 0.5, 120_000.0),
    ],
)
def test_histogram_quantile_answers_as_prometheus(
    values_ms: list[float], q: float, expected_ms: float
) -> None:
    assert 1000.0 * histogram_quantile(q, [v / 1000.0 for v in values_ms], BUCKETS) == pytest.approx(
        expected_ms
    )


def test_few_requests_across_a_bucket_edge_agree(tmp_path: Path) -> None:
    """The flake this check once had: three requests, the cold one just past 1.5 s. The CSV's p95 (1362 ms)
    and Prometheus's (1925 ms) are more than a bucket apart, but the same requests in the same buckets."""
    rows = [_row(X86, 0.0, 1510.0, phase="cold"), _row(X86, 2.0, 25.0), _row(X86, 3.0, 23.0)]
    entry = {
        "pool": "x86",
        "model": "mobilenet",
        "p50_ms": 27.5,
        "p95_ms": 1925.0,
        "queries": {"p50": "a", "p95": "b"},
    }
    run = _run(
        tmp_path, rows, prometheus={"url": "u", "method": "m", "local": True, "request_seconds": [entry]}
    )
    checks = analyse(run, load_prices()).prometheus
    assert [(c.quantile, round(c.csv_ms), c.agree) for c in checks] == [
        ("p50", 25, True),
        ("p95", 1362, True),
    ]


def test_a_restarted_predictor_is_compared_over_its_last_life(cold_run: RunData, tmp_path: Path) -> None:
    """A local Prometheus holds only the restarted predictor's last life: x86's last cold request (60 ms),
    alone in the predictor's bucket (0.05, 0.1] s. A Prometheus over the cluster (``increase()`` across
    pods) holds the whole run: 50 ms in (0.025, 0.05], five in (0.05, 0.1]."""
    entry = {
        "pool": "x86",
        "model": "mobilenet",
        "p50_ms": 75.0,
        "p95_ms": 97.5,
        "queries": {"p50": "a", "p95": "b"},
        "buckets": list(LATENCY_BUCKETS),
    }
    rows = [{k: v for k, v in r.items() if v is not None} for r in cold_run.rows]
    for local, requests, expected in ((True, 1, [75.0, 97.5]), (False, 6, [70.0, 97.0])):
        folder = tmp_path / str(local)
        folder.mkdir()
        prometheus = {"url": "u", "method": "m", "local": local, "predictor_batch_seconds": [entry]}
        checks = analyse(_run(folder, rows, prometheus=prometheus), load_prices()).prometheus
        assert [c.requests for c in checks] == [requests, requests]
        assert [c.csv_histogram_ms for c in checks] == pytest.approx(expected)
        assert all(c.agree for c in checks)


@pytest.fixture
def ramp_run(tmp_path: Path) -> RunData:
    """x86 under 10 then 200 users, with server phase headers; the first request of each step is spawning."""
    rows = []
    t = 0.0
    for users, queue in ((10, 2.0), (200, 80.0)):
        rows.append(_row(X86, t, 999.0, users=users, active_users=users // 2, server_ms=900.0))
        for i in range(4):
            t += 0.5
            rows.append(
                _row(
                    X86,
                    t,
                    100.0 + queue + i,
                    users=users,
                    active_users=users,
                    server_body_ms=1.0,
                    server_decode_ms=9.0,
                    server_queue_ms=queue,
                    server_prediction_ms=12.0,
                    server_ms=30.0 + queue,
                    server_postprocess_ms=2.0,
                )
            )
        t += 1.0
    rows.append(_row(X86, t, 50.0, users=200, active_users=200, status=0, error="timed out"))
    return _run(tmp_path, rows, scenario="ramp")


def test_steps_leave_spawning_out_and_say_their_load(ramp_run: RunData) -> None:
    analysis = analyse(ramp_run, load_prices())
    assert [(r.phase, r.users) for r in analysis.latency] == [("load", 10), ("load", 200)]
    low, high = analysis.latency
    assert (low.requests, low.spawning, low.total.p50, low.total.max) == (4, 1, 103.5, 105.0)
    assert (high.requests, high.spawning, high.error_pct) == (5, 1, 20.0)
    assert low.throughput_rps == pytest.approx(4 / (1.5 + 0.105), abs=1e-3)
    tables = {t.kind: t for t in all_tables(analysis, emulated=True, price_source="p", prometheus=None)}
    assert [r[1] for r in tables[TableKind.LATENCY].rows] == ["load, 10 users", "load, 200 users"]
    assert [r[1:4] for r in tables[TableKind.STEPS].rows] == [["10", "4", "1"], ["200", "5", "1"]]


def test_only_the_lowest_step_meets_the_published_figures(ramp_run: RunData) -> None:
    analysis = analyse(ramp_run, load_prices())
    (published,) = analysis.published
    assert (published.users, published.compared_as) == (10, "lowest load step (10 users)")
    (course,) = analysis.course
    assert (course.users, course.course_p50_ms, course.course_p95_ms, course.error_pct) == (
        200,
        191,
        259,
        20.0,
    )
    assert course.throughput_rps == analysis.latency[1].throughput_rps


def test_anatomy_adds_up_to_the_client_latency(ramp_run: RunData) -> None:
    analysis = analyse(ramp_run, load_prices())
    low, high = analysis.anatomy
    assert (low.users, high.users) == (10, 200)
    a = high.anatomy
    assert (a.body_ms, a.decode_ms, a.queue_ms, a.prediction_ms, a.postprocess_ms) == (
        1.0,
        9.0,
        80.0,
        12.0,
        2.0,
    )
    assert a.other_server_ms == pytest.approx(110.0 - (1 + 9 + 80 + 12))
    assert a.client_side_ms == pytest.approx(181.5 - 110.0 - 2.0)
    parts = (
        a.body_ms,
        a.decode_ms,
        a.queue_ms,
        a.prediction_ms,
        a.postprocess_ms,
        a.other_server_ms,
        a.client_side_ms,
    )
    assert sum(parts) == pytest.approx(a.total_ms)
    # Queue time grows with load while prediction time does not: this pool is queue-bound at 200 users.
    assert low.anatomy.queue_ms == 2.0 and low.anatomy.prediction_ms == high.anatomy.prediction_ms


def test_a_run_folder_written_before_the_redesign_still_reports(cold_run: RunData) -> None:
    """Older run folders: requests.csv without the phase/active-users columns, summary groups without
    memory_profile, users_max, server_queue_ms or anatomy."""
    import csv
    import json

    from loadtest.recorder import OPTIONAL_COLUMNS
    from loadtest.report import write_report

    run_dir = cold_run.run_dir
    with (run_dir / "requests.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    old_columns = [c for c in COLUMNS if c not in OPTIONAL_COLUMNS]
    with (run_dir / "requests.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=old_columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    summary = json.loads((run_dir / "summary.json").read_text())
    for group in summary["groups"]:
        for key in ("memory_profile", "users_max", "server_queue_ms", "anatomy"):
            del group[key]
    (run_dir / "summary.json").write_text(json.dumps(summary))
    result = write_report(run_dir, print_table=False)
    markdown = result["markdown"].read_text()
    assert "## Warm vs cold (client latency, median ms, sequential)" in markdown
    assert "Latency anatomy" not in markdown  # no phase figures in an old run: no empty table


def test_cluster_cold_breakdown_says_where_server_figures_came_from(tmp_path: Path) -> None:
    """A cluster cold start's server figures and their source are columns, and the note explains them."""
    rows = [_row(X86, 0, 100.0), _row(X86, 1, 3000.0, phase="cold", server_ms=90.0)]
    cold_start = (
        {
            "target": X86.name,
            "kind": "cluster scale from zero",
            "pod": "p-1",
            "server_startup_s": 1.25,
            "model_load_s": 0.5,
            "server_figures_from": "Prometheus http://127.0.0.1:9090: pod dr/p-1",
        },
        {
            "target": X86.name,
            "kind": "cluster scale from zero",
            "pod": "p-2",
            "server_startup_s": None,
            "model_load_s": None,
            "server_figures_from": "missing: no --prometheus-url",
        },
    )
    analysis = analyse(_run(tmp_path, rows, cold_start=cold_start), load_prices())
    (table,) = [
        t
        for t in all_tables(analysis, emulated=False, price_source="p", prometheus=None)
        if t.kind is TableKind.COLD_BREAKDOWN
    ]
    assert table.header[2:] == ["pod", "server_startup_s", "model_load_s", "server_figures_from", "error"]
    assert table.rows[0][3:6] == ["1.250", "0.500", "Prometheus http://127.0.0.1:9090: pod dr/p-1"]
    assert table.rows[1][3:6] == ["–", "–", "missing: no --prometheus-url"]
    assert table.note.startswith("Cluster: server_startup_s and model_load_s = the fresh pod's")
