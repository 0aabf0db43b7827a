"""``dr-serving demo`` (``make run``): build or reuse the default model, serve it on 127.0.0.1, run the
published warm-up (1 discarded + 25 requests) with synthetic fundus images, and print prediction time vs
total latency. It serves with LiteRT by default, as the chart's default (lite) image does, converting
``model.tflite`` when it is missing. Without Debian's ``prometheus`` binary it runs without Prometheus and
says how to add it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rich.console import Console
from rich.table import Table

from loadtest.launch import run_campaign_process
from loadtest.report.render import make_console
from loadtest.scenarios.options import WarmUpOptions
from loadtest.spec import CampaignSpec, LocalTargets, PrometheusSpec, ReportSpec
from loadtest.summary import RunSummary

__all__ = ["demo_table", "run_demo"]


def demo_table(summary: RunSummary) -> Table:
    """The demo's table: server prediction time vs total latency (p50/p95) per target, warm requests only."""
    table = Table(
        title=f"Warm-up: server prediction time vs total latency (ms) — {summary.environment}",
        title_justify="left",
    )
    for name in (
        "target",
        "n",
        "prediction p50",
        "prediction p95",
        "total p50",
        "total p95",
        "prediction/total",
    ):
        table.add_column(name, justify="left" if name == "target" else "right")
    for group in summary.groups:
        if group.phase != "warm":
            continue
        pred, total = group.server_prediction_ms, group.client_ms
        share = f"{pred.p50 / total.p50:.2f}" if pred.p50 and total.p50 else "–"
        table.add_row(
            group.target,
            str(group.requests),
            *(f"{v:.1f}" if v is not None else "–" for v in (pred.p50, pred.p95, total.p50, total.p95)),
            share,
        )
    return table


def run_demo(
    *,
    model_dir: Path,
    train_synthetic: int,
    epochs: int,
    seed: int,
    requests: int,
    interval: float,
    out: Path,
    prometheus: bool,
    backend: str = "litert",
) -> int:
    """Run the demo end to end; returns the exit code (1 when the model cannot be served by ``backend``)."""
    console = make_console(soft_wrap=True)
    console.print(
        f">> model: building or reusing mobilenet in {model_dir} (synthetic training: "
        f"{train_synthetic} images)",
        highlight=False,
    )
    # TensorFlow's C++ info lines (oneDNN, CPU features, SavedModel reader) would bury the demo's own.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from serving.zoo import build_model, console_verbosity

    build_model(
        "mobilenet",
        model_dir,
        train_synthetic=train_synthetic,
        epochs=epochs,
        seed=seed,
        verbose=console_verbosity(),
    )
    if not _ready_for(backend, model_dir, console):
        return 1
    from loadtest.emulation import DEFAULT_POOLS

    if (
        prometheus
        and shutil.which("prometheus", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/bin") is None
    ):
        console.print(
            ">> prometheus: not installed, so this run skips the Prometheus cross-check "
            "(add it with 'sudo apt-get install prometheus' or 'make system-deps')",
            highlight=False,
        )
        prometheus = False

    spec = CampaignSpec(
        scenario=WarmUpOptions(requests=requests, interval=interval),
        targets=LocalTargets(
            models={"mobilenet": model_dir}, pools=(next(iter(DEFAULT_POOLS)),), backend=backend
        ),
        seed=seed,
        out=out,
        prometheus=PrometheusSpec(start=prometheus),
        report=ReportSpec(print=False),
    )
    console.print(
        f">> warm-up: 1 discarded + {requests} requests, {interval:g} s apart (published: 25 at 5 s)",
        highlight=False,
    )
    run_dir = run_campaign_process(spec)
    console.print(demo_table(RunSummary.read(run_dir / "summary.json")))
    console.print(f"Run folder: {run_dir}  (report: {run_dir / 'report.html'})", highlight=False)
    return 0


def _ready_for(backend: str, model_dir: Path, console: Console) -> bool:
    """Convert ``model.tflite`` when ``backend`` serves LiteRT and it is missing; say what will serve."""
    from serving.backends import choose_kind
    from serving.backends.litert import TFLITE_FILENAME

    kind = choose_kind(model_dir, kind=backend)
    tflite = model_dir / TFLITE_FILENAME
    if kind == "litert" and not tflite.is_file():
        from serving.zoo.convert import AgreementError, convert_model

        console.print(f">> converting {model_dir} to {TFLITE_FILENAME} (LiteRT)", highlight=False)
        try:
            convert_model(model_dir)
        except AgreementError as exc:
            console.print(
                f"Error: {exc} Serve the SavedModel instead: --backend savedmodel "
                "(make run RUN_BACKEND=savedmodel).",
                highlight=False,
            )
            return False
    what = (
        f"LiteRT ({TFLITE_FILENAME}), as the chart's default lite image does"
        if kind == "litert"
        else "the SavedModel with TensorFlow, as the chart's full image does"
    )
    console.print(f">> serving with {what}", highlight=False)
    return True
