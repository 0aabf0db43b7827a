"""The report's tables, each a title, a header and rows of display strings, computed from a run folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from loadtest.exporter import BUCKETS
from loadtest.report.prices import PriceTable
from loadtest.report.published import COURSE_PROJECT, SPEEDUPS, published_for
from loadtest.summary import group_stats, latency_stats, read_requests, step_stats

__all__ = ["RunData", "Table", "all_tables", "bucket_bounds", "load_run"]


@dataclass(kw_only=True)
class Table:
    """A titled table of strings, with an optional note under it."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass(kw_only=True)
class RunData:
    """A run folder read back: its summary, its request rows and derived groups."""

    run_dir: Path
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    groups: list[dict[str, Any]] = field(default_factory=list)
    prometheus: dict[str, Any] | None = None

    @property
    def emulated(self) -> bool:
        """Whether the run used local emulation rather than a cluster."""
        return str(self.summary.get("environment", "")).startswith("emulation")


def load_run(run_dir: str | Path) -> RunData:
    """Read ``summary.json``, ``requests.csv`` and ``prometheus.json`` (if any) of a run folder."""
    run_dir = Path(run_dir)
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"Cannot read {str(run_dir / 'summary.json')!r}: {exc}.") from exc
    rows = read_requests(run_dir / "requests.csv")
    profiles = {
        t.get("model", "") + "@" + t.get("pool", ""): t.get("memory_profile") for t in summary["targets"]
    }
    groups = group_stats(rows)
    for group in groups:
        group["memory_profile"] = profiles.get(f"{group['model']}@{group['pool']}")
        group["users_max"] = max((r["users"] or 1) for r in rows if r["target"] == group["target"])
    prometheus_path = run_dir / "prometheus.json"
    prometheus = json.loads(prometheus_path.read_text(encoding="utf-8")) if prometheus_path.exists() else None
    return RunData(run_dir=run_dir, summary=summary, rows=rows, groups=groups, prometheus=prometheus)


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if not (ours and theirs):
        return "–"
    ratio = ours / theirs
    return f"{ratio:.2f}×" if ratio >= 0.1 else f"{ratio:.2g}×"


def latency_table(run: RunData) -> Table:
    """Server prediction time vs total latency per target and phase."""
    rows = []
    for g in run.groups:
        pred, total = g["server_prediction_ms"], g["client_ms"]
        share = f"{pred['p50'] / total['p50']:.2f}" if pred["p50"] and total["p50"] else "–"
        rows.append(
            [
                g["target"],
                g["phase"],
                str(g["requests"]),
                _ms(pred["p50"]),
                _ms(pred["p95"]),
                _ms(g["server_ms"]["p50"]),
                _ms(total["p50"]),
                _ms(total["p95"]),
                _ms(total["p99"]),
                share,
                f"{g['error_pct']:.1f}",
            ]
        )
    return Table(
        title="Server prediction time vs total latency (ms)",
        header=[
            "target",
            "phase",
            "n",
            "prediction p50",
            "prediction p95",
            "server p50",
            "total p50",
            "total p95",
            "total p99",
            "prediction/total",
            "error %",
        ],
        rows=rows,
        note="prediction = backend call inside the server (X-DR-Prediction-Ms); total = client-side latency.",
    )


def published_table(run: RunData) -> Table:
    """Our medians beside the published ones, with the ratio ours / published."""
    rows = []
    for g in run.groups:
        ref = published_for(
            g["model"],
            instance_type=g["instance_type"],
            memory_profile=g.get("memory_profile"),
            phase=g["phase"],
        )
        if ref is None:
            continue
        pred, total = g["server_prediction_ms"]["p50"], g["client_ms"]["p50"]
        rows.append(
            [
                g["target"],
                g["phase"],
                ref["source"],
                _ms(pred),
                _ms(ref["prediction_ms"]),
                _ratio(pred, ref["prediction_ms"]),
                _ms(total),
                _ms(ref["full_ms"]),
                _ratio(total, ref["full_ms"]),
            ]
        )
    note = "Published: SageMaker real-time (4 vCPU) and serverless medians; full latency there includes "
    note += "the managed service's network path, ours is loopback or the cluster ingress."
    if run.emulated:
        note += " Emulated pools are compared with the instance type they stand in for."
    return Table(
        title="Ours beside the published figures (median ms)",
        header=[
            "target",
            "phase",
            "published",
            "prediction",
            "published prediction",
            "ratio",
            "total",
            "published full",
            "ratio",
        ],
        rows=rows,
        note=note,
    )


