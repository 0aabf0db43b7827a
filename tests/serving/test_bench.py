"""``dr-serving bench``: statistics, argument checks, and one short real run (figures are not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dr_cli.main import main
from serving.bench import percentile


def test_percentile_interpolates() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 100) == 4.0
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


def test_percentile_of_nothing() -> None:
    with pytest.raises(ValueError, match="got none"):
        percentile([], 50)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--requests", "2"], "Error: Expected --requests of at least 3, got 2."),
        (
            ["bench", "--models", "mobilenet,resnet"],
            "Error: Expected models among ['mobilenet', 'vgg19'], got ['resnet'].",
        ),
    ],
    ids=["too-few-requests", "unknown-model"],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == message


@pytest.mark.slow
def test_a_short_run_measures_both_routes_through_the_real_server(
    mobilenet_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    argv = ["bench", "--models", "mobilenet", "--model-root", str(mobilenet_dir.parent), "--requests", "3"]
    assert main([*argv, "--warmup", "1", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["requests"] == 3
    assert set(results["matmul_peak_gflops"]) >= {"tensorflow"}
    mobilenet = results["models"]["mobilenet"]
    assert mobilenet["gflops_per_image"] == pytest.approx(1.14)
    assert mobilenet["bare_ms"]["p50"] > 0
    assert set(mobilenet["served"]) == {"v1_raw", "v2_binary"}
    for route in mobilenet["served"].values():
        # Server prediction time comes from the X-DR-Prediction-Ms header and fits inside the client's time.
        assert 0 < route["prediction_ms"]["p50"] <= route["end_to_end_ms"]["p50"]
        assert route["end_to_end_minus_prediction_ms_p50"] > 0
    printed = capsys.readouterr().out
    assert "v1_raw" in printed and "v2_binary" in printed and f"wrote {out}" in printed
