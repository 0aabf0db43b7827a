"""``dr-serving bench``: statistics, argument checks, and one short real run (figures are not asserted)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from dr_cli.main import main
from serving.bench import (
    BARE_VARIANTS,
    INT8_REFUSAL_FILENAME,
    SERVED_VARIANTS,
    _ensure_model,
    micro_batching_pays,
    percentile,
    served_base,
)
from serving.cpu_features import this_cpu
from tests.serving.conftest import INT8_CHECK_SAMPLES


def test_percentile_interpolates() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 100) == 4.0
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


def test_percentile_of_nothing() -> None:
    with pytest.raises(ValueError, match="got none"):
        percentile([], 50)


def _micro_rows(gain16: float, gain64: float, direct: float, batched: float) -> list[dict[str, float]]:
    return [
        {"callers": 1, "gain": 1.0, "direct_p50_ms": direct, "batched_p50_ms": batched},
        {"callers": 16, "gain": gain16, "direct_p50_ms": 50.0, "batched_p50_ms": 40.0},
        {"callers": 64, "gain": gain64, "direct_p50_ms": 200.0, "batched_p50_ms": 150.0},
    ]


def test_micro_batching_pays_only_with_20_percent_at_16_and_64_and_at_most_1_ms_at_1() -> None:
    assert micro_batching_pays(_micro_rows(1.2, 1.5, 10.0, 11.0))
    assert not micro_batching_pays(_micro_rows(1.19, 1.5, 10.0, 10.0))  # too little at 16
    assert not micro_batching_pays(_micro_rows(1.5, 1.05, 10.0, 10.0))  # too little at 64
    assert not micro_batching_pays(_micro_rows(1.5, 1.5, 10.0, 11.2))  # a lone caller waits longer


def test_a_refused_int8_conversion_is_not_searched_again(
    mobilenet_int8_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    model_dir = tmp_path / "mobilenet"
    shutil.copytree(mobilenet_int8_dir, model_dir, ignore=shutil.ignore_patterns("model.int8*"))
    refused = "No mix of int8 and float layers meets the accuracy guard (test)."
    (model_dir / INT8_REFUSAL_FILENAME).write_text(json.dumps({"refused": refused}))
    assert _ensure_model(model_dir, "mobilenet") == model_dir
    printed = capsys.readouterr().out
    assert f"refused before: {refused}" in printed and "Delete" in printed
    assert "quantizing" not in printed and not (model_dir / "model.int8.tflite").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--requests", "2"], "Error: Expected --requests of at least 3, got 2."),
        (
            ["bench", "--models", "mobilenet,resnet"],
            "Error: Expected models among ['mobilenet', 'vgg19'], got ['resnet'].",
        ),
        (
            ["bench", "--variants", "naive,onnx"],
            "Error: Expected variants among ['naive', 'tf-fp32', 'tf-bf16', 'litert-fp32', 'litert-int8'], "
            "got ['onnx'].",
        ),
        (["bench", "--connections", "1,x"], "Error: Expected --connections like 1,4,16,64, got '1,x'."),
        (["bench", "--connections", "0"], "Error: Expected positive connection counts, got '0'."),
        (
            ["bench", "--micro-batch-rounds", "-1"],
            "Error: Expected --micro-batch-rounds of 0 or more, got -1.",
        ),
    ],
    ids=[
        "too-few-requests",
        "unknown-model",
        "unknown-variant",
        "bad-connections",
        "zero-connections",
        "negative-rounds",
    ],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == message


@pytest.mark.slow
def test_a_short_run_measures_every_variant_bare_served_and_under_load(
    mobilenet_int8_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    argv = ["bench", "--models", "mobilenet", "--model-root", str(mobilenet_int8_dir.parent)]
    argv += ["--requests", "3", "--warmup", "1", "--connections", "1,16", "--seconds", "1"]
    argv += ["--micro-batch-rounds", "1", "--gradability", "flag"]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    results = json.loads(out.read_text())
    assert results["requests"] == 3 and results["gradability"] == "flag"
    assert set(results["peaks_gops"]) >= {"fp32", "int8", "tensorflow_matmul_fp32", "litert_fc_int8"}
    # The ratios are recorded with the CPU they were measured on; one without int8 dot products is named.
    cpu = this_cpu()
    assert results["machine"]["cpu"] == {"summary": cpu.summary(), **cpu.as_dict()}
    assert f"cpu: {cpu.summary()}" in printed
    assert ("no int8 dot-product instructions" in printed) == (not cpu.int8_dot)
    mobilenet = results["models"]["mobilenet"]
    assert mobilenet["gflops_per_image"] == pytest.approx(1.14)
    # bf16 is timed only where it is bf16: on a CPU without AMX oneDNN keeps fp32 math, and the bench says so.
    skipped = mobilenet["skipped"]
    assert set(skipped) <= {"tf-bf16"}
    assert list(mobilenet["bare"]) == [variant for variant in BARE_VARIANTS if variant not in skipped]
    assert mobilenet["bare"]["litert-int8"]["precision"] == "int8"
    if "tf-bf16" in skipped:
        assert "keeps fp32 math" in skipped["tf-bf16"]
        assert "tf-bf16 not measured: this CPU keeps fp32 math" in printed
    else:
        assert mobilenet["bare"]["tf-bf16"]["precision"] == "bf16"
    assert all(figures["p50_ms"] > 0 for figures in mobilenet["bare"].values())
    # CPU per call is the process's (all threads), for the variants that run in it; tf-bf16 runs in a child.
    for variant, figures in mobilenet["bare"].items():
        if variant == "tf-bf16":
            assert figures["cpu_ms_per_call"] is None
        else:
            # A call's threads cannot burn more than every CPU for its whole duration (with slack for timing).
            assert 0 < figures["cpu_ms_per_call"] < 1.5 * (os.cpu_count() or 1) * figures["mean_ms"]
    assert set(mobilenet["micro_batching"]) == {"tf-fp32", "litert-fp32", "litert-int8"}
    for rows in mobilenet["micro_batching"].values():
        assert [row["callers"] for row in rows] == [1, 16, 64]
        assert all(row["direct_per_s"] > 0 and row["batched_per_s"] > 0 for row in rows)
    assert set(mobilenet["micro_batching_pays"]) == set(mobilenet["micro_batching"])
    assert set(mobilenet["served"]) == {v for v in SERVED_VARIANTS if served_base(v) not in skipped}
    for served in mobilenet["served"].values():
        assert 0 < served["prediction_ms_p50"] <= served["end_to_end_ms"]["p50"]
        assert [row["connections"] for row in served["load"]] == [1, 16]
        assert all(row["requests"] > 0 and row["errors"] == 0 for row in served["load"])
        # Where the time goes: the server's CPU per answer and the phases its X-DR headers report.
        assert all(row["server_cpu_ms_per_request"] > 0 for row in served["load"])
        assert all(row["decode_ms"] > 0 and row["prediction_ms"] > 0 for row in served["load"])
        # The naive baseline is called in turn with the served requests.
        assert served["naive_ms_p50"] > 0
    with out.with_name("bench-served.csv").open() as handle:
        served_rows = list(csv.DictReader(handle))
    assert [row["variant"] for row in served_rows] == list(mobilenet["served"])
    for row in served_rows:
        # The speed-up is over the calls made in turn with that server's requests, not the bare table's.
        assert float(row["naive_p50_ms"]) == mobilenet["served"][row["variant"]]["naive_ms_p50"]
        expected = float(row["naive_p50_ms"]) / float(row["e2e_p50_ms"])
        assert float(row["naive_over_e2e"]) == pytest.approx(expected, abs=1e-3)
    assert mobilenet["int8_guard"]["grade_agreement"] >= 0.99
    with out.with_name("bench-load.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * len(mobilenet["served"])
    assert {"per_second", "over_offline", "errors"} <= set(rows[0])
    cores = results["machine"]["schedulable_cpus"]
    assert cores == len(os.sched_getaffinity(0))
    for row in rows:
        model_cpu = mobilenet["bare"][served_base(row["variant"])]["cpu_ms_per_call"]
        expected = model_cpu / float(row["server_cpu_ms"])
        assert float(row["model_cpu_share"]) == pytest.approx(expected, abs=1e-3)
        # The load generator's CPU is measured, and with the server's bounds served ÷ offline.
        assert float(row["load_cpu_ms"]) > 0
        offline_ms = mobilenet["bare"][served_base(row["variant"])]["mean_ms"]
        bound = cores * offline_ms / (float(row["server_cpu_ms"]) + float(row["load_cpu_ms"]))
        assert float(row["cpu_ceiling"]) == pytest.approx(bound, abs=2e-3)
    # Every target has a verdict, in the JSON, the CSV and the printed table.
    verdicts = results["verdicts"]
    with out.with_name("bench-targets.csv").open() as handle:
        assert [row["verdict"] for row in csv.DictReader(handle)] == [row["verdict"] for row in verdicts]
    targets = {(row["target"], row["variant"]): row for row in verdicts}
    assert targets[("bare int8 ÷ LiteRT fp32", "litert-int8")]["required"] == "≤ 0.45"
    # The fixture's guard checked fewer photos than the 200: not a met guard.
    guard = targets[("int8 accuracy guard: grade / referable agreement", "litert-int8")]
    assert guard["measured"].endswith(f" on {INT8_CHECK_SAMPLES}") and guard["verdict"] == "missed"
    assert ("served end to end, speed-up over naive", "litert-int8") in targets
    for variant in mobilenet["served"]:
        assert targets[("errors at 64 connections", variant)]["verdict"] == "not measured (no run at 64)"
        sixteen = targets[("16 connections ÷ offline batch-1", variant)]
        assert sixteen["verdict"] in ("met", "met against its CPU ceiling", "missed")
        assert sixteen["of_ceiling"] == pytest.approx(sixteen["measured"] / sixteen["cpu_ceiling"], abs=2e-3)
    assert "the speed issue's targets in this run" in printed
    with out.with_name("bench-served_batching.csv").open() as handle:
        batching = list(csv.DictReader(handle))
    assert [(row["variant"], row["connections"]) for row in batching] == [
        ("tf-fp32+batch", "1"),
        ("tf-fp32+batch", "16"),
    ]
    assert all(float(row["gain"]) > 0 for row in batching)
    for plot in ("bench-bare.png", "bench-load.png"):
        with Image.open(out.with_name(plot)) as image:
            assert image.format == "PNG" and image.width > 600 and image.height > 300
    assert "closed loop" in printed and "litert-int8" in printed and f"wrote {out}" in printed
