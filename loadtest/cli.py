"""``dr-serving lab run|report`` and ``dr-serving demo``: the load lab's command line.

This module stays free of Locust: campaigns run in a child process (``loadtest.run``) that applies gevent's
monkey-patching first, so the ``dr-serving`` process itself (which also serves and builds models) is never
patched. Exit codes: 0 success, 1 runtime failure, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from loadtest.scenarios import SCENARIOS
from loadtest.scenarios.options import add_scenario_arguments, positive_int
from loadtest.targets import Target, load_targets

__all__ = ["find_run_dir", "register", "run_child"]


def _error(message: str, *, code: int = 1) -> Exception:
    from serving.cli import CliError

    return CliError(message, code=code)


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("targets (one of)")
    choice = where.add_mutually_exclusive_group()
    choice.add_argument(
        "--targets",
        metavar="FILE",
        help="YAML/JSON target file, or the output of 'dr-serving deploy endpoints'",
    )
    choice.add_argument(
        "--local", action="store_true", help="emulate node pools with local predictor processes (default)"
    )
    choice.add_argument("--url", help="one predictor already running on 127.0.0.1 (no process control)")
    where.add_argument(
        "--model-dir",
        action="append",
        metavar="[NAME=]DIR",
        help="model for --local (repeatable; default mobilenet=models/mobilenet)",
    )
    where.add_argument(
        "--pools",
        type=lambda s: [p for p in s.split(",") if p],
        metavar="POOL,…",
        help="emulated pools for --local, comma-separated",
    )
    where.add_argument(
        "--memory-profiles",
        type=lambda s: [p for p in s.split(",") if p],
        metavar="SIZE,…",
        help="label each emulated pool with these memory sizes, e.g. 1Gi,2Gi,3Gi (priced as serverless)",
    )
    where.add_argument("--model", default="mobilenet", help="model name served at --url")
    sending = parser.add_argument_group("requests")
    sending.add_argument("--protocol", choices=("v1", "v2"), default="v1", help="raw-bytes V1 or V2 BYTES")
    sending.add_argument(
        "--images", metavar="DIR", help="folder of JPEG/PNG fundus photos (default: synthetic)"
    )
    sending.add_argument(
        "--image-count", type=positive_int, default=10, help="synthetic images to cycle through"
    )
    sending.add_argument(
        "--image-size", type=positive_int, default=512, help="synthetic image size in pixels"
    )
    sending.add_argument("--seed", type=int, default=0, help="seed of the synthetic images and random shapes")
    output = parser.add_argument_group("output")
    output.add_argument("--out", default="runs", help="folder for run folders (default: runs/)")
    output.add_argument(
        "--no-prometheus",
        dest="prometheus",
        action="store_false",
        help="do not start the local Prometheus server",
    )
    output.add_argument("--prometheus-url", help="query this Prometheus instead of starting one (cluster)")
    output.add_argument(
        "--no-report", dest="report", action="store_false", help="skip writing report.md/html"
    )
    output.add_argument("--quiet", action="store_true", help="no progress output")


def register(subparsers: Any) -> None:
    """Add ``lab`` (``run``, ``report``) and ``demo`` to the root parser."""
    lab = subparsers.add_parser("lab", help="run load-test campaigns and write reports")
    lab_commands = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND", required=True)
    run = lab_commands.add_parser("run", help="run one scenario and write a run folder")
    scenarios = run.add_subparsers(dest="scenario", metavar="SCENARIO", required=True)
    for name in SCENARIOS:
        parser = scenarios.add_parser(name, help=f"the {name} scenario")
        _add_common_arguments(parser)
        add_scenario_arguments(name, parser)
        parser.set_defaults(func=_run_command)
    report = lab_commands.add_parser("report", help="write report.md/report.html for a run folder")
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, or 'latest' (newest under --runs)")
    report.add_argument("--runs", default="runs", help="where 'latest' is looked for")
    report.add_argument("--prices", help="price table YAML (default: loadtest/prices.yaml)")
    report.add_argument("--prometheus-url", help="query this Prometheus for the run's quantiles (cluster)")
    report.add_argument("--quiet", action="store_true", help="do not print the summary table")
    report.set_defaults(func=_report_command)
    demo = subparsers.add_parser(
        "demo", help="build the default model, serve it and run the published warm-up"
    )
    demo.add_argument("--model-dir", default="models/mobilenet", help="model folder (built when missing)")
    demo.add_argument(
        "--train-synthetic", type=int, default=500, help="synthetic training images when building"
    )
    demo.add_argument("--epochs", type=positive_int, default=3, help="training epochs when building")
    demo.add_argument("--seed", type=int, default=0, help="seed of the weights and synthetic photos")
    demo.add_argument("--requests", type=positive_int, default=25, help="warm requests (published: 25)")
    demo.add_argument("--interval", type=float, default=0.2, help="seconds between requests (published: 5)")
    demo.add_argument("--out", default="runs", help="folder for run folders")
    demo.add_argument(
        "--no-prometheus", dest="prometheus", action="store_false", help="skip the local Prometheus"
    )
    demo.set_defaults(func=_demo_command)


def _check_run_options(options: argparse.Namespace) -> None:
    """Reject bad usage in this process (exit 2) before any child is started."""
    if options.targets:
        try:
            load_targets(options.targets)
        except ValueError as exc:
            raise _error(str(exc), code=2) from exc
    elif options.url:
        try:
            Target(model=options.model, url=options.url)
        except ValueError as exc:
            raise _error(str(exc), code=2) from exc
    else:
        from loadtest.emulation import DEFAULT_POOLS

        unknown = [p for p in options.pools or () if p not in DEFAULT_POOLS]
        if unknown:
            raise _error(
                f"Unknown emulated pool(s) {unknown!r}; choose from {sorted(DEFAULT_POOLS)!r}.", code=2
            )
        for spec in options.model_dir or [str(Path("models") / "mobilenet")]:
            path = Path(spec.partition("=")[2] or spec)
            if not path.is_dir():
                raise _error(
                    f"Model directory {str(path)!r} does not exist; build one with "
                    f"'dr-serving model build --arch mobilenet --out {path}' or pass --model-dir.",
                    code=2,
                )
    if options.images and not Path(options.images).is_dir():
        raise _error(f"Image folder {options.images!r} does not exist.", code=2)


def run_child(options: argparse.Namespace) -> Path:
    """Run a campaign in a fresh, gevent-patched interpreter; returns the run folder."""
    with tempfile.TemporaryDirectory(prefix="drlab-") as tmp:
        result = Path(tmp) / "run_dir"
        spec = {k: v for k, v in vars(options).items() if k != "func"}
        spec["result_file"] = str(result)
        env = {k: v for k, v in os.environ.items() if k != "LOCUST_SKIP_MONKEY_PATCH"}
        completed = subprocess.run(
            [sys.executable, "-m", "loadtest.run", json.dumps(spec)], env=env, check=False
        )
        if completed.returncode != 0 or not result.exists():
            raise _error(
                f"The {options.scenario} campaign failed (exit code {completed.returncode}); see above.",
                code=completed.returncode or 1,
            )
        return Path(result.read_text(encoding="utf-8"))


def _run_command(options: argparse.Namespace) -> int:
    _check_run_options(options)
    run_dir = run_child(options)
    print(f"Run folder: {run_dir}")
    return 0


def find_run_dir(text: str, *, runs: str | Path = "runs") -> Path:
    """Resolve a run folder argument (``latest`` = newest folder with a summary under ``runs``)."""
    if text == "latest":
        candidates = sorted(p.parent for p in Path(runs).glob("*/summary.json"))
        if not candidates:
            raise _error(
                f"No run folder with a summary.json under {str(runs)!r}; run 'dr-serving lab run' first.",
                code=2,
            )
        return candidates[-1]
    path = Path(text)
    if not (path / "summary.json").is_file() or not (path / "requests.csv").is_file():
        raise _error(f"{text!r} is not a run folder (it needs summary.json and requests.csv).", code=2)
    return path


def _report_command(options: argparse.Namespace) -> int:
    run_dir = find_run_dir(options.run_dir, runs=options.runs)
    from loadtest.report import write_report

    try:
        paths = write_report(
            run_dir,
            prices=options.prices,
            prometheus_url=options.prometheus_url,
            print_table=not options.quiet,
        )
    except ValueError as exc:
        raise _error(str(exc), code=2) from exc
    print(f"Report: {paths['markdown']} and {paths['html']}")
    return 0


def _demo_command(options: argparse.Namespace) -> int:
    from loadtest.demo import run_demo

    return run_demo(options)
