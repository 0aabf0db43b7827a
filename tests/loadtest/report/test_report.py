from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loadtest.emulation import DEFAULT_POOLS
from loadtest.report import write_report
from loadtest.report.prices import load_prices

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(warm_up_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The report written again (in this process) for a copy of the shared warm-up run."""
    run_dir = tmp_path_factory.mktemp("report") / warm_up_run.name
    shutil.copytree(warm_up_run, run_dir, ignore=shutil.ignore_patterns("report.*", "plots"))
    return write_report(run_dir, print_table=False)


def _warm_client_ms(run_dir: Path) -> dict[str, list[float]]:
    with (run_dir / "requests.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["phase"] == "warm" and r["status"] == "200"]
    found: dict[str, list[float]] = {}
    for row in rows:
        found.setdefault(row["target"], []).append(float(row["client_ms"]))
    return found


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _table(markdown: str, title: str) -> list[list[str]]:
    block = markdown.split(f"## {title}\n", 1)[1].strip().split("\n\n", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in block.splitlines()[2:]]


def test_plots_are_valid_pngs(report: dict) -> None:
    assert {"latency_boxplot", "prediction_vs_total", "timeline"} <= set(report["plots"])
    for path in report["plots"].values():
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG"
            width, height = image.size
            assert 400 <= width <= 3000 and 300 <= height <= 2000


def test_latency_table_matches_the_csv(report: dict) -> None:
    run_dir = report["markdown"].parent
    markdown = report["markdown"].read_text()
    assert "emulation" in markdown.split("\n## ", 1)[0]
    rows = {r[0]: r for r in _table(markdown, "Server prediction time vs total latency (ms)")}
    for target, values in _warm_client_ms(run_dir).items():
        row = rows[target]
        assert row[1:3] == ["warm (sequential)", str(len(values))]
        assert row[6] == _fmt(float(np.percentile(values, 50)))
        assert row[7] == _fmt(float(np.percentile(values, 95)))


def test_prometheus_quantiles_come_from_its_api_and_agree(report: dict) -> None:
    run_dir = report["markdown"].parent
    prometheus = json.loads((run_dir / "prometheus.json").read_text())
    checks = report["prometheus_checks"]
    sources = {
        "lab exporter: client latency": "request_seconds",
        "predictor: prediction time": "predictor_batch_seconds",
    }
    assert {c.source for c in checks} == set(sources)
    assert len(checks) == 2 * 2 * len(DEFAULT_POOLS)
    for check in checks:
        (entry,) = [row for row in prometheus[sources[check.source]] if row["pool"] == check.pool]
        assert check.prometheus_ms == entry[f"{check.quantile}_ms"]
        assert check.query.startswith("histogram_quantile(")
        assert check.agree, check
    rows = _table(report["markdown"].read_text(), "Prometheus (HTTP API, histogram_quantile) vs the CSV")
    assert {r[-1] for r in rows} == {"yes"}


def test_speedups_costs_and_published_figures(report: dict) -> None:
    markdown = report["markdown"].read_text()
    run_dir = report["markdown"].parent
    summary = json.loads((run_dir / "summary.json").read_text())
    published = _table(markdown, "Ours beside the published figures (median ms, sequential phases only)")
    assert {r[1] for r in published} == {"warm-up"}
    assert {r[2] for r in published} == {f"ml.{p.stands_for} real-time" for p in DEFAULT_POOLS.values()}
    m5 = next(r for r in published if r[2] == "ml.m5.xlarge real-time")
    assert (m5[4], m5[7]) == ("61.0", "262")
    prices = load_prices()
    for row in _table(markdown, "Cost per inference (USD)"):
        group = next(g for g in summary["groups"] if g["target"] == row[0])
        instance = row[2].split(" ")[0]
        expected = prices.instances[instance] / 3600 * group["client_ms"]["p50"] / 1000
        assert float(row[4]) == pytest.approx(expected, rel=1e-3)
    if len(DEFAULT_POOLS) > 1:
        (speedup,) = _table(markdown, "Speed-ups between pools (warm p50, slower ÷ faster)")
        assert speedup[0] == "mobilenet" and re.fullmatch(r"\d+\.\d\d×", speedup[2])
        assert speedup[4] == "m5.xlarge faster than m4.xlarge: 1.32× / 1.09×"


def test_html_is_self_contained(report: dict) -> None:
    page = report["html"].read_text()
    assert page.count("data:image/png;base64,") == len(report["plots"])
    assert not re.search(r'src="(?!data:)', page)
    assert "environment: emulation" in page


def test_custom_price_table(report: dict, tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("instances: {m5.xlarge: 3600.0, m4.xlarge: 7200.0}\n")
    result = write_report(report["markdown"].parent, prices=prices, print_table=False)
    rows = _table(result["markdown"].read_text(), "Cost per inference (USD)")
    assert {r[3] for r in rows} <= {"1", "2"}
    (tmp_path / "bad.yaml").write_text("serverless: {1Gi: 1}\n")
    with pytest.raises(ValueError, match="needs an 'instances' mapping"):
        load_prices(tmp_path / "bad.yaml")
