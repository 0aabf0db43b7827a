"""The speed issue's targets: the CPU ceiling of the served ÷ offline ratio and each verdict's rule."""

from __future__ import annotations

from typing import Any

import pytest

from serving.bench_targets import TARGETS, cpu_ceiling, verdicts


def _run(
    *,
    int8_dot: bool = True,
    int8_ratio: float | None = 0.4,
    guard: dict[str, Any] | None = None,
    speedup: float | None = 9.0,
    load: dict[int, tuple[float, float | None, int]] | None = None,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """A bench run of MobileNet's litert-int8 as ``verdicts`` reads it; ``load`` maps connections to
    (over_offline, cpu_ceiling, errors)."""
    if guard is None:
        guard = {
            "grade_agreement": 0.995,
            "referable_agreement": 0.998,
            "check_samples": 1000,
            "max_abs_diff": 0.05,
        }
    if load is None:
        load = {16: (0.85, 1.1, 0), 64: (0.8, 1.1, 0)}
    results = {
        "machine": {"cpu": {"int8_dot": int8_dot}},
        "models": {"mobilenet": {"served": {"litert-int8": {}}, "int8_guard": guard}},
    }
    tables = {
        "bare": [{"model": "mobilenet", "variant": "litert-int8", "over_litert_fp32": int8_ratio}],
        "served": [{"model": "mobilenet", "variant": "litert-int8", "naive_over_e2e": speedup}],
        "load": [
            {
                "model": "mobilenet",
                "variant": "litert-int8",
                "connections": connections,
                "over_offline": ratio,
                "cpu_ceiling": ceiling,
                "errors": errors,
            }
            for connections, (ratio, ceiling, errors) in load.items()
        ],
    }
    return results, tables


def _verdict(target: str, **run: Any) -> dict[str, Any]:
    (row,) = [row for row in verdicts(*_run(**run)) if row["target"].startswith(target)]
    return row


def test_the_ceiling_is_what_the_cpus_allow_at_this_cost_per_answer() -> None:
    # Two CPUs, 1.5 ms offline calls, 6 ms of server and 1.5 ms of load generator CPU per answer: at most
    # 2000 / 7.5 = 267 answers/s against 667 offline, 0.4.
    assert cpu_ceiling(cores=2, offline_ms=1.5, server_cpu_ms=6.0, load_cpu_ms=1.5) == pytest.approx(0.4)
    assert cpu_ceiling(cores=2, offline_ms=1.5, server_cpu_ms=6.0, load_cpu_ms=None) == pytest.approx(0.5)
    assert cpu_ceiling(cores=2, offline_ms=1.5, server_cpu_ms=None, load_cpu_ms=1.5) is None


@pytest.mark.parametrize(
    ("ratio", "ceiling", "verdict", "of_ceiling"),
    [
        (0.85, 1.1, "met", 0.773),
        (0.66, 1.1, "missed", 0.6),
        (0.31, 0.36, "met against its CPU ceiling", 0.861),
        (0.25, 0.36, "missed", 0.694),
        (0.75, 0.82, "met against its CPU ceiling", 0.915),
        (0.78, 1.0, "missed", 0.78),
        (0.31, None, "missed", None),
    ],
    ids=[
        "met-as-written",
        "ceiling-above-1-so-it-holds-as-written",
        "low-ceiling-reached",
        "low-ceiling-not-reached",
        "ceiling-between-the-target-and-1-reached",
        "ceiling-of-1-holds-as-written",
        "no-ceiling-measured",
    ],
)
def test_sixteen_connections_are_judged_against_the_ceiling_only_when_it_is_below_1(
    ratio: float, ceiling: float | None, verdict: str, of_ceiling: float | None
) -> None:
    row = _verdict("16 connections", load={16: (ratio, ceiling, 0), 64: (ratio, ceiling, 0)})
    assert row["measured"] == ratio and row["required"] == f"≥ {TARGETS['load16_over_offline_min']}"
    assert row["cpu_ceiling"] == ceiling and row["of_ceiling"] == of_ceiling
    assert row["verdict"] == verdict


def test_a_run_without_16_or_64_connections_is_not_measured_there() -> None:
    rows = verdicts(*_run(load={1: (0.5, 0.6, 0), 2: (0.5, 0.6, 0)}))
    by_target = {row["target"]: row for row in rows}
    assert by_target["16 connections ÷ offline batch-1"]["verdict"] == "not measured (no run at 16)"
    assert by_target["errors at 64 connections"]["verdict"] == "not measured (no run at 64)"


def test_errors_at_64_connections_miss_the_target() -> None:
    assert _verdict("errors", load={16: (0.9, 1.1, 0), 64: (0.9, 1.1, 3)})["verdict"] == "missed"
    assert _verdict("errors")["verdict"] == "met"


@pytest.mark.parametrize(
    ("ratio", "int8_dot", "verdict"),
    [
        (0.4, True, "met"),
        (0.5, True, "missed"),
        (0.9, False, "missed (this CPU has no int8 dot products)"),
        (None, True, "not measured"),
    ],
    ids=["met", "missed", "missed-without-int8-dot-products", "no-int8-file"],
)
def test_mobilenet_int8_must_take_at_most_0_45_of_fp32(
    ratio: float | None, int8_dot: bool, verdict: str
) -> None:
    row = _verdict("bare int8", int8_ratio=ratio, int8_dot=int8_dot)
    assert row["required"] == "≤ 0.45" and row["verdict"] == verdict


@pytest.mark.parametrize(
    ("figures", "verdict"),
    [
        ((0.991, 0.996, 200, 0.08), "met"),
        ((0.985, 0.999, 1000, 0.08), "missed"),
        ((0.999, 0.994, 1000, 0.08), "missed"),
        ((1.0, 1.0, 100, 0.08), "missed"),
        ((1.0, 1.0, 1000, float("nan")), "missed"),
        (None, "not measured (no int8 file)"),
    ],
    ids=[
        "met-at-the-edges",
        "grades-disagree",
        "referral-disagrees",
        "too-few-photos",
        "non-finite-outputs",
        "no-int8-file",
    ],
)
def test_the_int8_file_must_have_met_the_accuracy_guard(
    figures: tuple[float, float, int, float] | None, verdict: str
) -> None:
    keys = ("grade_agreement", "referable_agreement", "check_samples", "max_abs_diff")
    guard = dict(zip(keys, figures, strict=True)) if figures else {}
    row = _verdict("int8 accuracy guard", guard=guard)
    assert row["required"] == "grades ≥ 99.0%, referable ≥ 99.5% on ≥ 200 photos"
    assert row["verdict"] == verdict


def test_mobilenet_int8_served_must_be_8_times_faster_than_naive() -> None:
    assert _verdict("served end to end", speedup=8.0)["verdict"] == "met"
    assert _verdict("served end to end", speedup=7.99)["verdict"] == "missed"
    assert _verdict("served end to end", speedup=None)["verdict"] == "not measured"


def test_vgg19_int8_must_take_at_most_0_35_of_fp32() -> None:
    results, tables = _run(int8_ratio=0.4)
    results["models"] = {"vgg19": {**results["models"]["mobilenet"]}}
    tables = {key: [{**row, "model": "vgg19"} for row in rows] for key, rows in tables.items()}
    rows = {row["target"]: row for row in verdicts(results, tables)}
    assert rows["bare int8 ÷ LiteRT fp32"]["required"] == "≤ 0.35"
    assert rows["bare int8 ÷ LiteRT fp32"]["verdict"] == "missed"
    # The served speed-up target is MobileNet's alone.
    assert "served end to end, speed-up over naive" not in rows
