from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from dr_cli.main import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lab", "run", "warm-up", "--targets", "absent.yaml"], "Cannot read the target file 'absent.yaml'"),
        (["lab", "run", "ramp", "--url", "ftp://127.0.0.1"], "absolute http(s) URL"),
        (
            ["lab", "run", "warm-up", "--local", "--pools", "sparc-64cpu"],
            "Unknown emulated pool(s) ['sparc-64cpu']",
        ),
        (
            ["lab", "run", "cold-start", "--model-dir", "mobilenet=no/such/dir"],
            "Model directory 'no/such/dir'",
        ),
        (["lab", "run", "warm-up", "--url", "http://127.0.0.1:9", "--images", "no-photos"], "Image folder"),
        (["lab", "report", "."], "is not a run folder"),
        (["lab", "report", "latest", "--runs", "empty"], "No run folder with a summary.json"),
    ],
    ids=[
        "missing-targets",
        "bad-url",
        "unknown-pool",
        "missing-model",
        "missing-images",
        "not-a-run",
        "no-runs",
    ],
)
def test_usage_errors_exit_2_with_one_error_line(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ")
    assert message in err[0]


def test_argparse_rejects_bad_numbers(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["lab", "run", "ramp", "--users", "10,0"])
    assert info.value.code == 2
    assert "expected a positive integer, got '0'" in capsys.readouterr().err


@pytest.mark.slow
def test_unreachable_target_is_recorded_as_failures(cli, tmp_path: Path) -> None:
    result = cli(
        "lab",
        "run",
        "warm-up",
        "--url",
        "http://127.0.0.1:9",
        "--requests",
        "2",
        "--interval",
        "0",
        "--image-size",
        "128",
        "--no-prometheus",
        "--out",
        str(tmp_path),
        "--quiet",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Run folder: ")
    run_dir = Path(result.stdout.split(": ", 1)[1].strip())
    with (run_dir / "requests.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    assert all(r["status"] == "0" and r["error"] for r in rows)
    (group,) = json.loads((run_dir / "summary.json").read_text())["groups"]
    assert (group["requests"], group["failures"], group["error_pct"]) == (2, 2, 100.0)
