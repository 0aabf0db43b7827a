"""The report's matplotlib figures, each written as a PNG under ``plots/`` of the run folder.

Read in one look: one colour per target (pool and model) in every plot, one line style per percentile (p50
solid, p95 dashed, p99 dotted), linear axes with plain tick labels unless the values span more than two
orders of magnitude, and titles that say the scenario, the model(s), the load and the environment
(``emulation`` when it is).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import ScalarFormatter

from loadtest.report.analysis import Analysis, LatencyRow
from loadtest.report.published import published_for
from loadtest.report.run import RunData
from loadtest.report.tables import load_label
from loadtest.summary import failed

__all__ = ["PERCENTILE_STYLES", "make_plots", "target_colours"]

_DPI = 110
#: Line style of each percentile, the same in every plot.
PERCENTILE_STYLES = {"p50": "-", "p95": "--", "p99": ":"}
#: Colour of each part of a request's time in the anatomy plot.
#: (Not from the per-target palette, so a part is never mistaken for a target.)
_PART_COLOURS = {
    "body": "#d9d9d9",
    "decode": "#bcbddc",
    "queue": "#b2182b",
    "prediction": "#54278f",
    "postprocess": "#9e9ac8",
    "other server": "#fee6ce",
    "client side": "#737373",
}


def target_colours(run: RunData) -> dict[str, str]:
    """One colour per target, in the order of the run's targets (the same in every plot of a report)."""
    names = list(dict.fromkeys([*(g.target for g in run.summary.groups), *(r["target"] for r in run.rows)]))
    palette = plt.get_cmap("tab10").colors
    return {name: matplotlib.colors.to_hex(palette[i % len(palette)]) for i, name in enumerate(names)}


def _title(run: RunData, what: str, *, load: str) -> str:
    s = run.summary
    models = ", ".join(dict.fromkeys(g.model for g in s.groups)) or "–"
    return f"{what}\n{s.scenario} · {models} · {load} · {s.environment}"


def _loads(rows: list[Any]) -> str:
    """The phases and loads of ``rows`` in a few words, e.g. ``warm, cold (sequential) · users 10, 50``."""
    parts = []
    sequential = list(dict.fromkeys(r.phase for r in rows if r.phase != "load"))
    if sequential:
        parts.append(f"{', '.join(sequential)} (sequential)")
    users = sorted({r.users for r in rows if r.phase == "load"})
    if users:
        parts.append("users " + ", ".join(str(u) for u in users))
    return " · ".join(parts)


def _plain_axis(ax: plt.Axes, values: list[float]) -> None:
    """A linear axis, or a log axis with plain numbers when the values span more than 100×."""
    positive = [v for v in values if v and v > 0]
    if positive and max(positive) / min(positive) > 100:
        ax.set_yscale("log")
        formatter = ScalarFormatter()
        formatter.set_scientific(False)
        ax.yaxis.set_major_formatter(formatter)


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def _ok_values(run: RunData, target: str, phase: str, column: str) -> list[float]:
    return [
        r[column]
        for r in run.rows
        if r["target"] == target and r["phase"] == phase and not failed(r) and r[column] is not None
    ]


def latency_boxplot(run: RunData, analysis: Analysis, colours: dict[str, str], path: Path) -> Path | None:
    """Box plots of prediction time and total latency per target (sequential warm requests), as published."""
    targets = [r.target for r in analysis.latency if r.phase == "warm"]
    if not targets:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, column, title in (
        (axes[0], "server_prediction_ms", "prediction time (server, backend call)"),
        (axes[1], "client_ms", "total latency (client)"),
    ):
        data = [_ok_values(run, t, "warm", column) or [np.nan] for t in targets]
        boxes = ax.boxplot(data, tick_labels=[t.replace("/", "\n") for t in targets], patch_artist=True)
        for box, target in zip(boxes["boxes"], targets, strict=True):
            box.set(facecolor=colours[target], alpha=0.6)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("ms")
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="x", labelsize=7)
        _plain_axis(ax, [v for d in data for v in d if v == v])
    fig.suptitle(_title(run, "Prediction time and total latency", load="warm, sequential"), fontsize=9)
    return _save(fig, path)


