"""Start a campaign in its own gevent-patched interpreter and find run folders (no argparse, no Locust).

Locust monkey-patches the process at import time, so a campaign never runs in the ``dr-serving`` process
itself (which also serves and builds models): ``run_campaign_process`` starts ``python -m loadtest.run`` with
the campaign's ``CampaignSpec`` as JSON and returns the run folder it wrote. ``loadtest.commands`` and
``loadtest.demo`` both use it.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from dr_cli.errors import CliError
from loadtest.spec import CampaignSpec, LocalTargets

__all__ = ["CLEANUP_TIMEOUT_S", "find_run_dir", "run_campaign_process"]

#: How long an interrupted campaign may take to remove its containers and stop its predictors (s).
CLEANUP_TIMEOUT_S = 120.0


def run_campaign_process(spec: CampaignSpec) -> Path:
    """Run a campaign in a fresh, gevent-patched interpreter; returns the run folder.

    With the docker runtime this process names the run's containers (``LocalTargets.run_id``) and, once the
    campaign's process has ended however it ended, removes any of them still there.
    """
    targets = spec.targets
    docker_run = isinstance(targets, LocalTargets) and targets.runtime == "docker"
    if docker_run and not targets.run_id:
        from loadtest.containers import new_run_id

        spec = dataclasses.replace(spec, targets=dataclasses.replace(targets, run_id=new_run_id()))
    with tempfile.TemporaryDirectory(prefix="drlab-") as tmp:
        result = Path(tmp) / "run_dir"
        env = {k: v for k, v in os.environ.items() if k != "LOCUST_SKIP_MONKEY_PATCH"}
        child = subprocess.Popen([sys.executable, "-m", "loadtest.run", spec.to_json(), str(result)], env=env)
        try:
            code = child.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached the child too: let it stop its predictors and remove its containers first.
            try:
                child.wait(timeout=CLEANUP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            raise
        finally:
            if docker_run:
                _remove_left_containers(spec.targets.run_id)  # type: ignore[union-attr]
        if code != 0 or not result.exists():
            raise CliError(
                f"The {spec.scenario_name} campaign failed (exit code {code}); see above.", code=code or 1
            )
        return Path(result.read_text(encoding="utf-8"))


def _remove_left_containers(run_id: str) -> None:
    """Remove the run's containers the campaign's process left (none when it ended cleanly); say so."""
    from loadtest.containers import LABEL, remove_run_containers

    try:
        removed = remove_run_containers(run_id)
    except RuntimeError as exc:
        print(
            f"Warning: {exc}; remove them with: "
            f"docker rm --force $(docker ps -aq --filter label={LABEL}={run_id})",
            file=sys.stderr,
        )
        return
    if removed:
        print(f"Removed {len(removed)} container(s) the campaign left (run {run_id}).", file=sys.stderr)


def find_run_dir(text: str, *, runs: str | Path = "runs") -> Path:
    """Resolve a run folder argument (``latest`` = newest folder with a summary under ``runs``)."""
    if text == "latest":
        candidates = sorted(p.parent for p in Path(runs).glob("*/summary.json"))
        if not candidates:
            raise CliError(
                f"No run folder with a summary.json under {str(runs)!r}; run 'dr-serving lab run' first.",
                code=2,
            )
        return candidates[-1]
    path = Path(text)
    if not (path / "summary.json").is_file() or not (path / "requests.csv").is_file():
        raise CliError(f"{text!r} is not a run folder (it needs summary.json and requests.csv).", code=2)
    return path
