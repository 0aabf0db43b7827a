from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from loadtest.prometheus_local import LocalPrometheus, ScrapeTarget
from loadtest.targets import Target


@pytest.mark.slow
def test_report_reads_the_predictor_histograms_from_a_given_prometheus(
    cli, quick_run, predictor: Target, tmp_path: Path
) -> None:
    """The cluster path: a long-lived Prometheus scrapes the predictors; the report queries it by URL."""
    targets = tmp_path / "targets.yaml"
    targets.write_text(f"targets:\n  - {{model: mobilenet, url: '{predictor.url}', pool: testpool}}\n")
    address = predictor.base_url.split("://", 1)[1]
    with LocalPrometheus([ScrapeTarget(job="predictor", address=address)]) as prom:
        prom.wait_for_scrape(after=time.time())
        run_dir = quick_run(
            "warm-up",
            "--targets",
            str(targets),
            "--requests",
            "8",
            "--interval",
            "0.1",
            out=tmp_path,
        )
        prom.wait_for_scrape(after=time.time())
        report = cli("lab", "report", str(run_dir), "--prometheus-url", prom.url, "--quiet", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert json.loads((run_dir / "summary.json").read_text())["environment"].startswith("emulation")
    answer = json.loads((run_dir / "prometheus.json").read_text())
    assert answer["url"] == prom.url and answer["method"].startswith("instant query of increase()")
    (row,) = [r for r in answer["predictor_batch_seconds"] if r["pool"] == "testpool"]
    assert row["queries"]["p50"].startswith("histogram_quantile(0.5, sum by (le, pool, model) (increase(")
    markdown = (run_dir / "report.md").read_text()
    lines = [
        line for line in markdown.splitlines() if line.startswith("| predictor: prediction time | testpool")
    ]
    assert len(lines) == 2 and all(line.endswith("| yes |") for line in lines)
