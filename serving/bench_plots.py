"""The plots of ``dr-serving bench``: bare batch-1 time per variant, and closed-loop req/s against offline.

Drawn from the rows of ``serving.bench``'s tables (what the CSV files hold) with matplotlib's Agg backend, one
PNG per figure beside the run's JSON. Imported only when a bench run writes its files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serving.bench_variants import served_base

__all__ = ["plot_bench"]

_DPI = 110


def plot_bench(tables: dict[str, list[dict[str, Any]]], stem: Path) -> list[Path]:
    """Write ``<stem>-bare.png`` and ``<stem>-load.png`` (when their tables have rows); the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    written = []
    for name, draw in (("bare", _bare), ("load", _load)):
        rows = tables.get(name) or []
        if not rows:
            continue
        models = list(dict.fromkeys(row["model"] for row in rows))
        fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.2), squeeze=False)
        for ax, model in zip(axes[0], models, strict=True):
            draw(ax, [row for row in rows if row["model"] == model], model)
        fig.tight_layout()
        path = stem.with_name(f"{stem.name}-{name}.png")
        fig.savefig(path, dpi=_DPI)
        plt.close(fig)
        written.append(path)
    return written


def _bare(ax: Any, rows: list[dict[str, Any]], model: str) -> None:
    """Horizontal bars of bare batch-1 p50 (log scale), each labelled with its ratio to the naive baseline."""
    names = [row["variant"] for row in rows]
    times = [row["p50_ms"] for row in rows]
    bars = ax.barh(names, times, color=[_colour(name) for name in names])
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("bare batch-1 p50, ms (log scale)")
    ax.set_title(f"{model}: one image per call, variants interleaved")
    for bar, row in zip(bars, rows, strict=True):
        ratio = row.get("over_naive")
        label = f"{row['p50_ms']:.3g} ms" + (f"  ({ratio:.3g}× naive)" if ratio is not None else "")
        ax.text(bar.get_width() * 1.05, bar.get_y() + bar.get_height() / 2, label, va="center", fontsize=8)
    ax.set_xlim(right=max(times) * 12)


def _load(ax: Any, rows: list[dict[str, Any]], model: str) -> None:
    """req/s against connections per served variant; its offline batch-1 rate as a dashed line."""
    for variant in dict.fromkeys(row["variant"] for row in rows):
        mine = [row for row in rows if row["variant"] == variant]
        colour = _colour(variant)
        ax.plot(
            [row["connections"] for row in mine],
            [row["per_second"] for row in mine],
            marker="o",
            color=colour,
            label=variant,
            linestyle="-" if served_base(variant) == variant else ":",
        )
        if served_base(variant) == variant:
            offline = mine[0]["offline_batch1_per_s"]
            ax.axhline(offline, color=colour, linestyle="--", linewidth=0.8, alpha=0.7)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({row["connections"] for row in rows}))
    ax.get_xaxis().set_major_formatter(lambda value, _: f"{value:g}")
    ax.set_xlabel("connections (closed loop)")
    ax.set_ylabel("answers per second")
    ax.set_title(f"{model}: served req/s; dashed: offline batch-1 of the backend")
    ax.legend(fontsize=8)
    ax.set_ylim(bottom=0)


def _colour(variant: str) -> str:
    """One colour per backend and precision, shared by a variant and its ``+batch`` form."""
    palette = {
        "naive": "#7f7f7f",
        "tf-fp32": "#1f77b4",
        "tf-bf16": "#9467bd",
        "litert-fp32": "#2ca02c",
        "litert-int8": "#d62728",
    }
    return palette.get(served_base(variant), "#8c564b")
