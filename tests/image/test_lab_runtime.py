"""The load lab's docker runtime on the project's real lite image: memory limits, OOM, container cold starts.

One short campaign (the MobileNet fixture, two memory profiles that fit and one deliberately too small, one
cold start per target) runs through ``dr-serving lab run cold-start --local --runtime docker`` in a child
process, exactly as a user runs it, with the real local Prometheus scraping the containers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from dr_cli.errors import CliError
from loadtest.emulation import ALL_POOLS, default_pool_names
from loadtest.launch import run_campaign_process
from loadtest.scenarios.options import WarmUpOptions
from loadtest.spec import CampaignSpec, LocalTargets, PrometheusSpec

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CHECKOUT = Path(__file__).resolve().parents[2]
#: Two profiles that fit and one the predictor cannot even import its libraries in.
PROFILES = ("1Gi", "2Gi", "32Mi")


def _campaign_env() -> dict[str, str]:
    """This environment minus Locust's patch switch and DR_ settings, this checkout first on the path."""
    env = {k: v for k, v in os.environ.items() if k != "LOCUST_SKIP_MONKEY_PATCH" and not k.startswith("DR_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(CHECKOUT), env.get("PYTHONPATH", "")) if p)
    return env


def _dr_serving(*args: str, cwd: Path, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    env = _campaign_env()
    return subprocess.run(
        [sys.executable, "-m", "serving", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _lab_containers() -> set[str]:
    """Ids of every lab container on the engine (other campaigns' too: compare with a snapshot)."""
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--no-trunc", "--filter", "label=dr-serving.lab"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(listed.stdout.split())


@pytest.fixture(scope="module")
def docker_run(
    built_images: dict[str, str], served_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """The campaign's summary.json (plus its folder and output under ``_run``)."""
    out = tmp_path_factory.mktemp("lab-docker")
    pool = default_pool_names()[0]
    before = _lab_containers()
    result = _dr_serving(
        "lab", "run", "cold-start", "--local", "--runtime", "docker", "--image-suffix", "test",
        "--model-dir", f"mobilenet={served_model_dir}", "--pools", pool,
        "--memory-profiles", ",".join(PROFILES), "--cold-requests", "1", "--warm-after", "2",
        "--out", str(out), "--quiet",
        cwd=out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    run_dir = Path(result.stdout.strip().rsplit("Run folder: ", 1)[1])
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["_run"] = {
        "dir": run_dir,
        "pool": pool,
        "stderr": result.stderr,
        "left": _lab_containers() - before,
    }
    return summary


def _container(summary: dict, profile: str) -> dict:
    return next(c for c in summary["containers"] if c["memory_profile"] == profile)


def test_every_output_says_emulation_and_docker(docker_run: dict) -> None:
    assert docker_run["environment"].startswith("emulation")
    assert "docker containers" in docker_run["environment"]
    assert docker_run["settings"]["runtime"] == "docker"
    report = (docker_run["_run"]["dir"] / "report.md").read_text()
    assert "emulation" in report and "Containers: memory and CPU from cgroup stats" in report


def test_memory_profiles_are_real_limits_with_peak_and_steady_memory(docker_run: dict) -> None:
    for profile, limit_mib, cpus in (("1Gi", 1024, 0.5), ("2Gi", 2048, 1.0)):
        item = _container(docker_run, profile)
        assert item["status"] == "running" and not item["oom_killed"]
        assert item["memory_limit_mib"] == limit_mib
        assert item["cpus"] == cpus  # the chart's CPU for the profile (values.yaml), capped at the pool
        assert item["image"].endswith("-lite-test")  # the fixture folder has model.tflite
        assert item["starts"] == 2  # started, stopped (scale to zero), started cold
        # LiteRT + the server: tens of MiB at least, far from the limit; steady once ready ≤ the peak.
        assert 40 < item["steady_working_set_mib"] <= item["peak_working_set_mib"] <= item["peak_mib"]
        assert item["peak_mib"] < limit_mib and item["peak_pct_of_limit"] < 50
        assert item["samples"] >= 10
        assert item["cpu_seconds"] > 0.5  # imports, model load and predictions, twice
        assert 0 < item["cpu_peak_cores"] <= cpus * 1.25  # the CFS quota holds (sampling jitter allowed)


def test_too_small_profile_is_an_oom_killed_failed_target(docker_run: dict) -> None:
    item = _container(docker_run, "32Mi")
    assert item["oom_killed"] and item["status"] == "oom-killed" and item["exit_code"] == 137
    assert item["peak_source"].startswith("OOM kill")
    targets = [t["memory_profile"] for t in docker_run["targets"]]
    assert "32Mi" not in targets and sorted(targets) == ["1Gi", "2Gi"]
    report = (docker_run["_run"]["dir"] / "report.md").read_text()
    assert "OOM-KILLED (failed target)" in report and "failed targets" in report


def test_cold_start_breakdown_adds_up(docker_run: dict) -> None:
    entries = docker_run["cold_start"]
    assert len(entries) == 2 and all(not e["error"] for e in entries)
    for entry in entries:
        assert entry["kind"] == "container start from zero (docker)"
        assert 0 < entry["container_start_s"] < 10
        assert 0 < entry["model_load_s"] < entry["process_start_to_ready_s"]
        parts = (
            entry["container_start_s"]
            + entry["process_start_to_ready_s"]
            + entry["readiness_seen_after_s"]
            + entry["ready_to_first_response_s"]
        )
        # The parts are measured by different clocks (engine, predictor, client): they add up within 0.5 s.
        assert abs(parts - entry["total_s"]) < 0.5, entry
        assert entry["image_pull_estimate_s"] == pytest.approx(entry["image_compressed_mb"] / 50.0, abs=0.01)
        assert entry["total_with_pull_estimate_s"] == pytest.approx(
            entry["total_s"] + entry["image_pull_estimate_s"], abs=0.01
        )
    assert "gzip" in docker_run["settings"]["image_pull"]
    cold = [g for g in docker_run["groups"] if g["phase"] == "cold"]
    assert len(cold) == 2 and all(g["failures"] == 0 for g in cold)


def test_prometheus_scraped_the_containers_and_agrees_with_the_csv(docker_run: dict) -> None:
    from loadtest.report.analysis import prometheus_checks
    from loadtest.report.run import load_run

    checks = prometheus_checks(load_run(docker_run["_run"]["dir"]))
    predictor = [c for c in checks if c.source.startswith("predictor")]
    pools = {c.pool for c in predictor}
    pool = docker_run["_run"]["pool"]
    assert pools == {f"{pool}-1Gi", f"{pool}-2Gi"}
    assert checks
    assert [c for c in checks if not c.agree] == []  # a failure names only the checks that disagree


def test_every_lab_container_is_removed(docker_run: dict) -> None:
    assert docker_run["_run"]["left"] == set()


def test_missing_image_names_make_image(
    built_images: dict[str, str], served_model_dir: Path, tmp_path: Path
) -> None:
    before = _lab_containers()
    result = _dr_serving(
        "lab", "run", "warm-up", "--local", "--runtime", "docker", "--image-suffix", "no-such-build",
        "--model-dir", str(served_model_dir), "--pools", default_pool_names()[0], "--out", str(tmp_path),
        "--quiet",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert "make image" in result.stderr and "0.1.0-lite-no-such-build" in result.stderr.replace("\n", "")
    assert _lab_containers() - before == set()


def test_arm64_emulated_pool_is_docker_only(tmp_path: Path) -> None:
    if "arm64-emulated" not in ALL_POOLS:
        pytest.skip("this host is arm64: its pools are native")
    result = _dr_serving("lab", "run", "warm-up", "--local", "--pools", "arm64-emulated", cwd=tmp_path)
    assert result.returncode == 2 and "--runtime docker" in result.stderr


def test_ctrl_c_removes_every_container(served_model_dir: Path, tmp_path: Path) -> None:
    env = _campaign_env()
    command = [
        sys.executable, "-m", "serving", "lab", "run", "warm-up", "--local", "--runtime", "docker",
        "--image-suffix", "test", "--model-dir", f"mobilenet={served_model_dir}", "--pools",
        default_pool_names()[0], "--memory-profiles", "1Gi,2Gi", "--requests", "1000", "--out", str(tmp_path),
        "--quiet", "--no-prometheus",
    ]  # fmt: skip
    # A session of its own: Ctrl-C in a terminal signals the whole foreground process group.
    before = _lab_containers()
    process = subprocess.Popen(command, cwd=tmp_path, env=env, start_new_session=True, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(_lab_containers() - before) < 2:  # both containers exist (the second one is starting)
            assert process.poll() is None and time.monotonic() < deadline, "no container appeared"
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, stderr.decode()[-2000:]
    assert _lab_containers() - before == set()


def test_arm64_emulated_pool_answers_labelled_and_unpriced(
    arm64_lite_image: str, served_model_dir: Path, tmp_path: Path
) -> None:
    """A functional run on the arm64 lite image under QEMU: it answers, and says what it is everywhere."""
    if "arm64-emulated" not in ALL_POOLS:
        pytest.skip("this host is arm64: its pools are native")
    result = _dr_serving(
        "lab", "run", "warm-up", "--local", "--runtime", "docker", "--image-suffix", "test",
        "--model-dir", f"mobilenet={served_model_dir}", "--pools", "arm64-emulated",
        "--memory-profiles", "2Gi", "--requests", "1", "--discard", "0", "--out", str(tmp_path), "--quiet",
        "--no-prometheus",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = Path(result.stdout.strip().rsplit("Run folder: ", 1)[1])
    summary = json.loads((run_dir / "summary.json").read_text())
    (container,) = summary["containers"]
    assert (
        container["image"] == arm64_lite_image
        and "QEMU emulation, not Graviton performance" in container["arch"]
    )
    (target,) = summary["targets"]
    assert target["arch"] == "arm64" and target["price_per_hour"] == 0.0
    (group,) = summary["groups"]
    assert group["requests"] == 1 and group["failures"] == 0 and group["arch"] == "arm64"
    report = (run_dir / "report.md").read_text()
    assert "QEMU emulation, not Graviton performance" in report
    assert "## Cost per inference" not in report and "## Ours beside the published" not in report


def test_the_launching_process_removes_what_a_killed_campaign_left(
    served_model_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A campaign process killed outright leaves its containers; the process that launched it removes them."""
    env = _campaign_env()  # the launcher passes its own environment on
    for name in set(os.environ) - set(env):
        monkeypatch.delenv(name)
    monkeypatch.setenv("PYTHONPATH", env["PYTHONPATH"])
    spec = CampaignSpec(
        scenario=WarmUpOptions(requests=1000, interval=0.2),
        targets=LocalTargets(
            models={"mobilenet": served_model_dir},
            pools=(default_pool_names()[0],),
            runtime="docker",
            image_suffix="test",
        ),
        out=tmp_path,
        prometheus=PrometheusSpec(start=False),
        quiet=True,
    )
    before = _lab_containers()
    outcome: list[BaseException] = []

    def launch() -> None:
        try:
            run_campaign_process(spec)
        except BaseException as exc:  # the launcher's answer to a killed campaign, checked below
            outcome.append(exc)

    launcher = threading.Thread(target=launch)
    launcher.start()
    deadline = time.monotonic() + 120
    while not _lab_containers() - before:
        assert launcher.is_alive() and time.monotonic() < deadline, "no container appeared"
        time.sleep(0.2)
    (campaign,) = [
        child for child in psutil.Process().children() if "loadtest.run" in " ".join(child.cmdline())
    ]
    campaign.kill()
    launcher.join(timeout=120)

    assert not launcher.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], CliError), outcome
    assert "exit code -9" in str(outcome[0])
    assert _lab_containers() - before == set()
    assert "container(s) the campaign left" in capfd.readouterr().err