def prediction_vs_total(run: RunData, analysis: Analysis, colours: dict[str, str], path: Path) -> Path | None:
    """Median prediction time beside median total latency per target (bars), p95 as whiskers."""
    rows = [r for r in analysis.latency if r.phase == "warm" and r.total.p50 is not None]
    if not rows:
        return None
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(rows) + 4), 4.2))
    for offset, part, hatch in ((-0.2, "prediction", "//"), (0.2, "total", "")):
        stats = [r.prediction if part == "prediction" else r.total for r in rows]
        p50 = np.array([s.p50 or 0 for s in stats], dtype=float)
        p95 = np.array([s.p95 or 0 for s in stats], dtype=float)
        ax.bar(
            x + offset,
            p50,
            width=0.4,
            color=[colours[r.target] for r in rows],
            alpha=0.5 if hatch else 0.9,
            hatch=hatch,
            edgecolor="k",
            yerr=[np.zeros_like(p50), p95 - p50],
            capsize=4,
            label=f"{part} p50 (whisker p95)" + (" — hatched" if hatch else ""),
        )
    for index, row in enumerate(rows):
        ref = published_for(
            row.model, instance_type=row.instance_type, memory_profile=row.memory_profile, phase="warm"
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
    ax.set_xticks(x, [r.target.replace("/", "\n") for r in rows], fontsize=7)
    ax.set_ylabel("ms")
    ax.set_title(_title(run, "Prediction time vs total latency", load="warm, sequential"), fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def warm_vs_cold(run: RunData, analysis: Analysis, colours: dict[str, str], path: Path) -> Path | None:
    """Warm and cold client latency per target (cold starts are 10–100× warm, so the axis is usually log)."""
    targets = [r.target for r in analysis.warm_cold]
    if not targets:
        return None
    fig, ax = plt.subplots(figsize=(max(5, 1.8 * len(targets) + 2), 4.2))
    data, labels, faces = [], [], []
    for t in targets:
        for phase in ("warm", "cold"):
            data.append(_ok_values(run, t, phase, "client_ms") or [np.nan])
            labels.append(f"{t.split('/')[0]}\n{phase}")
            faces.append((colours[t], 0.3 if phase == "warm" else 0.8))
    boxes = ax.boxplot(data, tick_labels=labels, patch_artist=True)
    for box, (colour, alpha) in zip(boxes["boxes"], faces, strict=True):
        box.set(facecolor=colour, alpha=alpha)
    _plain_axis(ax, [v for d in data for v in d if v == v])
    ax.set_ylabel("client latency, ms")
    ax.set_title(_title(run, "Warm vs cold requests", load="sequential"), fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def load_steps(run: RunData, analysis: Analysis, colours: dict[str, str], path: Path) -> Path | None:
    """p50/p95/p99 and throughput against the number of users (spawning requests left out)."""
    steps = [r for r in analysis.latency if r.phase == "load"]
    if not steps:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.4))
    for target in dict.fromkeys(r.target for r in steps):
        mine: list[LatencyRow] = sorted((r for r in steps if r.target == target), key=lambda r: r.users)
        users = [r.users for r in mine]
        for q, style in PERCENTILE_STYLES.items():
            left.plot(users, [getattr(r.total, q) for r in mine], style, marker="o", color=colours[target])
        right.plot(
            users, [r.throughput_rps or 0 for r in mine], "-", marker="o", color=colours[target], label=target
        )
    for q, style in PERCENTILE_STYLES.items():
        left.plot([], [], style, color="k", label=q)
    left.set(xlabel="users", ylabel="client latency, ms", title="Latency by load")
    right.set(xlabel="users", ylabel="requests / s", title="Throughput by load")
    _plain_axis(left, [v for r in steps for v in (r.total.p50, r.total.p99) if v])
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_ylim(bottom=0) if ax.get_yscale() == "linear" else None
    fig.suptitle(_title(run, "Latency and throughput by load", load=_loads(steps)), fontsize=9)
    return _save(fig, path)


def anatomy(run: RunData, analysis: Analysis, colours: dict[str, str], path: Path) -> Path | None:
    """Stacked mean time per part of a request, per target and phase/load: compute, queue or client bound."""
    rows = analysis.anatomy
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(10, max(3.2, 0.45 * len(rows) + 1.8)))
    labels = [f"{r.target.split('/')[0]} · {load_label(r.phase, r.users)}" for r in rows]
    y = np.arange(len(rows))[::-1]
    left = np.zeros(len(rows))
    for part, colour in _PART_COLOURS.items():
        attribute = part.replace(" ", "_") + "_ms"
        values = np.array([getattr(r.anatomy, attribute) or 0.0 for r in rows])
        if not values.any():
            continue
        ax.barh(y, values, left=left, color=colour, edgecolor="white", label=part)
        left += values
    ax.set_yticks(y, labels, fontsize=7)
    for tick, row in zip(ax.get_yticklabels(), rows, strict=True):
        tick.set_color(colours.get(row.target, "k"))  # the target's colour, as in every other plot
    ax.set_xlabel("mean ms per request")
    ax.set_xlim(left=0)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(_title(run, "Latency anatomy: where a request's time goes", load=_loads(rows)), fontsize=9)
    return _save(fig, path)


