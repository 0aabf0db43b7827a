"""The report's tables: ``analysis`` rows formatted as strings (no computation here), each with its kind."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from loadtest.emulation import ARM64_EMULATED, QEMU_NOTE, UNPRICED
from loadtest.report.analysis import Analysis, ColdPublishedRow, LatencyRow, PrometheusCheck
from loadtest.report.published import COURSE_PROJECT

__all__ = [
    "Table",
    "TableKind",
    "all_tables",
    "cold_published_table",
    "containers_table",
    "latency_table",
    "load_label",
    "prometheus_table",
]


class TableKind(Enum):
    """What a table shows (the renderers and the console pick tables by kind, never by title)."""

    LATENCY = "latency"
    PUBLISHED = "published"
    COURSE = "course"
    SPEEDUPS = "speedups"
    WARM_COLD = "warm-cold"
    COLD_BREAKDOWN = "cold-breakdown"
    COLD_PUBLISHED = "cold-published"
    CONTAINERS = "containers"
    STEPS = "steps"
    ANATOMY = "anatomy"
    COSTS = "costs"
    PROMETHEUS = "prometheus"


@dataclass(frozen=True, kw_only=True)
class Table:
    """A titled table of strings, with an optional note under it."""

    kind: TableKind
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _times(ratio: float | None) -> str:
    if ratio is None:
        return "–"
    return f"{ratio:.2f}×" if ratio >= 0.1 else f"{ratio:.2g}×"


def _number(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _cold_breakdown_note(entries: tuple[dict[str, Any], ...]) -> str:
    """What the container and cluster columns of the cold-start breakdown measure (when present)."""
    notes = []
    if any("container_start_s" in e for e in entries):
        notes.append(
            "container_start_s = docker start → the engine's State.StartedAt (the process starts there); "
            "process_start_to_ready_s = the predictor's dr_startup_seconds, of which model_load_s = "
            "dr_model_load_seconds; readiness_seen_after_s = polling lag of the held request."
        )
    if any("server_figures_from" in e for e in entries):
        notes.append(
            "Cluster: server_startup_s and model_load_s = the fresh pod's dr_startup_seconds and "
            "dr_model_load_seconds from Prometheus by its pod name; server_figures_from names that "
            "Prometheus and pod, or why the figures are missing."
        )
    return " ".join(notes)


def load_label(phase: str, users: int) -> str:
    """``warm (sequential)``, ``cold (sequential)`` or ``load, 100 users``."""
    return f"load, {users} users" if phase == "load" else f"{phase} (sequential)"


def latency_table(rows: list[LatencyRow]) -> Table:
    """Server prediction time vs total latency per target and phase/load."""
    return Table(
        kind=TableKind.LATENCY,
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
        rows=[
            [
                r.target,
                load_label(r.phase, r.users),
                str(r.requests),
                _ms(r.prediction.p50),
                _ms(r.prediction.p95),
                _ms(r.server.p50),
                _ms(r.total.p50),
                _ms(r.total.p95),
                _ms(r.total.p99),
                f"{r.share:.2f}" if r.share is not None else "–",
                f"{r.error_pct:.1f}",
            ]
            for r in rows
        ],
        note="prediction = the backend call alone inside the server (X-DR-Prediction-Ms); server = arrival "
        "to postprocessing (X-DR-Server-Ms); total = client-side latency. Phase: warm/cold are sequential "
        "requests; load rows are one step of a ramp or shape."
        + (
            f" {ARM64_EMULATED}: the arm64 image under {QEMU_NOTE}; functional only, priced as nothing and "
            "never set beside published figures or other pools."
            if any(r.instance_type == UNPRICED for r in rows)
            else ""
        ),
    )


_PROMETHEUS_HEADER = [
    "source", "pool", "model", "quantile", "requests", "CSV ms", "CSV in buckets ms", "Prometheus ms",
    "tolerance ms", "agree",
]  # fmt: skip


def prometheus_table(
    checks: list[PrometheusCheck], prometheus: dict[str, Any] | None, *, restarted: bool = False
) -> Table:
    """Prometheus quantiles beside the CSV's, with how they were queried."""
    prom = prometheus or {}
    note = (
        f"Prometheus {prom.get('url', '')}: {prom.get('method', '')}, over the whole run (every phase and "
        'load; the predictor\'s own histogram counts discarded requests too). "CSV in buckets" is what '
        "histogram_quantile answers for the CSV's values in the metric's buckets: Prometheus agrees when it "
        "is within that bucket's width of it (the same requests in the same buckets; a value on a bucket's "
        'edge may move one bucket). "CSV ms" is the CSV\'s own quantile, which histogram_quantile can only '
        "approach, inside a bucket."
    )
    if restarted and prom.get("local"):
        note += (
            " Cold starts restart the predictors, whose histograms start again: the predictor rows compare "
            "each predictor's last life (its last cold request and what followed) on both sides."
        )
    return Table(
        kind=TableKind.PROMETHEUS,
        title="Prometheus (HTTP API, histogram_quantile) vs the CSV",
        header=_PROMETHEUS_HEADER,
        rows=[
            [
                c.source,
                c.pool,
                c.model,
                c.quantile,
                str(c.requests),
                _ms(c.csv_ms),
                _ms(c.csv_histogram_ms),
                _ms(c.prometheus_ms),
                _ms(c.tolerance_ms),
                "yes" if c.agree else "NO",
            ]
            for c in checks
        ],
        note=note if checks else f"No Prometheus quantiles for this run. {prom.get('error', '')}".strip(),
    )