def speedup_table(run: RunData) -> Table:
    """Speed-ups between pools for the same model (warm medians), with the published ones when comparable."""
    rows = []
    warm = [g for g in run.groups if g["phase"] == "warm"]
    for a, b in combinations(warm, 2):
        if a["model"] != b["model"] or a["target"] == b["target"]:
            continue
        pa, pb = a["server_prediction_ms"]["p50"], b["server_prediction_ms"]["p50"]
        ta, tb = a["client_ms"]["p50"], b["client_ms"]["p50"]
        if not (pa and pb and ta and tb):
            continue
        fast, slow = (a, b) if pa <= pb else (b, a)
        key = (fast["instance_type"].removeprefix("ml."), slow["instance_type"].removeprefix("ml."))
        model = "vgg19" if "vgg" in a["model"].lower() else "mobilenet"
        published = "–"
        for pair in (key, key[::-1]):
            ref = SPEEDUPS.get(pair, {}).get(model)
            if ref is not None:
                full = f"{ref[1]:.2f}×" if ref[1] else "–"
                published = f"{pair[0]} faster than {pair[1]}: {ref[0]:.2f}× / {full}"
        rows.append(
            [
                a["model"],
                f"{fast['pool']} vs {slow['pool']}",
                f"{slow['server_prediction_ms']['p50'] / fast['server_prediction_ms']['p50']:.2f}×",
                f"{slow['client_ms']['p50'] / fast['client_ms']['p50']:.2f}×",
                published,
            ]
        )
    return Table(
        title="Speed-ups between pools (warm p50, slower ÷ faster)",
        header=["model", "pools (faster vs slower)", "prediction", "total", "published prediction / full"],
        rows=rows,
        note="Published speed-ups are shown where our pools stand for the same instance pair.",
    )


def cost_table(run: RunData, prices: PriceTable) -> Table:
    """Cost per inference from the price table."""
    rows = []
    for g in run.groups:
        cost = prices.cost_per_inference(g)
        if cost is None:
            continue
        priced_as = cost["priced_as"] + (
            " (stand-in)" if run.emulated and "stand-in" not in cost["priced_as"] else ""
        )
        at_tp = f"{cost['usd_at_throughput']:.4g}" if "usd_at_throughput" in cost else "–"
        rows.append(
            [
                g["target"],
                g["phase"],
                priced_as,
                f"{cost['per_second']:.4g}",
                f"{cost['usd_sequential']:.4g}",
                at_tp,
            ]
        )
    return Table(
        title="Cost per inference (USD)",
        header=[
            "target",
            "phase",
            "priced as",
            "USD per second",
            "sequential (price × p50)",
            "at measured throughput",
        ],
        rows=rows,
        note=f"Prices from {prices.source}. Published serverless means: MobileNet 1/2/3 GB "
        "0.0000095 / 0.0000144 / 0.0000206, VGG19 0.0000376 / 0.0000344 / 0.0000408 USD.",
    )


def warm_cold_table(run: RunData) -> Table:
    """Warm vs cold latency per target (medians) and the ratio."""
    rows = []
    for target in dict.fromkeys(g["target"] for g in run.groups):
        warm = next((g for g in run.groups if g["target"] == target and g["phase"] == "warm"), None)
        cold = next((g for g in run.groups if g["target"] == target and g["phase"] == "cold"), None)
        if cold is None:
            continue
        w = warm["client_ms"]["p50"] if warm else None
        c = cold["client_ms"]["p50"]
        rows.append([target, str(cold["requests"]), _ms(w), _ms(c), _ratio(c, w)])
    return Table(
        title="Warm vs cold (client latency, median ms)",
        header=["target", "cold n", "warm p50", "cold p50", "cold ÷ warm"],
        rows=rows,
        note="Published: cold is 57.42× warm (MobileNet, 2 GB serverless) and 19.82× (VGG19).",
    )


