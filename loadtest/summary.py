"""A run's statistics, computed once from ``requests.csv`` and written as ``summary.json`` (``RunSummary``).

Groups are per target and phase (``warm``, ``cold``); steps are per target and user count (ramps and shapes).
Percentiles interpolate linearly between order statistics (``serving.timing.percentiles``). Discarded warm-up
requests are counted but never enter a statistic; a step leaves out the requests sent while its users were
still spawning (``active_users`` < ``users``) and counts them in ``spawning``.

The latency anatomy of a block splits the mean client latency into the server's phases (``X-DR-*-Ms``
headers: body read, decode, queue for the inference thread, prediction = the backend call alone,
postprocess), the rest of the server's time, and the client side (network and client queueing = client −
server). Means are used because they add up; medians of parts do not sum to the median of the whole.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from loadtest.recorder import COLUMNS, OPTIONAL_COLUMNS
from loadtest.targets import Target
from serving.timing import percentiles

__all__ = [
    "Anatomy",
    "GroupStats",
    "LatencyStats",
    "RunSummary",
    "StepStats",
    "failed",
    "group_stats",
    "read_requests",
    "step_stats",
]

_NUMERIC = {
    "timestamp": float,
    "users": int,
    "active_users": int,
    "status": int,
    "client_ms": float,
    "server_prediction_ms": float,
    "server_ms": float,
    "server_body_ms": float,
    "server_decode_ms": float,
    "server_queue_ms": float,
    "server_postprocess_ms": float,
    "bytes": int,
}
_GROUP_KEYS = ("target", "model", "pool", "arch", "instance_type", "mode", "phase")


def read_requests(path: str | Path) -> list[dict[str, Any]]:
    """Read ``requests.csv`` into rows with numbers converted (empty cells and absent optional columns: None).

    Files written before the optional columns existed (``OPTIONAL_COLUMNS``) are read too.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        found = tuple(reader.fieldnames or ())
        # Older files lack some optional columns; the others keep their order.
        missing = set(COLUMNS) - set(found)
        if found != tuple(c for c in COLUMNS if c in found) or not missing <= set(OPTIONAL_COLUMNS):
            raise ValueError(
                f"{str(path)!r} does not have the columns of loadtest/recorder.py, got {reader.fieldnames!r}."
            )
        rows = []
        for raw in reader:
            row: dict[str, Any] = {column: raw.get(column, "") for column in COLUMNS}
            for key, kind in _NUMERIC.items():
                row[key] = kind(row[key]) if row[key] not in ("", None) else None
            rows.append(row)
    return rows


def failed(row: Mapping[str, Any]) -> bool:
    """Whether a request row is a failure (an error, or a status other than 200)."""
    return bool(row["error"]) or row["status"] != 200


@dataclass(frozen=True, kw_only=True)
class LatencyStats:
    """Count, mean, min, p50, p95, p99 and max of some latencies (ms; ``None`` when there are none)."""

    count: int = 0
    mean: float | None = None
    min: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Iterable[float | None]) -> LatencyStats:
        """The statistics of the non-empty ``values``."""
        data = [float(v) for v in values if v is not None]
        if not data:
            return cls()
        p50, p95, p99 = percentiles(data, (50, 95, 99))
        return cls(
            count=len(data),
            mean=round(sum(data) / len(data), 3),
            min=round(min(data), 3),
            p50=round(p50, 3),
            p95=round(p95, 3),
            p99=round(p99, 3),
            max=round(max(data), 3),
        )


def _mean(values: Iterable[float | None]) -> float | None:
    data = [v for v in values if v is not None]
    return round(sum(data) / len(data), 3) if data else None