def timeline(run: RunData, analysis: Analysis, colours: dict[str, str], path: Path) -> Path | None:
    """Every request's client latency over the run: colour = target, marker = phase, × = failed."""
    if not run.rows:
        return None
    start = min(r["timestamp"] for r in run.rows)
    fig, ax = plt.subplots(figsize=(9.5, 3.8))
    for target, colour in colours.items():
        for phase, marker in (("warm", "o"), ("cold", "D"), ("discarded", ".")):
            rows = [
                r
                for r in run.rows
                if r["target"] == target
                and r["phase"] == phase
                and r["client_ms"] is not None
                and not failed(r)
            ]
            if rows:
                ax.scatter(
                    [r["timestamp"] - start for r in rows],
                    [r["client_ms"] for r in rows],
                    s=10 if phase != "cold" else 30,
                    marker=marker,
                    color=colour,
                    alpha=0.4 if phase == "discarded" else 0.8,
                    label=f"{target} {phase}",
                )
    broken = [r for r in run.rows if failed(r) and r["client_ms"] is not None]
    if broken:
        ax.scatter(
            [r["timestamp"] - start for r in broken],
            [r["client_ms"] for r in broken],
            marker="x",
            c="k",
            label="failed",
        )
    _plain_axis(ax, [r["client_ms"] for r in run.rows if r["client_ms"]])
    ax.set(xlabel="seconds since start", ylabel="client latency, ms")
    ax.set_title(_title(run, "Requests over time", load="whole run"), fontsize=9)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return _save(fig, path)


#: Plot name → drawing function, in report order.
#: Colour of each part of a container cold start (as the anatomy's parts, not the per-target palette).
_COLD_PARTS = {
    "container_start_s": ("container start", "#d9d9d9"),
    "imports_and_setup_s": ("imports and server setup", "#bcbddc"),
    "model_load_s": ("model load", "#54278f"),
    "readiness_seen_after_s": ("readiness seen", "#fee6ce"),
    "ready_to_first_response_s": ("first answer", "#9e9ac8"),
    "image_pull_estimate_s": ("image pull (estimated)", "#ffffff"),
}


