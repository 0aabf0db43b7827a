"""The report's matplotlib figures, each written as a PNG under ``plots/`` of the run folder."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from loadtest.report.published import published_for
from loadtest.report.tables import RunData
from loadtest.summary import step_stats

__all__ = ["make_plots"]

_DPI = 110


def _ok(row: dict) -> bool:
    return not row["error"] and row["status"] == 200


def _footer(fig: plt.Figure, run: RunData) -> None:
    fig.text(
        0.01,
        0.01,
        f"{run.summary.get('scenario')} · {run.summary.get('environment')}",
        fontsize=7,
        color="0.4",
    )


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def latency_boxplot(run: RunData, path: Path) -> Path | None:
    """Box plots of prediction time and total latency per pool and model (warm), as published."""
    targets = list(dict.fromkeys(r["target"] for r in run.rows if r["phase"] == "warm" and _ok(r)))
    if not targets:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=False)
    for ax, column, title in (
        (axes[0], "server_prediction_ms", "server prediction time"),
        (axes[1], "client_ms", "total latency (client)"),
    ):
        data = [
            [
                r[column]
                for r in run.rows
                if r["target"] == t and r["phase"] == "warm" and _ok(r) and r[column] is not None
            ]
            for t in targets
        ]
        ax.boxplot(
            [d or [np.nan] for d in data],
            tick_labels=[t.replace("/", "\n") for t in targets],
            showfliers=True,
        )
        ax.set_title(title)
        ax.set_ylabel("ms")
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="x", labelsize=7)
    _footer(fig, run)
    return _save(fig, path)


def prediction_vs_total(run: RunData, path: Path) -> Path | None:
    """Median prediction time beside median total latency per target (bars), p95 as whiskers."""
    groups = [g for g in run.groups if g["phase"] == "warm" and g["client_ms"]["p50"] is not None]
    if not groups:
        return None
    x = np.arange(len(groups))
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(groups) + 4), 4))
    for offset, key, label in (
        (-0.2, "server_prediction_ms", "prediction (server)"),
        (0.2, "client_ms", "total (client)"),
    ):
        p50 = np.array([g[key]["p50"] or 0 for g in groups], dtype=float)
        p95 = np.array([g[key]["p95"] or 0 for g in groups], dtype=float)
        ax.bar(
            x + offset, p50, width=0.4, label=f"{label} p50", yerr=[np.zeros_like(p50), p95 - p50], capsize=4
        )
    for index, group in enumerate(groups):
        ref = published_for(
            group["model"],
            instance_type=group["instance_type"],
            memory_profile=group.get("memory_profile"),
            phase="warm",
        )
        if ref is None:
            continue
        for offset, key, marker in ((-0.2, "prediction_ms", "v"), (0.2, "full_ms", "^")):
            ax.scatter(
                [index + offset],
                [ref[key]],
                marker=marker,
                s=60,
                facecolors="none",
                edgecolors="k",
                zorder=3,
                label="published medians (▽ prediction, △ full)" if index == 0 and offset < 0 else None,
            )
    ax.set_xticks(x, [g["target"].replace("/", "\n") for g in groups], fontsize=7)
    ax.set_ylabel("ms (bar p50, whisker p95)")
    ax.set_title("Prediction time vs total latency")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    _footer(fig, run)
    return _save(fig, path)


def warm_vs_cold(run: RunData, path: Path) -> Path | None:
    """Warm and cold client latency per target on a log scale."""
    targets = list(dict.fromkeys(r["target"] for r in run.rows if r["phase"] == "cold"))
    if not targets:
        return None
    fig, ax = plt.subplots(figsize=(max(5, 1.8 * len(targets) + 2), 4))
    data, labels = [], []
    for t in targets:
        for phase in ("warm", "cold"):
            values = [r["client_ms"] for r in run.rows if r["target"] == t and r["phase"] == phase and _ok(r)]
            data.append(values or [np.nan])
            labels.append(f"{t.split('/')[0]}\n{phase}")
    ax.boxplot(data, tick_labels=labels)
    ax.set_yscale("log")
    ax.set_ylabel("client latency, ms (log)")
    ax.set_title("Warm vs cold requests")
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="y", alpha=0.3)
    _footer(fig, run)
    return _save(fig, path)


def load_steps(run: RunData, path: Path) -> Path | None:
    """p50/p95/p99 and throughput against the number of users."""
    steps = step_stats(run.rows)
    if not steps or not run.summary.get("steps"):
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for target in dict.fromkeys(s["target"] for s in steps):
        mine = [s for s in steps if s["target"] == target]
        users = [s["users"] for s in mine]
        for q, style in (("p50", "-o"), ("p95", "--o"), ("p99", ":o")):
            left.plot(users, [s["client_ms"][q] for s in mine], style, label=f"{target} {q}")
        right.plot(users, [s["throughput_rps"] or 0 for s in mine], "-o", label=target)
    left.set(xlabel="users", ylabel="client latency ms", title="Latency by load")
    right.set(xlabel="users", ylabel="requests / s", title="Throughput by load")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _footer(fig, run)
    return _save(fig, path)


def timeline(run: RunData, path: Path) -> Path | None:
    """Every request's client latency over the run, coloured by phase."""
    if not run.rows:
        return None
    start = min(r["timestamp"] for r in run.rows)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for phase, colour in (("warm", "tab:blue"), ("cold", "tab:red"), ("discarded", "0.6")):
        rows = [r for r in run.rows if r["phase"] == phase and r["client_ms"] is not None]
        if rows:
            ax.scatter(
                [r["timestamp"] - start for r in rows],
                [r["client_ms"] for r in rows],
                s=8,
                c=colour,
                label=phase,
            )
    failed = [r for r in run.rows if not _ok(r) and r["client_ms"] is not None]
    if failed:
        ax.scatter(
            [r["timestamp"] - start for r in failed],
            [r["client_ms"] for r in failed],
            marker="x",
            c="k",
            label="failed",
        )
    ax.set_yscale("log")
    ax.set(xlabel="seconds since start", ylabel="client ms (log)", title="Requests over time")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    _footer(fig, run)
    return _save(fig, path)


def make_plots(run: RunData) -> dict[str, Path]:
    """Write every plot that has data for this run; returns name → PNG path."""
    folder = run.run_dir / "plots"
    folder.mkdir(exist_ok=True)
    plots = {
        "latency_boxplot": latency_boxplot,
        "prediction_vs_total": prediction_vs_total,
        "warm_vs_cold": warm_vs_cold,
        "load_steps": load_steps,
        "timeline": timeline,
    }
    written = {}
    for name, draw in plots.items():
        path = draw(run, folder / f"{name}.png")
        if path is not None:
            written[name] = path
    return written
