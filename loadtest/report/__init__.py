"""``dr-serving lab report``: tables, plots and the Markdown/HTML report of a run folder."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from loadtest.report.prices import load_prices
from loadtest.report.tables import all_tables, load_run, prometheus_check

__all__ = ["write_report"]


def _refresh_prometheus(run_dir: Path, url: str) -> None:
    """Query a (cluster) Prometheus for the run's window and store the answer in ``prometheus.json``."""
    from loadtest.prometheus_local import PrometheusError, query_quantiles

    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    started = summary.get("started_unix") or datetime.fromisoformat(summary["started"]).timestamp()
    finished = summary.get("finished_unix") or datetime.fromisoformat(summary["finished"]).timestamp()
    # Evaluate after the scrape that follows the run (at most a minute later), over a window that starts with
    # the scrape before it, so increase() spans exactly the run's requests on an otherwise idle service.
    end = min(time.time(), finished + 60.0)
    window = end - started + 30.0
    result: dict[str, Any] = {
        "url": url,
        "local": False,
        "at": time.time(),
        "method": f"instant query of increase() over the run's window ({window:.0f} s)",
    }
    try:
        result["request_seconds"] = query_quantiles(
            url,
            metric="drlab_request_seconds",
            matchers=f'scenario="{summary["scenario"]}",outcome="success"',
            window_s=window,
            at=end,
        )
        # On a cluster the predictors' own histograms (PodMonitor, labelled per pool) are what Prometheus has.
        result["predictor_batch_seconds"] = query_quantiles(
            url, metric="dr_inference_batch_seconds", window_s=window, at=end
        )
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
    tables = all_tables(run, price_table)
    plots = make_plots(run)
    markdown = run_dir / "report.md"
    markdown.write_text(render_markdown(run, tables, plots), encoding="utf-8")
    page = run_dir / "report.html"
    page.write_text(render_html(run, tables, plots), encoding="utf-8")
    checks = prometheus_check(run)[1]
    if print_table:
        print_tables(
            tables[:1] + [t for t in tables if t.title.startswith("Prometheus")],
            environment=run.summary.get("environment", ""),
        )
    return {"markdown": markdown, "html": page, "plots": plots, "prometheus_checks": checks}
