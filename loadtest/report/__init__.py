"""``dr-serving lab report``: run → analysis → tables → plots → render, for one run folder.

``write_report`` loads the run (``run.py``), computes every number once (``analysis.py``), formats the tables
(``tables.py``), draws the plots (``plots.py``) and renders Markdown, HTML and the console summary
(``render.py``). With ``prometheus_url`` it first asks that (cluster) Prometheus for the run's quantiles.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from loadtest.report.analysis import analyse
from loadtest.report.prices import load_prices
from loadtest.report.run import load_run
from loadtest.report.tables import TableKind, all_tables
from loadtest.summary import RunSummary

__all__ = ["write_report"]


def _refresh_prometheus(run_dir: Path, url: str) -> None:
    """Query a (cluster) Prometheus for the run's window and store the answer in ``prometheus.json``."""
    from loadtest.prometheus_local import PrometheusError, run_quantiles, run_window

    summary = RunSummary.read(run_dir / "summary.json")
    at, window = run_window(summary.started_unix, summary.finished_unix, now=time.time())
    try:
        result = run_quantiles(url, scenario=summary.scenario, at=at, window_s=window, local=False)
    except PrometheusError as exc:
        raise ValueError(str(exc)) from exc
    (run_dir / "prometheus.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def write_report(
    run_dir: str | Path,
    *,
    prices: str | Path | None = None,
    prometheus_url: str | None = None,
    print_table: bool = True,
) -> dict[str, Any]:
    """Write ``report.md``, ``report.html`` and ``plots/*.png`` of a run folder; returns paths and checks."""
    from loadtest.report.plots import make_plots
    from loadtest.report.render import print_tables, render_html, render_markdown

    run_dir = Path(run_dir)
    if prometheus_url:
        _refresh_prometheus(run_dir, prometheus_url)
    run = load_run(run_dir)
    price_table = load_prices(prices)
    analysis = analyse(run, price_table)
    tables = all_tables(
        analysis,
        emulated=run.emulated,
        price_source=price_table.source,
        prometheus=run.prometheus,
        pull_note=str(run.summary.settings.get("image_pull", "")),
    )
    plots = make_plots(run, analysis)
    markdown = run_dir / "report.md"
    markdown.write_text(render_markdown(run, tables, plots), encoding="utf-8")
    page = run_dir / "report.html"
    page.write_text(render_html(run, tables, plots), encoding="utf-8")
    if print_table:
        shown = {TableKind.LATENCY, TableKind.CONTAINERS, TableKind.COLD_PUBLISHED, TableKind.PROMETHEUS}
        print_tables([t for t in tables if t.kind in shown], environment=run.summary.environment)
    return {"markdown": markdown, "html": page, "plots": plots, "prometheus_checks": analysis.prometheus}