def _mib(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def containers_table(containers: list[dict[str, Any]]) -> Table:
    """Each container's limits, peak and steady memory, CPU and fate (docker runtime)."""
    return Table(
        kind=TableKind.CONTAINERS,
        title="Containers: memory and CPU from cgroup stats (docker runtime)",
        header=[
            "target",
            "image",
            "--memory",
            "--cpus",
            "status",
            "peak MiB",
            "peak source",
            "steady MiB",
            "peak % of limit",
            "CPU s",
            "mean cores",
            "peak cores",
        ],
        rows=[
            [
                c["target"],
                c["image"] + (" (QEMU emulation, not Graviton performance)" if "QEMU" in c["arch"] else ""),
                c["memory_profile"],
                f"{c['cpus']:g}",
                "OOM-KILLED (failed target)" if c["oom_killed"] else c["status"],
                _mib(c["peak_mib"]),
                c["peak_source"],
                _mib(c["steady_working_set_mib"]),
                f"{c['peak_pct_of_limit']:.0f}",
                _number(c["cpu_seconds"]),
                _number(c["cpu_mean_cores"]),
                _number(c["cpu_peak_cores"]),
            ]
            for c in containers
        ],
        note="Sampled every 0.5 s from the engine's stats API over the whole run (start-ups and cold starts "
        "included). peak = the kernel's cgroup maximum (page cache included) where the engine reports it "
        "(cgroup v1), else the highest sampled working set; an OOM-killed container reached its limit. "
        "steady = median working set (usage − inactive file cache, as the kubelet counts it) once ready. "
        "--cpus = the chart's CPU for the profile (values.yaml profiles), capped at the pool's cores. "
        "Emulation: one machine's containers, not a cluster's nodes.",
    )


def cold_published_table(rows: list[ColdPublishedRow], pull_note: str) -> Table:
    """Our container cold starts beside the published serverless ones (seconds)."""
    return Table(
        kind=TableKind.COLD_PUBLISHED,
        title="Container cold starts beside the published serverless cold starts (median s)",
        header=[
            "target",
            "cold n",
            "container start → ready",
            "published ModelSetupTime",
            "total (no pull)",
            "pull estimate",
            "total + pull estimate",
            "published cold full",
            "ratio",
        ],
        rows=[
            [
                r.target,
                str(r.cold_requests),
                _number(r.setup_s),
                _number(r.published_setup_s),
                _number(r.total_s),
                _number(r.pull_estimate_s),
                _number(r.total_with_pull_s),
                _number(r.published_cold_full_s),
                _times(r.ratio),
            ]
            for r in rows
        ],
        note="Image pull is absent locally (the image is cached): "
        + (pull_note or "no estimate")
        + ". Published: serverless cold full latency per memory size (MobileNet / VGG19 after image "
        "optimisation: 12.48 / 11.07 s at 2 GB); ModelSetupTime = provisioning before the container serves.",
    )


def all_tables(
    analysis: Analysis,
    *,
    emulated: bool,
    price_source: str,
    prometheus: dict[str, Any] | None,
    pull_note: str = "",
) -> list[Table]:
    """Every table that has rows for this run, in report order (the Prometheus table always)."""
    a = analysis
    published_note = (
        "Published figures are single-request medians (SageMaker real-time 4 vCPU, serverless), so only "
        "sequential measurements stand beside them: the warm-up, cold starts, and a ramp's lowest load step. "
        "Their full latency includes the managed service's network path; ours is loopback or the cluster "
        "ingress."
    )
    if emulated:
        published_note += " Emulated pools are compared with the instance type they stand in for."
    course = ", ".join(
        f"n={n}: p50 {m:.0f} / p95 {p:.0f} ms, {e:.0f} % errors" for n, (m, p, e) in COURSE_PROJECT.items()
    )
    breakdown = a.cold_breakdown
    tables = [
        latency_table(a.latency),
        Table(
            kind=TableKind.PUBLISHED,
            title="Ours beside the published figures (median ms, sequential phases only)",
            header=[
                "target",
                "compared as",
                "published",
                "prediction",
                "published prediction",
                "ratio",
                "total",
                "published full",
                "ratio",
            ],
            rows=[
                [
                    r.target,
                    r.compared_as,
                    r.source,
                    _ms(r.prediction_ms),
                    _ms(r.published_prediction_ms),
                    _times(r.prediction_ratio),
                    _ms(r.total_ms),
                    _ms(r.published_full_ms),
                    _times(r.total_ratio),
                ]
                for r in a.published
            ],
            note=published_note,
        ),
        Table(
            kind=TableKind.STEPS,
            title="Load steps (client latency ms)",
            header=[
                "target",
                "users",
                "requests",
                "spawning",
                "p50",
                "p95",
                "p99",
                "throughput rps",
                "error %",
            ],
            rows=[
                [
                    r.target,
                    str(r.users),
                    str(r.requests),
                    str(r.spawning),
                    _ms(r.total.p50),
                    _ms(r.total.p95),
                    _ms(r.total.p99),
                    _number(r.throughput_rps),
                    f"{r.error_pct:.1f}",
                ]
                for r in a.latency
                if r.phase == "load"
            ],
            note="Each step's statistics leave out the requests sent while its users were still spawning "
            f"(column 'spawning'). Course project (Vertex AI under load): {course}.",
        ),
        Table(
            kind=TableKind.COURSE,
            title="Load steps beside the course project (Vertex AI under load, client latency ms)",
            header=[
                "target",
                "users",
                "requests",
                "p50",
                "course p50",
                "p95",
                "course p95",
                "throughput rps",
                "error %",
                "course error %",
            ],
            rows=[
                [
                    r.target,
                    str(r.users),
                    str(r.requests),
                    _ms(r.p50_ms),
                    _ms(r.course_p50_ms),
                    _ms(r.p95_ms),
                    _ms(r.course_p95_ms),
                    _number(r.throughput_rps),
                    f"{r.error_pct:.1f}",
                    f"{r.course_error_pct:.1f}",
                ]
                for r in a.course
            ],
            note="The course project's n counts requests sent under load (n = 200 and 500); ours counts "
            "concurrent users, each pausing between requests. Shown beside the step with the same number.",
        ),
        Table(
            kind=TableKind.ANATOMY,
            title="Latency anatomy (mean ms per phase of the request)",
            header=[
                "target",
                "phase",
                "n",
                "body",
                "decode",
                "queue",
                "prediction",
                "postprocess",
                "other server",
                "client side",
                "total",
            ],
            rows=[
                [
                    r.target,
                    load_label(r.phase, r.users),
                    str(r.anatomy.requests),
                    _ms(r.anatomy.body_ms),
                    _ms(r.anatomy.decode_ms),
                    _ms(r.anatomy.queue_ms),
                    _ms(r.anatomy.prediction_ms),
                    _ms(r.anatomy.postprocess_ms),
                    _ms(r.anatomy.other_server_ms),
                    _ms(r.anatomy.client_side_ms),
                    _ms(r.anatomy.total_ms),
                ]
                for r in a.anatomy
            ],
            note="Means over successful requests (means add up to the total; medians would not). queue = "
            "waiting for the inference thread; client side = network and client queueing (total − server − "
            "postprocess). '–' = the server did not report that phase."
            + (
                " A cold request's client side includes waiting for the target to start (process start or "
                "scale from zero): the cold-start breakdown splits it."
                if any(r.phase == "cold" for r in a.anatomy)
                else ""
            ),
        ),
        Table(
            kind=TableKind.SPEEDUPS,
            title="Speed-ups between pools (warm p50, slower ÷ faster)",
            header=[
                "model",
                "pools (faster vs slower)",
                "prediction",
                "total",
                "published prediction / full",
            ],
            rows=[
                [
                    r.model,
                    f"{r.faster} vs {r.slower}",
                    f"{r.prediction:.2f}×",
                    f"{r.total:.2f}×",
                    r.published or "–",
                ]
                for r in a.speedups
            ],
            note="Sequential warm requests only. Published speed-ups are shown where our pools stand for the "
            "same instance pair.",
        ),
        Table(
            kind=TableKind.WARM_COLD,
            title="Warm vs cold (client latency, median ms, sequential)",
            header=["target", "cold n", "warm p50", "cold p50", "cold ÷ warm"],
            rows=[
                [r.target, str(r.cold_requests), _ms(r.warm_p50_ms), _ms(r.cold_p50_ms), _times(r.ratio)]
                for r in a.warm_cold
            ],
            note="Published: cold is 57.42× warm (MobileNet, 2 GB serverless) and 19.82× (VGG19).",
        ),
        Table(
            kind=TableKind.COLD_BREAKDOWN,
            title="Cold-start breakdown (seconds unless marked ms)",
            header=["target", "kind", *breakdown.keys, "error"],
            rows=[
                [e["target"], e.get("kind", "")]
                + [_number(e.get(k)) for k in breakdown.keys]
                + [e.get("error") or ""]
                for e in breakdown.entries
            ],
            note=_cold_breakdown_note(breakdown.entries),
        ),
        cold_published_table(a.cold_published, pull_note),
        containers_table(a.containers),
        Table(
            kind=TableKind.COSTS,
            title="Cost per inference (USD)",
            header=[
                "target",
                "phase",
                "priced as",
                "USD per second",
                "sequential (price × p50)",
                "at measured throughput",
            ],
            rows=[
                [
                    r.target,
                    load_label(r.phase, r.users),
                    r.priced_as,
                    f"{r.per_second:.4g}",
                    f"{r.usd_sequential:.4g}",
                    f"{r.usd_at_throughput:.4g}" if r.usd_at_throughput is not None else "–",
                ]
                for r in a.costs
            ],
            note=f"Prices from {price_source}. Published serverless means: MobileNet 1/2/3 GB "
            "0.0000095 / 0.0000144 / 0.0000206, VGG19 0.0000376 / 0.0000344 / 0.0000408 USD.",
        ),
    ]
    restarted = bool(a.cold_breakdown.entries)
    return [t for t in tables if t.rows] + [prometheus_table(a.prometheus, prometheus, restarted=restarted)]
