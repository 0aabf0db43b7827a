from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# Same options as the mobilenet_dir fixture (tests/conftest.py FIXTURE_*), so the demo reuses that model.
FIXTURE_OPTIONS = ("--train-synthetic", "300", "--epochs", "3", "--seed", "0")


def test_demo_end_to_end(cli, mobilenet_dir: Path, tmp_path: Path) -> None:
    """The default demo converts the model to LiteRT and serves that, as the chart's default image does."""
    model = tmp_path / "mobilenet"
    shutil.copytree(mobilenet_dir, model, ignore=shutil.ignore_patterns("model.tflite*", "model.int8*"))
    result = cli(
        "demo",
        "--model-dir",
        str(model),
        *FIXTURE_OPTIONS,
        "--requests",
        "4",
        "--interval",
        "0.05",
        "--no-prometheus",
        "--out",
        str(tmp_path / "runs"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "reusing mobilenet" in out
    assert f"converting {model} to model.tflite" in out and (model / "model.tflite").is_file()
    assert "serving with LiteRT (model.tflite)" in out
    assert "emulation" in out and "prediction p50" in out and "total p95" in out
    run_dir = Path(out.split("Run folder: ", 1)[1].split()[0])
    assert (run_dir / "report.html").is_file() and (run_dir / "requests.csv").is_file()
    rows = (run_dir / "requests.csv").read_text().splitlines()
    assert len(rows) == 1 + 1 + 4
    (log,) = run_dir.glob("predictor-mobilenet-*.log")
    assert "with backend litert (fp32)" in log.read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["settings"]["backend"] == "litert" and summary["settings"]["precision"] == "fp32"
    assert {(g["backend"], g["precision"]) for g in summary["groups"]} == {("litert", "fp32")}
    assert ": litert fp32" in (run_dir / "report.md").read_text(), "the report's header says what served"
