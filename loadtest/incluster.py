"""The in-cluster campaign: the ``dr-serving lab run`` command line the chart's load-test ConfigMap describes.

``make loadtest LOADTEST_IN_CLUSTER=1`` execs ``python -m serving lab in-cluster [--scenario NAME] [--
FLAGS]`` in the chart's Locust master pod. The lab image has no shell (``docker/harden.sh``), so the
ConfigMap (mounted at ``/etc/dr-serving/loadtest``: ``targets.yaml``, ``scenario``, ``workers``,
``masterPort``, ``pool``, ``args``) is read here: the master listens on all addresses for the worker pods
(``--external-workers``) and writes the run folder to ``/runs``, where ``dr-serving lab collect`` finds it. A
scenario named at start replaces the ConfigMap's scenario and its ``args`` (they are that scenario's flags);
FLAGS come last (argparse keeps the last value of a repeated flag, so they override).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from loadtest.collect import RUNS_DIR

__all__ = ["CONFIG_DIR", "campaign_argv"]

#: Where the chart mounts the load-test ConfigMap in the master pod.
CONFIG_DIR = Path("/etc/dr-serving/loadtest")
#: Scenarios that need the Kubernetes API (the load-test pods have neither a token nor the client).
OUTSIDE_ONLY = {"cold-start": "it watches the predictor's pods scale to zero through the Kubernetes API"}


def _read(config: Path, key: str) -> str:
    path = config / key
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError as exc:
        raise RuntimeError(
            f"{path} is missing; is the chart's load-test ConfigMap mounted at {config}?"
        ) from exc


def campaign_argv(
    config: Path = CONFIG_DIR, *, scenario: str | None = None, flags: Sequence[str] = ()
) -> list[str]:
    """The ``dr-serving`` arguments of the campaign the ConfigMap mounted at ``config`` describes."""
    name = scenario or _read(config, "scenario")
    if name in OUTSIDE_ONLY:
        raise RuntimeError(
            f"The {name} scenario cannot run in the load-test pods: {OUTSIDE_ONLY[name]}; run it from "
            f"outside the cluster: make loadtest SCENARIO={name}"
        )
    return [
        "lab",
        "run",
        name,
        "--targets",
        str(config / "targets.yaml"),
        "--workers",
        _read(config, "workers"),
        "--external-workers",
        "--master-bind",
        "0.0.0.0",
        "--master-port",
        _read(config, "masterPort"),
        "--generator-pool",
        _read(config, "pool"),
        "--out",
        RUNS_DIR,
        "--no-prometheus",
        *([] if scenario else shlex.split(_read(config, "args"))),
        *flags,
    ]
