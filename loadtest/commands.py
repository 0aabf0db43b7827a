"""``dr-serving lab run|report`` and ``dr-serving demo``: the load lab's command line.

This module stays free of Locust: campaigns run in a child process (``loadtest.run``) that applies gevent's
monkey-patching first, so the ``dr-serving`` process itself (which also serves and builds models) is never
patched. Exit codes: 0 success, 1 runtime failure, 2 bad usage.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from dr_cli.errors import CliError
from dr_cli.types import comma_list, non_negative_float, positive_int, user_counts
from loadtest.incluster import CONFIG_DIR
from loadtest.launch import find_run_dir, run_campaign_process
from loadtest.protocols import PROTOCOLS
from loadtest.scenarios import SCENARIOS
from loadtest.scenarios.options import SCENARIO_OPTIONS, UsageError
from loadtest.spec import CampaignSpec

__all__ = ["register"]


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    from serving.backends import BACKEND_KINDS, PRECISIONS

    where = parser.add_argument_group("targets (one of)")
    choice = where.add_mutually_exclusive_group()
    choice.add_argument(
        "--targets",
        metavar="FILE",
        help="YAML/JSON target file, or the output of 'dr-serving deploy endpoints'",
    )
    choice.add_argument(
        "--local", action="store_true", help="emulate node pools on this machine (default; see --runtime)"
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
        type=comma_list,
        metavar="POOL,…",
        help="emulated pools for --local, comma-separated",
    )
    where.add_argument(
        "--memory-profiles",
        type=comma_list,
        metavar="SIZE,…",
        help="memory sizes per emulated pool, e.g. 1Gi,2Gi,3Gi (priced as serverless): labels with --runtime "
        "process, real container limits with --runtime docker",
    )
    where.add_argument(
        "--runtime",
        choices=("process", "docker"),
        default=None,
        help="--local: predictor processes pinned to cores (default; memory scenario: docker), or "
        "containers of the project's image with cgroup memory/CPU limits (needs an engine, 'make image')",
    )
    where.add_argument(
        "--image-suffix",
        default="",
        metavar="SUFFIX",
        help="--runtime docker: tag suffix of the images, e.g. 'test' for "
        "dr-serving/predictor:VERSION-lite-test",
    )
    where.add_argument(
        "--image-flavour",
        choices=("auto", "lite", "full"),
        default="auto",
        help="--runtime docker: image flavour (auto: lite when the model folder has model.tflite, else full)",
    )
    where.add_argument(
        "--pull-bandwidth",
        type=non_negative_float,
        default=50.0,
        metavar="MB/S",
        help="--runtime docker: bandwidth at which a cold start's absent image pull is estimated "
        "(default 50)",
    )
    where.add_argument(
        "--backend",
        choices=BACKEND_KINDS,
        default="auto",
        help="--local processes: inference backend of the predictors (auto: the SavedModel where TensorFlow "
        "is installed; litert serves model.tflite, as the chart's default lite image does)",
    )
    where.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="--local: the predictors' arithmetic (int8: model.int8.tflite with LiteRT; bf16: the SavedModel "
        "in oneDNN's bfloat16 mode)",
    )
    where.add_argument(
        "--threads",
        type=int,
        default=0,
        help="--local: the predictors' threads per model call (serve --threads; containers: DR_THREADS); 0 "
        "sizes each by its CPUs, the pinned cores of a process or the CPU limit of a container (default 0)",
    )
    where.add_argument("--model", default="mobilenet", help="model name served at --url")
    sending = parser.add_argument_group("requests")
    sending.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="v1",
        help="raw-bytes V1, V2 BYTES as JSON or binary, or SageMaker's /invocations",
    )
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
    sending.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="generate the load with a Locust master and N worker processes on 127.0.0.1 (default 0: one "
        "process)",
    )
    sending.add_argument(
        "--external-workers",
        action="store_true",
        help="do not start workers: wait for N workers to connect (the chart's loadtest worker pods)",
    )
    sending.add_argument(
        "--master-bind", default="127.0.0.1", metavar="ADDR", help="address the Locust master listens on"
    )
    sending.add_argument(
        "--master-port", type=int, default=0, metavar="PORT", help="Locust master port (0: a free one)"
    )
    sending.add_argument(
        "--generator-pool", metavar="POOL", help="node pool of the workers, shown in the report"
    )
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
    from serving.backends import BACKEND_KINDS

    lab = subparsers.add_parser("lab", help="run load-test campaigns and write reports")
    lab_commands = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND", required=True)
    run = lab_commands.add_parser("run", help="run one scenario and write a run folder")
    scenarios = run.add_subparsers(dest="scenario", metavar="SCENARIO", required=True)
    for name in SCENARIOS:
        parser = scenarios.add_parser(name, help=f"the {name} scenario")
        _add_common_arguments(parser)
        SCENARIO_OPTIONS[name].add_arguments(parser.add_argument_group(f"{name} options"))
        parser.set_defaults(func=_run_command)
    report = lab_commands.add_parser("report", help="write report.md/report.html for a run folder")
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, or 'latest' (newest under --runs)")
    report.add_argument("--runs", default="runs", help="where 'latest' is looked for")
    report.add_argument("--prices", help="price table YAML (default: loadtest/prices.yaml)")
    report.add_argument("--prometheus-url", help="query this Prometheus for the run's quantiles (cluster)")
    report.add_argument("--quiet", action="store_true", help="do not print the summary table")
    report.set_defaults(func=_report_command)
    bench = lab_commands.add_parser(
        "generator-bench",
        help="how many requests/s one Locust process generates vs a master + N workers (cheap route)",
    )
    bench.add_argument("--model-dir", default="models/mobilenet", help="model the real predictor serves")
    bench.add_argument(
        "--worker-counts",
        type=user_counts,
        default=[1, 2],
        metavar="N,…",
        help="worker counts to compare with one process",
    )
    bench.add_argument("--users", type=positive_int, default=50, help="users (no pause) per run")
    bench.add_argument("--seconds", type=non_negative_float, default=10.0, help="length of each run (s)")
    bench.add_argument("--rounds", type=positive_int, default=2, help="interleaved rounds")
    bench.add_argument("--path", default="/v2/health/live", help="the cheap route the users GET")
    bench.add_argument("--out", default="runs", help="folder for generator-bench-*.json/.csv")
    bench.set_defaults(func=_generator_bench_command)
    collect = lab_commands.add_parser(
        "collect",
        help="copy a run folder out of the in-cluster load-test master pod (chart: loadtest.enabled)",
    )
    collect.add_argument(
        "run", nargs="?", default="latest", help="run folder name in the pod (default: newest)"
    )
    collect.add_argument("--release", default="dr-serving", help="Helm release of the chart")
    collect.add_argument("--namespace", default="dr-serving", help="namespace of the release")
    collect.add_argument("--out", default="runs", help="local folder the run folder is copied into")
    collect.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    collect.add_argument("--context", help="kubeconfig context")
    collect.set_defaults(func=_collect_command)
    in_cluster = lab_commands.add_parser(
        "in-cluster",
        help="inside the chart's load-test master pod: run the campaign its ConfigMap describes",
    )
    in_cluster.add_argument(
        "--scenario", choices=SCENARIOS, help="run this scenario (without the ConfigMap's flags)"
    )
    in_cluster.add_argument("--config", default=str(CONFIG_DIR), help="folder of the mounted ConfigMap")
    in_cluster.add_argument(
        "flags", nargs=argparse.REMAINDER, help="after --: more `lab run` flags (override)"
    )
    in_cluster.set_defaults(func=_in_cluster_command)
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
        "--backend",
        choices=BACKEND_KINDS,
        default="litert",
        help="litert: model.tflite (converted when missing), as the chart's default lite image serves; "
        "savedmodel: TensorFlow, as the full image serves",
    )
    demo.add_argument(
        "--no-prometheus", dest="prometheus", action="store_false", help="skip the local Prometheus"
    )
    demo.set_defaults(func=_demo_command)


def _run_command(options: argparse.Namespace) -> int:
    try:
        spec = CampaignSpec.from_args(options)
        spec.check()
    except UsageError as exc:
        raise CliError(str(exc), code=2) from exc
    run_dir = run_campaign_process(spec)
    print(f"Run folder: {run_dir}")
    return 0


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
        raise CliError(str(exc), code=2) from exc
    print(f"Report: {paths['markdown']} and {paths['html']}")
    return 0


def _generator_bench_command(options: argparse.Namespace) -> int:
    import os
    import platform

    from rich.console import Console
    from rich.table import Table

    from loadtest.generator_bench import run_generator_bench, summary_rows, write_results

    model_dir = Path(options.model_dir)
    if not model_dir.is_dir():
        raise CliError(
            f"Model directory {str(model_dir)!r} does not exist; build one with 'make model'.", code=2
        )
    rows = run_generator_bench(
        model_dir,
        workers=options.worker_counts,
        users=options.users,
        seconds=options.seconds,
        rounds=options.rounds,
        path=options.path,
    )
    meta = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "route": options.path,
        "users": options.users,
        "seconds": options.seconds,
        "rounds": options.rounds,
        "note": "the predictor runs on the same machine and shares its CPUs with the generator",
    }
    json_path, csv_path = write_results(rows, Path(options.out), meta=meta)
    table = Table(title=f"Load generator: {options.users} users GET {options.path} ({meta['machine']})")
    summary = summary_rows(rows)
    for column in summary[0]:
        table.add_column(column, justify="left" if column == "generator" else "right")
    for item in summary:
        table.add_row(*("" if v is None else str(v) for v in item.values()))
    Console().print(table)
    print(f"Results: {json_path} and {csv_path}")
    return 0


def _collect_command(options: argparse.Namespace) -> int:
    from dr_deploy.cluster import api_client
    from loadtest.collect import collect

    try:
        api = api_client(kubeconfig=options.kubeconfig, context=options.context)
        run_dir = collect(
            api, namespace=options.namespace, release=options.release, run=options.run, out=Path(options.out)
        )
    except RuntimeError as exc:
        raise CliError(str(exc), code=1) from exc
    print(f"Run folder: {run_dir}")
    return 0


def _in_cluster_command(options: argparse.Namespace) -> int:
    from loadtest.incluster import campaign_argv

    flags = options.flags[1:] if options.flags[:1] == ["--"] else options.flags
    try:
        argv = campaign_argv(Path(options.config), scenario=options.scenario, flags=flags)
    except RuntimeError as exc:
        raise CliError(str(exc), code=1) from exc
    print(">> dr-serving " + shlex.join(argv), flush=True)
    parser = argparse.ArgumentParser(prog="dr-serving")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def _demo_command(options: argparse.Namespace) -> int:
    from loadtest.demo import run_demo

    return run_demo(
        model_dir=Path(options.model_dir),
        train_synthetic=options.train_synthetic,
        epochs=options.epochs,
        seed=options.seed,
        requests=options.requests,
        interval=options.interval,
        out=Path(options.out),
        prometheus=options.prometheus,
        backend=options.backend,
    )
