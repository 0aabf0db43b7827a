"""Fixtures for the load-lab tests: a real predictor process, and the ``dr-serving`` CLI run as a child
process.

Locust monkey-patches the standard library with gevent as soon as it is imported. This pytest process is
shared with the other areas' tests (TensorFlow training fixtures, asyncio servers, subprocesses), so it stays
unpatched:
``LOCUST_SKIP_MONKEY_PATCH=1`` is set here, before any test module imports Locust. Listener and shape tests
then use a real ``Environment`` and real event hooks, which need no greenlets; every real campaign runs
through
``dr-serving lab run`` in a child process that patches first (``loadtest/run.py``), exactly as users run it.
"""

from __future__ import annotations

import os

os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loadtest.targets import Target

#: Labels the shared predictor is started with (read back from its X-DR-* headers).
PREDICTOR_ENV = {"DR_POOL": "testpool", "DR_INSTANCE_TYPE": "m5.xlarge", "DR_MODE": "local"}


#: The checkout under test: children put it first on their path, so a child started in a temporary folder runs
#: this tree's packages, not whatever the virtualenv's editable install points at.
CHECKOUT = Path(__file__).resolve().parents[2]


def child_env() -> dict[str, str]:
    """The environment for child processes: this one minus the no-patch switch and ``DR_*`` settings."""
    env = {k: v for k, v in os.environ.items() if k != "LOCUST_SKIP_MONKEY_PATCH" and not k.startswith("DR_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(CHECKOUT), env.get("PYTHONPATH", "")) if p)
    return env


def dr_serving(*args: str, cwd: Path, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m serving ARGS`` (the ``dr-serving`` CLI) in ``cwd``; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "serving", *args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def predictor(mobilenet_dir: Path) -> Iterator[Target]:
    """The synthetic-trained MobileNet served by a real predictor process on 127.0.0.1, as a Target."""
    from serving.launcher import PredictorProcess

    process = PredictorProcess(mobilenet_dir, model_name="mobilenet", env=PREDICTOR_ENV)
    with process:
        yield Target(
            model="mobilenet", url=process.url, pool="testpool", arch="unknown", instance_type="unknown"
        )


@pytest.fixture(scope="session")
def warm_up_run(mobilenet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short emulated warm-up over two pools, with the real Prometheus server; returns its run folder."""
    from loadtest.emulation import DEFAULT_POOLS

    out = tmp_path_factory.mktemp("warm-up-runs")
    result = dr_serving(
        "lab",
        "run",
        "warm-up",
        "--local",
        "--model-dir",
        f"mobilenet={mobilenet_dir}",
        "--pools",
        ",".join(DEFAULT_POOLS),
        "--requests",
        "6",
        "--interval",
        "0.05",
        "--image-count",
        "4",
        "--image-size",
        "256",
        "--out",
        str(out),
        "--quiet",
        cwd=out,
    )
    assert result.returncode == 0, result.stderr
    runs = sorted(out.glob("*-warm-up"))
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli(*args, cwd=...)`` runs the real ``dr-serving`` command line in a child process."""
    return dr_serving


#: Flags that keep a test campaign short and silent: small images, no Prometheus, no report.
QUICK_RUN_FLAGS = ("--image-size", "256", "--no-prometheus", "--no-report", "--quiet")


def quick_campaign(scenario: str, *args: str, out: Path) -> Path:
    """``dr-serving lab run SCENARIO ARGS``, short and silent, into ``out``; returns the run folder."""
    result = dr_serving("lab", "run", scenario, *args, *QUICK_RUN_FLAGS, "--out", str(out), cwd=out)
    assert result.returncode == 0, result.stderr
    (run_dir,) = out.glob(f"*-{scenario}")
    return run_dir


@pytest.fixture(scope="session")
def quick_run() -> Callable[..., Path]:
    """``quick_run(scenario, *args, out=...)``: a short, silent real campaign; returns its run folder."""
    return quick_campaign


@pytest.fixture(scope="session")
def child_environ() -> dict[str, str]:
    """The environment child processes get (no ``LOCUST_SKIP_MONKEY_PATCH``, no ``DR_*``)."""
    return child_env()
