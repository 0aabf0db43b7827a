"""``dr-serving lab collect``: the master pod found through the API (recorded answers), the pack command run
for real on a local run folder, and its output unpacked safely. Only the exec websocket cannot run here."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from loadtest.collect import extract_runs, master_pod, pack_command
from tests.deploy.replay import api_with

PODS = "/api/v1/namespaces/dr/pods"


def test_master_pod_is_the_running_one_of_the_release() -> None:
    api, replay = api_with({("GET", PODS): ["pods-loadtest-master.json"]})
    assert master_pod(api, "dr", "dr-serving") == "dr-serving-loadtest-master-7c9f6d5b8-x2k4q"
    ((method, path, query),) = replay.requests
    assert (method, path) == ("GET", PODS)
    assert query["labelSelector"] == [
        "app.kubernetes.io/instance=dr-serving,app.kubernetes.io/component=loadtest-master"
    ]


def test_no_master_pod_says_how_to_enable_it() -> None:
    api, _ = api_with({("GET", PODS): ["pods-empty.json"]})
    with pytest.raises(RuntimeError, match=r"loadtest\.enabled=true"):
        master_pod(api, "dr", "dr-serving")


def _runs(tmp_path: Path) -> Path:
    runs = tmp_path / "pod-runs"
    for name in ("20260101T000000Z-ramp", "20260102T000000Z-warm-up"):
        (runs / name / "plots").mkdir(parents=True)
        (runs / name / "summary.json").write_text(json.dumps({"scenario": name}), encoding="utf-8")
        (runs / name / "requests.csv").write_text("timestamp\n1\n", encoding="utf-8")
    (runs / "unfinished").mkdir()
    return runs


def _pack(runs: Path, run: str) -> subprocess.CompletedProcess[str]:
    command = pack_command(run, runs_dir=str(runs))
    assert command[:2] == ["python", "-c"]
    return subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True, check=False)


def test_pack_then_extract_copies_the_newest_or_the_named_run(tmp_path: Path) -> None:
    runs = _runs(tmp_path)
    packed = _pack(runs, "latest")
    assert packed.returncode == 0, packed.stderr
    run_dir = extract_runs(packed.stdout, tmp_path / "local")
    assert run_dir == tmp_path / "local" / "20260102T000000Z-warm-up"
    assert (run_dir / "summary.json").read_text(encoding="utf-8") == json.dumps(
        {"scenario": "20260102T000000Z-warm-up"}
    )
    assert (run_dir / "plots").is_dir()
    named = extract_runs(_pack(runs, "20260101T000000Z-ramp").stdout, tmp_path / "local")
    assert (named / "requests.csv").read_text(encoding="utf-8") == "timestamp\n1\n"
    missing = _pack(runs, "unfinished")
    assert missing.returncode == 1 and "no run folder 'unfinished'" in missing.stderr
    assert "20260101T000000Z-ramp" in missing.stderr


def test_extract_refuses_what_is_not_one_safe_run_folder(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not a base64 tar"):
        extract_runs("not base64!", tmp_path)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(tarfile.FilterError):
        extract_runs(base64.b64encode(buffer.getvalue()).decode(), tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