@dataclass(frozen=True, kw_only=True)
class Anatomy:
    """Where the mean client latency of a block of successful requests went (ms; ``None`` when unknown)."""

    requests: int = 0
    """Successful requests that the means are taken over."""
    body_ms: float | None = None
    """Reading the request body (``X-DR-Body-Ms``)."""
    decode_ms: float | None = None
    """Decoding and preprocessing, waiting for a decode thread included (``X-DR-Decode-Ms``)."""
    queue_ms: float | None = None
    """Waiting for the inference executor (``X-DR-Queue-Ms``)."""
    prediction_ms: float | None = None
    """The backend call alone (``X-DR-Prediction-Ms``)."""
    postprocess_ms: float | None = None
    """Grading and encoding the answer (``X-DR-Postprocess-Ms``)."""
    other_server_ms: float | None = None
    """Server time not in a measured phase (routing, framework): server − the phases above it."""
    client_side_ms: float | None = None
    """Network and client-side queueing: client − server (− postprocess when it is reported apart)."""
    total_ms: float | None = None
    """Mean client latency, the sum of the parts."""

    @classmethod
    def of(cls, rows: list[dict[str, Any]]) -> Anatomy:
        """The anatomy of ``rows`` (successful requests that carry a client and a server time)."""
        rows = [r for r in rows if r["client_ms"] is not None and r["server_ms"] is not None]
        if not rows:
            return cls()
        parts = {
            "body_ms": _mean(r["server_body_ms"] for r in rows),
            "decode_ms": _mean(r["server_decode_ms"] for r in rows),
            "queue_ms": _mean(r["server_queue_ms"] for r in rows),
            "prediction_ms": _mean(r["server_prediction_ms"] for r in rows),
            "postprocess_ms": _mean(r["server_postprocess_ms"] for r in rows),
        }
        server = _mean(r["server_ms"] for r in rows) or 0.0
        inside = sum(parts[k] or 0.0 for k in ("body_ms", "decode_ms", "queue_ms", "prediction_ms"))
        total = _mean(r["client_ms"] for r in rows) or 0.0
        after = parts["postprocess_ms"] or 0.0
        return cls(
            requests=len(rows),
            **parts,
            other_server_ms=round(max(server - inside, 0.0), 3),
            client_side_ms=round(max(total - server - after, 0.0), 3),
            total_ms=round(total, 3),
        )


