"""``dr-serving lab collect``: the master pod found through the API (recorded answers), the pack command run
for real on a local run folder, its output carried over the exec websocket as the pinned kubernetes client
speaks it (``tests/deploy/exec_stream.py``: channels, frames, the final Status) and unpacked safely."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from loadtest.collect import collect, exec_in_pod, extract_runs, master_pod, pack_command
from tests.deploy.exec_stream import STDERR, STDOUT, ExecEndpoint
from tests.deploy.replay import api_with

PODS = "/api/v1/namespaces/dr/pods"
MASTER = "dr-serving-loadtest-master-7c9f6d5b8-x2k4q"


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


def _run_folder_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("protocol", ["v5.channel.k8s.io", "v4.channel.k8s.io"])
def test_collect_carries_the_run_folder_over_the_exec_websocket(tmp_path: Path, protocol: str) -> None:
    runs = _runs(tmp_path)
    newest = runs / "20260102T000000Z-warm-up"
    # Large and incompressible enough to span many frames; a binary plot next to the text files.
    rng = __import__("random").Random(7)
    (newest / "requests.csv").write_text(
        "".join(f"{rng.random():.17f},{rng.getrandbits(64):x}\n" for _ in range(40_000)), encoding="utf-8"
    )
    (newest / "plots" / "latency.png").write_bytes(bytes(rng.getrandbits(8) for _ in range(50_000)))
    with ExecEndpoint(protocol=protocol, paths={"/runs": runs}) as endpoint:
        api, replay = api_with({("GET", PODS): ["pods-loadtest-master.json"]}, host=endpoint.host)
        run_dir = collect(api, namespace="dr", release="dr-serving", out=tmp_path / "local")
    assert run_dir == tmp_path / "local" / newest.name
    assert _run_folder_files(run_dir) == _run_folder_files(newest)
    ((request),) = endpoint.requests
    assert request.path == f"{PODS}/{MASTER}/exec"
    assert request.query["command"] == pack_command("latest")
    assert {k: v for k, v in request.query.items() if k != "command"} == {
        "stdout": ["true"],
        "stderr": ["true"],
        "stdin": ["false"],
        "tty": ["false"],
    }
    assert request.offered_protocols == ["v5.channel.k8s.io", "v4.channel.k8s.io"]
    assert sum(frame[0] == STDOUT for frame in endpoint.frames) > 10
    assert [(m, p) for m, p, _ in replay.requests] == [("GET", PODS)]


def test_collect_reports_the_pods_stderr_when_the_command_fails(tmp_path: Path) -> None:
    with ExecEndpoint(paths={"/runs": _runs(tmp_path)}) as endpoint:
        api, _ = api_with({("GET", PODS): ["pods-loadtest-master.json"]}, host=endpoint.host)
        with pytest.raises(RuntimeError, match=r"python in pod .* exited with 1: no run folder 'nope'"):
            collect(api, namespace="dr", release="dr-serving", run="nope", out=tmp_path / "local")
    # The message came on the stderr channel, the exit code in the final Status; nothing was unpacked.
    assert [frame[0] for frame in endpoint.frames][:-1] == [STDERR]
    assert not (tmp_path / "local").exists()


def test_a_missing_executable_is_reported_with_the_runtimes_words(tmp_path: Path) -> None:
    """The InternalError a runtime answers has no exit code: the client's ``returncode`` would raise on it."""
    with ExecEndpoint(status_only="exec-status-not-found.json") as endpoint:
        api, _ = api_with({}, host=endpoint.host)
        with pytest.raises(RuntimeError, match=r'could not run in pod p: .*exec: "sh": executable file not'):
            exec_in_pod(api, "dr", "p", ["sh", "-c", "true"])


def test_an_exec_refused_by_rbac_names_the_permission(tmp_path: Path) -> None:
    with ExecEndpoint(refuse=(403, "status-forbidden-exec.json")) as endpoint:
        api, _ = api_with({}, host=endpoint.host)
        with pytest.raises(RuntimeError) as refused:
            exec_in_pod(api, "dr", MASTER, pack_command())
    assert str(refused.value) == (
        f"Could not exec into pod {MASTER} in namespace 'dr': 403 Forbidden: pods \"{MASTER}\" is "
        'forbidden: User "system:serviceaccount:dr:lab-reader" cannot create resource "pods/exec" in API '
        'group "" in the namespace "dr"; exec needs the \'create\' verb on pods/exec'
    )
    assert endpoint.frames == []
