"""The generator benchmark's summary: medians per configuration, ratios to one process, JSON + CSV written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from loadtest.generator_bench import BenchRow, summary_rows, write_results


def _row(workers: int, round_: int, rate: float, cpu: float) -> BenchRow:
    return BenchRow(
        generator="1 process" if workers == 0 else f"master + {workers} workers",
        workers=workers,
        round=round_,
        users=50,
        seconds=10.0,
        requests=int(rate * 10),
        failures=0,
        requests_per_s=rate,
        p50_ms=20.0,
        p95_ms=40.0,
        generator_cpu_percent=cpu,
        requests_per_cpu_s=round(rate / (cpu / 100), 1),
    )


def test_summary_is_the_median_per_configuration_against_one_process(tmp_path: Path) -> None:
    rows = [
        _row(0, 1, 900.0, 99.0),
        _row(2, 1, 1700.0, 190.0),
        _row(0, 2, 1000.0, 98.0),
        _row(2, 2, 1900.0, 195),
    ]
    summary = {r["generator"]: r for r in summary_rows(rows)}
    assert summary["1 process"]["requests_per_s"] == 950.0 and summary["1 process"]["vs_1_process"] == 1.0
    assert summary["master + 2 workers"]["requests_per_s"] == 1800.0
    assert summary["master + 2 workers"]["vs_1_process"] == round(1800 / 950, 2)
    json_path, csv_path = write_results(rows, tmp_path, meta={"machine": "test"})
    document = json.loads(json_path.read_text(encoding="utf-8"))
    assert document["meta"] == {"machine": "test"} and len(document["runs"]) == 4
    assert document["summary"] == summary_rows(rows)
    table = list(csv.DictReader(csv_path.read_text(encoding="utf-8").splitlines()))
    assert [float(r["requests_per_s"]) for r in table] == [900.0, 1700.0, 1000.0, 1900.0]