@dataclass(frozen=True, kw_only=True)
class Stats:
    """What one block of requests measured."""

    requests: int = 0
    failures: int = 0
    error_pct: float = 0.0
    throughput_rps: float | None = None
    """Successful requests per second over the block's span (first send to last answer)."""
    client_ms: LatencyStats = field(default_factory=LatencyStats)
    server_prediction_ms: LatencyStats = field(default_factory=LatencyStats)
    server_ms: LatencyStats = field(default_factory=LatencyStats)
    server_queue_ms: LatencyStats = field(default_factory=LatencyStats)
    anatomy: Anatomy = field(default_factory=Anatomy)

    @staticmethod
    def measure(rows: list[dict[str, Any]]) -> dict[str, Any]:
        """The ``Stats`` fields of ``rows``, as keyword arguments."""
        ok = [r for r in rows if not failed(r)]
        failures = len(rows) - len(ok)
        span = 0.0
        if rows:
            ends = [r["timestamp"] + (r["client_ms"] or 0) / 1000.0 for r in rows]
            span = max(ends) - min(r["timestamp"] for r in rows)
        return {
            "requests": len(rows),
            "failures": failures,
            "error_pct": round(100.0 * failures / len(rows), 3) if rows else 0.0,
            "throughput_rps": round(len(ok) / span, 3) if span > 0 else None,
            "client_ms": LatencyStats.of(r["client_ms"] for r in ok),
            "server_prediction_ms": LatencyStats.of(r["server_prediction_ms"] for r in ok),
            "server_ms": LatencyStats.of(r["server_ms"] for r in ok),
            "server_queue_ms": LatencyStats.of(r["server_queue_ms"] for r in ok),
            "anatomy": Anatomy.of(ok),
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``summary.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        """The inverse of ``to_dict`` (keys a older summary lacks take their defaults)."""
        nested = {"anatomy": Anatomy}
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name not in data:
                continue
            value = data[item.name]
            if item.name in nested:
                value = nested[item.name](**value)
            elif isinstance(value, dict):
                value = LatencyStats(**value)
            values[item.name] = value
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class GroupStats(Stats):
    """One target in one phase (``warm`` or ``cold``)."""

    target: str
    model: str
    pool: str
    arch: str
    instance_type: str
    mode: str
    phase: str
    memory_profile: str | None = None
    """The target's memory profile (serverless pricing), if any."""
    users_max: int = 1
    """The most users this target saw at once (1 for sequential scenarios)."""
    backend: str = ""
    """What answered (``X-DR-Backend``), several joined by ``+``; empty when no answer said."""
    precision: str = ""
    """What it computed in (``X-DR-Precision``), likewise."""


@dataclass(frozen=True, kw_only=True)
class StepStats(Stats):
    """One target at one user count (a step of a ramp or shape)."""

    target: str
    model: str = ""
    pool: str = ""
    users: int
    spawning: int = 0
    """Requests sent while the step's users were still starting, left out of every statistic above."""


def group_stats(
    rows: list[dict[str, Any]], targets: Iterable[Target] = (), *, include_discarded: bool = False
) -> list[GroupStats]:
    """Statistics per target and phase, in the order targets first appear."""
    profiles = {(t.model, t.pool): t.memory_profile for t in targets}
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        if row["phase"] == "discarded" and not include_discarded:
            continue
        groups.setdefault(tuple(row[k] for k in _GROUP_KEYS), []).append(row)
    users_max: dict[str, int] = {}
    for row in rows:
        users_max[row["target"]] = max(users_max.get(row["target"], 1), row["users"] or 1)
    found = []
    for key, members in groups.items():
        labels = dict(zip(_GROUP_KEYS, key, strict=True))
        found.append(
            GroupStats(
                **labels,
                memory_profile=profiles.get((labels["model"], labels["pool"])),
                users_max=users_max.get(labels["target"], 1),
                backend=_distinct(members, "backend"),
                precision=_distinct(members, "precision"),
                **Stats.measure(members),
            )
        )
    return found


def _distinct(rows: list[dict[str, Any]], column: str) -> str:
    """The non-empty values of ``column`` in ``rows``, sorted and joined by ``+``."""
    return "+".join(sorted({row[column] for row in rows if row[column]}))


def _spawning(row: dict[str, Any]) -> bool:
    return row["active_users"] is not None and row["active_users"] < (row["users"] or 1)


def step_stats(rows: list[dict[str, Any]]) -> list[StepStats]:
    """Statistics per target and user count (for ramps and shapes), sorted by target then users."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        if row["phase"] != "discarded":
            groups.setdefault((row["target"], row["users"] or 0), []).append(row)
    found = []
    for (target, users), members in sorted(groups.items()):
        steady = [r for r in members if not _spawning(r)]
        found.append(
            StepStats(
                target=target,
                model=members[0]["model"],
                pool=members[0]["pool"],
                users=users,
                spawning=len(members) - len(steady),
                **Stats.measure(steady),
            )
        )
    return found


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    """``summary.json``: what ran, where, and its statistics (written once by the campaign)."""

    scenario: str
    environment: str
    """``emulation (...)`` for local runs, ``cluster`` otherwise."""
    started: str
    finished: str
    duration_s: float
    started_unix: float
    finished_unix: float
    protocol: str
    images: str
    settings: dict[str, Any] = field(default_factory=dict)
    targets: tuple[Target, ...] = ()
    requests: int = 0
    groups: tuple[GroupStats, ...] = ()
    steps: tuple[StepStats, ...] = ()
    cold_start: tuple[dict[str, Any], ...] = ()
    """Per cold request, where its time went (keys differ between local and cluster runs)."""
    prometheus: dict[str, Any] | None = None
    """The Prometheus quantiles queried at the end of the run (``prometheus.json``)."""
    containers: tuple[dict[str, Any], ...] = ()
    """Docker runtime: per container, its limits, peak/steady memory, CPU and fate (OOM kill included)."""

    @property
    def emulated(self) -> bool:
        """Whether the run used local emulation rather than a cluster."""
        return self.environment.startswith("emulation")

    def group(self, target: str, phase: str) -> GroupStats | None:
        """The group of ``target`` in ``phase``, if the run has one."""
        return next((g for g in self.groups if g.target == target and g.phase == phase), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``summary.json`` (the keys of earlier versions kept)."""
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        data["targets"] = [t.to_dict() for t in self.targets]
        data["groups"] = [g.to_dict() for g in self.groups]
        data["steps"] = [s.to_dict() for s in self.steps]
        data["cold_start"] = list(self.cold_start)
        data["containers"] = list(self.containers)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        """The inverse of ``to_dict``; unknown keys are ignored, missing ones take their defaults."""
        known = {item.name for item in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["targets"] = tuple(Target.from_dict(t) for t in data.get("targets", ()))
        values["groups"] = tuple(GroupStats.from_dict(g) for g in data.get("groups", ()))
        values["steps"] = tuple(StepStats.from_dict(s) for s in data.get("steps", ()))
        values["cold_start"] = tuple(data.get("cold_start") or ())
        values["containers"] = tuple(data.get("containers") or ())
        return cls(**values)

    def write(self, path: str | Path) -> Path:
        """Write ``summary.json`` (indented, keys in field order)."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: str | Path) -> RunSummary:
        """Read ``summary.json``; ``ValueError`` naming the file when it cannot be read."""
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"Cannot read {str(path)!r}: {exc}.") from exc
