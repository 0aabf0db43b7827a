from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.recorder import COLUMNS
from loadtest.targets import Target

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtest" / "locustfile.py"


@pytest.mark.slow
def test_plain_locust_cli_records_requests(predictor: Target, tmp_path: Path, child_environ: dict) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "-u",
            "2",
            "-r",
            "2",
            "-t",
            "3s",
            "--host",
            predictor.url,
            "--lab-out",
            str(tmp_path),
            "--csv",
            str(tmp_path / "plain"),
            "--only-summary",
            "--pause",
            "0.1",
        ],
        cwd=tmp_path,
        env=child_environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with (tmp_path / "requests.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        rows = list(reader)
    assert rows and {(r["scenario"], r["status"], r["pool"]) for r in rows} == {
        ("locustfile", "200", "local")
    }
    assert (tmp_path / "plain_stats.csv").is_file()
