"""Statistics of a run computed from its ``requests.csv``: per target and phase, and per user-count step.

Percentiles use linear interpolation between order statistics (numpy's default). Discarded warm-up requests
are counted but never enter a latency statistic.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.recorder import COLUMNS

__all__ = ["group_stats", "latency_stats", "read_requests", "step_stats", "write_summary"]

_NUMERIC = {
    "timestamp": float,
    "users": int,
    "status": int,
    "client_ms": float,
    "server_prediction_ms": float,
    "server_ms": float,
    "bytes": int,
}
_GROUP_KEYS = ("target", "model", "pool", "arch", "instance_type", "mode", "phase")


def read_requests(path: str | Path) -> list[dict[str, Any]]:
    """Read ``requests.csv`` into rows with numbers converted (empty cells become ``None``)."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(
                f"{str(path)!r} does not have the columns of loadtest/recorder.py, got {reader.fieldnames!r}."
            )
        rows = []
        for raw in reader:
            row: dict[str, Any] = dict(raw)
            for key, kind in _NUMERIC.items():
                row[key] = kind(raw[key]) if raw[key] not in ("", None) else None
            rows.append(row)
    return rows


def latency_stats(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """Count, mean, min, p50, p95, p99 and max of the non-empty values (ms)."""
    data = np.array([v for v in values if v is not None], dtype=float)
    if data.size == 0:
        return {"count": 0, "mean": None, "min": None, "p50": None, "p95": None, "p99": None, "max": None}
    p50, p95, p99 = np.percentile(data, [50, 95, 99])
    return {
        "count": int(data.size),
        "mean": round(float(data.mean()), 3),
        "min": round(float(data.min()), 3),
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "max": round(float(data.max()), 3),
    }


def _failed(row: dict[str, Any]) -> bool:
    return bool(row["error"]) or row["status"] != 200


def _block(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if not _failed(r)]
    failures = len(rows) - len(ok)
    times = [r["timestamp"] for r in rows]
    ends = [r["timestamp"] + (r["client_ms"] or 0) / 1000.0 for r in rows]
    span = (max(ends) - min(times)) if rows else 0.0
    return {
        "requests": len(rows),
        "failures": failures,
        "error_pct": round(100.0 * failures / len(rows), 3) if rows else 0.0,
        "throughput_rps": round(len(ok) / span, 3) if span > 0 else None,
        "client_ms": latency_stats(r["client_ms"] for r in ok),
        "server_prediction_ms": latency_stats(r["server_prediction_ms"] for r in ok),
        "server_ms": latency_stats(r["server_ms"] for r in ok),
    }


def group_stats(rows: list[dict[str, Any]], *, include_discarded: bool = False) -> list[dict[str, Any]]:
    """Statistics per target and phase, in the order targets first appear."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        if row["phase"] == "discarded" and not include_discarded:
            continue
        groups.setdefault(tuple(row[k] for k in _GROUP_KEYS), []).append(row)
    return [
        {**dict(zip(_GROUP_KEYS, key, strict=True)), **_block(members)} for key, members in groups.items()
    ]


def step_stats(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Statistics per target and user count (for ramps and shapes), sorted by target then users."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        if row["phase"] != "discarded":
            groups.setdefault((row["target"], row["users"] or 0), []).append(row)
    return [
        {"target": target, "users": users, **_block(members)}
        for (target, users), members in sorted(groups.items())
    ]


def write_summary(path: str | Path, summary: dict[str, Any]) -> Path:
    """Write ``summary.json`` (indented, keys in insertion order)."""
    path = Path(path)
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return path
