from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# Same options as the mobilenet_dir fixture (tests/conftest.py FIXTURE_*), so the demo reuses that model.
FIXTURE_OPTIONS = ("--train-synthetic", "300", "--epochs", "3", "--seed", "0")


def test_demo_end_to_end(cli, mobilenet_dir: Path, tmp_path: Path) -> None:
    result = cli(
        "demo",
        "--model-dir",
        str(mobilenet_dir),
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
    assert "emulation" in out and "prediction p50" in out and "total p95" in out
    run_dir = Path(out.split("Run folder: ", 1)[1].split()[0])
    assert (run_dir / "report.html").is_file() and (run_dir / "requests.csv").is_file()
    rows = (run_dir / "requests.csv").read_text().splitlines()
    assert len(rows) == 1 + 1 + 4