def cold_breakdown_table(run: RunData) -> Table:
    """Where each cold start's time went."""
    entries = run.summary.get("cold_start") or []
    keys: list[str] = []
    for entry in entries:
        keys.extend(k for k in entry if k not in keys and k not in {"target", "kind", "error"})
    rows = [
        [e["target"], e.get("kind", "")] + [_fmt(e.get(k)) for k in keys] + [e.get("error") or ""]
        for e in entries
    ]
    return Table(
        title="Cold-start breakdown (seconds unless marked ms)",
        header=["target", "kind", *keys, "error"],
        rows=rows,
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def steps_table(run: RunData) -> Table:
    """Per user count: p50/p95/p99, throughput and errors (ramps and shapes)."""
    rows = []
    for s in step_stats(run.rows):
        c = s["client_ms"]
        rows.append(
            [
                s["target"],
                str(s["users"]),
                str(s["requests"]),
                _ms(c["p50"]),
                _ms(c["p95"]),
                _ms(c["p99"]),
                _fmt(s["throughput_rps"]),
                f"{s['error_pct']:.1f}",
            ]
        )
    ref = ", ".join(
        f"n={n}: p50 {m:.0f} / p95 {p:.0f} ms, {e:.0f} % errors" for n, (m, p, e) in COURSE_PROJECT.items()
    )
    return Table(
        title="Load steps (client latency ms)",
        header=["target", "users", "requests", "p50", "p95", "p99", "throughput rps", "error %"],
        rows=rows,
        note=f"Course project (Vertex AI): {ref}.",
    )


def bucket_bounds(value_s: float, buckets: tuple[float, ...] | list[float] = BUCKETS) -> tuple[float, float]:
    """The lower and upper bound (seconds) of the histogram bucket that holds ``value_s``."""
    lower = 0.0
    for upper in buckets:
        if value_s <= upper:
            return lower, upper
        lower = upper
    return lower, float("inf")


#: (prometheus.json key, CSV column, label in the table, whether discarded requests count)
_PROMETHEUS_SOURCES = (
    ("request_seconds", "client_ms", "lab exporter: client latency", False),
    ("predictor_batch_seconds", "server_prediction_ms", "predictor: prediction time", True),
)


def prometheus_check(run: RunData) -> tuple[Table, list[dict[str, Any]]]:
    """Prometheus quantiles (from its HTTP API) beside the CSV's, agreeing within a bucket's width."""
    checks: list[dict[str, Any]] = []
    prom = run.prometheus or {}
    for key, column, source, with_discarded in _PROMETHEUS_SOURCES:
        for entry in prom.get(key) or []:
            rows = [
                r
                for r in run.rows
                if r["pool"] == entry["pool"]
                and r["model"] == entry["model"]
                and (with_discarded or r["phase"] != "discarded")
                and not r["error"]
                and r["status"] == 200
            ]
            csv_stats = latency_stats(r[column] for r in rows)
            buckets = entry.get("buckets") or BUCKETS
            for q in ("p50", "p95"):
                ours, theirs = csv_stats[q], entry.get(f"{q}_ms")
                if ours is None or theirs is None:
                    continue
                widths = [hi - lo for lo, hi in (bucket_bounds(v / 1000.0, buckets) for v in (ours, theirs))]
                tolerance_ms = max(widths) * 1000.0
                checks.append(
                    {
                        "source": source,
                        "pool": entry["pool"],
                        "model": entry["model"],
                        "quantile": q,
                        "csv_ms": ours,
                        "prometheus_ms": theirs,
                        "tolerance_ms": round(tolerance_ms, 3),
                        "agree": abs(theirs - ours) <= tolerance_ms,
                        "query": entry["queries"][q],
                    }
                )
    note = (
        f"Prometheus {prom.get('url', '')}: {prom.get('method', '')}. Tolerance = the wider of the two "
        "histogram buckets holding the CSV and the Prometheus value (histogram_quantile interpolates inside "
        "a bucket)."
    )
    table = Table(
        title="Prometheus (HTTP API, histogram_quantile) vs the CSV",
        header=["source", "pool", "model", "quantile", "CSV ms", "Prometheus ms", "tolerance ms", "agree"],
        rows=[
            [
                c["source"],
                c["pool"],
                c["model"],
                c["quantile"],
                _ms(c["csv_ms"]),
                _ms(c["prometheus_ms"]),
                _ms(c["tolerance_ms"]),
                "yes" if c["agree"] else "NO",
            ]
            for c in checks
        ],
        note=note if checks else f"No Prometheus quantiles for this run. {prom.get('error', '')}".strip(),
    )
    return table, checks


def all_tables(run: RunData, prices: PriceTable) -> list[Table]:
    """Every table that has rows for this run, in report order."""
    tables = [
        latency_table(run),
        published_table(run),
        speedup_table(run),
        warm_cold_table(run),
        cold_breakdown_table(run),
        steps_table(run) if run.summary.get("steps") else None,
        cost_table(run, prices),
        prometheus_check(run)[0],
    ]
    return [t for t in tables if t is not None and (t.rows or t.title.startswith("Prometheus"))]