def container_memory(run: RunData, analysis: Analysis, colours: dict[str, str], path: Path) -> Path | None:
    """Peak and steady memory of each container against its --memory limit (docker runtime)."""
    items = analysis.containers
    if not items:
        return None
    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.5 * len(items) + 1.8)))
    y = np.arange(len(items))[::-1]
    limits = [c["memory_limit_mib"] for c in items]
    ax.barh(y, limits, color="#f0f0f0", edgecolor="#bdbdbd", label="--memory limit")
    peaks = [c["peak_mib"] or 0.0 for c in items]
    steady = [c["steady_working_set_mib"] or 0.0 for c in items]
    ax.barh(
        y, peaks, height=0.5, color=[colours.get(c["target"], "#777") for c in items], alpha=0.5, label="peak"
    )
    ax.barh(y, steady, height=0.25, color=[colours.get(c["target"], "#777") for c in items], label="steady")
    labels = [
        f"{c['target'].split('/')[0]}{' · OOM-KILLED' if c['oom_killed'] else ''}"
        + (" · QEMU" if "QEMU" in c["arch"] else "")
        for c in items
    ]
    ax.set_yticks(y, labels, fontsize=7)
    for tick, item in zip(ax.get_yticklabels(), items, strict=True):
        tick.set_color("#b2182b" if item["oom_killed"] else colours.get(item["target"], "k"))
    ax.set_xscale("log")
    formatter = ScalarFormatter()
    formatter.set_scientific(False)
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlabel("MiB (log scale)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(_title(run, "Container memory: peak and steady vs the limit", load="whole run"), fontsize=9)
    return _save(fig, path)


def cold_breakdown(run: RunData, analysis: Analysis, colours: dict[str, str], path: Path) -> Path | None:
    """Each container cold start split into its parts, beside the published cold full latency."""
    entries = [e for e in run.summary.cold_start if "container_start_s" in e]
    if not entries:
        return None
    published = {r.target: r.published_cold_full_s for r in analysis.cold_published}
    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.45 * len(entries) + 1.8)))
    y = np.arange(len(entries))[::-1]
    left = np.zeros(len(entries))
    for key, (label, colour) in _COLD_PARTS.items():
        values = np.array([e.get(key) or 0.0 for e in entries])
        if not values.any():
            continue
        hatch = "//" if key == "image_pull_estimate_s" else None
        ax.barh(y, values, left=left, color=colour, edgecolor="#737373", hatch=hatch, label=label)
        left += values
    marks = [(yy, published.get(e["target"])) for yy, e in zip(y, entries, strict=True)]
    shown = [(yy, v) for yy, v in marks if v is not None]
    if shown:
        ax.scatter([v for _, v in shown], [yy for yy, _ in shown], marker="|", s=300, color="#b2182b",
                   label="published cold full")  # fmt: skip
    ax.set_yticks(y, [e["target"].split("/")[0] for e in entries], fontsize=7)
    for tick, entry in zip(ax.get_yticklabels(), entries, strict=True):
        tick.set_color(colours.get(entry["target"], "k"))
    ax.set_xlabel("seconds")
    ax.set_xlim(left=0)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(
        _title(run, "Container cold start: where the time goes", load="cold (sequential)"), fontsize=9
    )
    return _save(fig, path)


PLOTS = {
    "latency_boxplot": latency_boxplot,
    "prediction_vs_total": prediction_vs_total,
    "warm_vs_cold": warm_vs_cold,
    "load_steps": load_steps,
    "anatomy": anatomy,
    "timeline": timeline,
    "container_memory": container_memory,
    "cold_breakdown": cold_breakdown,
}


def make_plots(run: RunData, analysis: Analysis) -> dict[str, Path]:
    """Write every plot that has data for this run; returns name → PNG path."""
    folder = run.run_dir / "plots"
    folder.mkdir(exist_ok=True)
    colours = target_colours(run)
    written = {}
    for name, draw in PLOTS.items():
        path = draw(run, analysis, colours, folder / f"{name}.png")
        if path is not None:
            written[name] = path
    return written
