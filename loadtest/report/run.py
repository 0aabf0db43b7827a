"""A run folder read back: ``RunData`` = its ``RunSummary``, its request rows and its ``prometheus.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.summary import RunSummary, read_requests

__all__ = ["RunData", "load_run"]


@dataclass(frozen=True, kw_only=True)
class RunData:
    """What the report reads: statistics from the summary, rows (plots, Prometheus check), Prometheus."""

    run_dir: Path
    summary: RunSummary
    rows: list[dict[str, Any]]
    prometheus: dict[str, Any] | None = None

    @property
    def emulated(self) -> bool:
        """Whether the run used local emulation rather than a cluster."""
        return self.summary.emulated


def load_run(run_dir: str | Path) -> RunData:
    """Read ``summary.json``, ``requests.csv`` and ``prometheus.json`` (if any) of a run folder."""
    run_dir = Path(run_dir)
    summary = RunSummary.read(run_dir / "summary.json")
    rows = read_requests(run_dir / "requests.csv")
    prometheus_path = run_dir / "prometheus.json"
    # prometheus.json is the latest answer (``lab report --prometheus-url`` refreshes it); else the summary's.
    if prometheus_path.exists():
        prometheus = json.loads(prometheus_path.read_text(encoding="utf-8"))
    else:
        prometheus = summary.prometheus
    return RunData(run_dir=run_dir, summary=summary, rows=rows, prometheus=prometheus)
