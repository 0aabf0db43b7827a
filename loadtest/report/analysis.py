"""The report's numbers, computed once from a ``RunData``: small frozen dataclasses, no formatting.

Every row says which phase and load it covers. A *phase* is ``warm`` (sequential warm requests), ``cold`` (the
first request after a target was at zero) or ``load`` (one step of a ramp or shape at ``users`` concurrent
users). Published figures are single-request medians, so they are set only beside sequential measurements:
the warm-up's warm requests, the cold starts, and a ramp or shape's lowest load step (marked as such). Load
steps get their own comparison with the course project's figures under load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from loadtest.emulation import UNPRICED
from loadtest.exporter import BUCKETS
from loadtest.report.prices import PriceTable
from loadtest.report.published import COURSE_PROJECT, SPEEDUPS, published_cold, published_for
from loadtest.report.run import RunData
from loadtest.summary import Anatomy, GroupStats, LatencyStats, StepStats, failed
from serving.timing import percentiles

__all__ = [
    "Analysis",
    "AnatomyRow",
    "ColdPublishedRow",
    "CostRow",
    "CourseRow",
    "LatencyRow",
    "PrometheusCheck",
    "PublishedRow",
    "SpeedupRow",
    "WarmColdRow",
    "analyse",
    "bucket_bounds",
    "cold_published_rows",
    "histogram_quantile",
]


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return ours / theirs if ours and theirs else None


@dataclass(frozen=True, kw_only=True)
class LatencyRow:
    """Prediction time vs total latency of one target in one phase at one load."""

    target: str
    model: str
    pool: str
    instance_type: str
    memory_profile: str | None
    phase: str
    users: int
    """Concurrent users (1 for sequential phases)."""
    requests: int
    prediction: LatencyStats
    server: LatencyStats
    total: LatencyStats
    error_pct: float
    throughput_rps: float | None
    spawning: int = 0
    """Requests left out because they were sent while the step's users were still spawning."""

    @property
    def share(self) -> float | None:
        """Median prediction ÷ median total latency."""
        return _ratio(self.prediction.p50, self.total.p50)


def _row(
    stats: GroupStats | StepStats, *, phase: str, users: int, profile: str | None, **labels: Any
) -> LatencyRow:
    return LatencyRow(
        target=stats.target,
        model=labels["model"],
        pool=labels["pool"],
        instance_type=labels["instance_type"],
        memory_profile=profile,
        phase=phase,
        users=users,
        requests=stats.requests,
        prediction=stats.server_prediction_ms,
        server=stats.server_ms,
        total=stats.client_ms,
        error_pct=stats.error_pct,
        throughput_rps=stats.throughput_rps,
        spawning=stats.spawning if isinstance(stats, StepStats) else 0,
    )


def latency_rows(run: RunData) -> list[LatencyRow]:
    """One row per target and phase (sequential scenarios) or per target and load step (ramps and shapes)."""
    summary = run.summary
    labels = {g.target: g for g in summary.groups}
    rows = []
    for group in summary.groups:
        if summary.steps and group.phase == "warm":
            continue  # under load, the warm group mixes every step: the steps below say it per load
        rows.append(
            _row(
                group,
                phase=group.phase,
                users=1,
                profile=group.memory_profile,
                model=group.model,
                pool=group.pool,
                instance_type=group.instance_type,
            )
        )
    for step in summary.steps:
        group = labels.get(step.target)
        if group is None:
            continue
        rows.append(
            _row(
                step,
                phase="load",
                users=step.users,
                profile=group.memory_profile,
                model=group.model,
                pool=group.pool,
                instance_type=group.instance_type,
            )
        )
    return rows


@dataclass(frozen=True, kw_only=True)
class PublishedRow:
    """Our medians beside the published single-request medians for the same model and instance/memory."""

    target: str
    phase: str
    users: int
    compared_as: str
    """Which of our measurements this is: ``warm-up``, ``cold start`` or ``lowest load step (N users)``."""
    source: str
    """The published figure, e.g. ``ml.m5.xlarge real-time``."""
    prediction_ms: float | None
    published_prediction_ms: float
    total_ms: float | None
    published_full_ms: float

    @property
    def prediction_ratio(self) -> float | None:
        """Ours ÷ published, prediction time."""
        return _ratio(self.prediction_ms, self.published_prediction_ms)

    @property
    def total_ratio(self) -> float | None:
        """Ours ÷ published, total latency."""
        return _ratio(self.total_ms, self.published_full_ms)


def _sequential(rows: list[LatencyRow]) -> list[tuple[LatencyRow, str]]:
    """The rows comparable with single-request figures, each with how it is compared."""
    found = [
        (r, "warm-up" if r.phase == "warm" else "cold start") for r in rows if r.phase in ("warm", "cold")
    ]
    for target in dict.fromkeys(r.target for r in rows if r.phase == "load"):
        lowest = min((r for r in rows if r.target == target and r.phase == "load"), key=lambda r: r.users)
        found.append((lowest, f"lowest load step ({lowest.users} users)"))
    return found


def _comparable(rows: list[LatencyRow]) -> list[LatencyRow]:
    """Rows that may stand beside published or other pools' figures: not the QEMU-emulated arm64 pool."""
    return [r for r in rows if r.instance_type != UNPRICED]


def published_rows(rows: list[LatencyRow]) -> list[PublishedRow]:
    """Published figures beside our sequential measurements only (see the module docstring); never beside
    the QEMU-emulated arm64 pool (functional runs only)."""
    found = []
    for row, compared_as in _sequential(_comparable(rows)):
        ref = published_for(
            row.model,
            instance_type=row.instance_type,
            memory_profile=row.memory_profile,
            phase="cold" if row.phase == "cold" else "warm",
        )
        if ref is None:
            continue
        found.append(
            PublishedRow(
                target=row.target,
                phase=row.phase,
                users=row.users,
                compared_as=compared_as,
                source=ref["source"],
                prediction_ms=row.prediction.p50,
                published_prediction_ms=ref["prediction_ms"],
                total_ms=row.total.p50,
                published_full_ms=ref["full_ms"],
            )
        )
    return found


@dataclass(frozen=True, kw_only=True)
class CourseRow:
    """One of our load steps beside the course project's Vertex AI figures for the same n."""

    target: str
    users: int
    requests: int
    p50_ms: float | None
    p95_ms: float | None
    throughput_rps: float | None
    error_pct: float
    course_p50_ms: float
    course_p95_ms: float
    course_error_pct: float


def course_rows(rows: list[LatencyRow]) -> list[CourseRow]:
    """Load steps whose user count matches one of the course project's n (200, 500)."""
    found = []
    for row in rows:
        if row.phase != "load" or row.users not in COURSE_PROJECT:
            continue
        p50, p95, errors = COURSE_PROJECT[row.users]
        found.append(
            CourseRow(
                target=row.target,
                users=row.users,
                requests=row.requests,
                p50_ms=row.total.p50,
                p95_ms=row.total.p95,
                throughput_rps=row.throughput_rps,
                error_pct=row.error_pct,
                course_p50_ms=p50,
                course_p95_ms=p95,
                course_error_pct=errors,
            )
        )
    return found


@dataclass(frozen=True, kw_only=True)
class SpeedupRow:
    """How much faster one pool is than another for the same model (warm medians)."""

    model: str
    faster: str
    slower: str
    prediction: float
    """Slower ÷ faster median prediction time."""
    total: float
    """Slower ÷ faster median total latency."""
    published: str
    """The published pair and its speed-ups when our pools stand for the same instances, else empty."""


def speedup_rows(rows: list[LatencyRow]) -> list[SpeedupRow]:
    """Speed-ups between every two pools serving the same model, from the sequential warm phase."""
    found = []
    warm = [r for r in _comparable(rows) if r.phase == "warm"]
    for a, b in combinations(warm, 2):
        if a.model != b.model or a.target == b.target:
            continue
        pa, pb, ta, tb = a.prediction.p50, b.prediction.p50, a.total.p50, b.total.p50
        if not (pa and pb and ta and tb):
            continue
        fast, slow = (a, b) if pa <= pb else (b, a)
        key = (fast.instance_type.removeprefix("ml."), slow.instance_type.removeprefix("ml."))
        family = "vgg19" if "vgg" in a.model.lower() else "mobilenet"
        published = ""
        for pair in (key, key[::-1]):
            ref = SPEEDUPS.get(pair, {}).get(family)
            if ref is not None:
                full = f"{ref[1]:.2f}×" if ref[1] else "–"
                published = f"{pair[0]} faster than {pair[1]}: {ref[0]:.2f}× / {full}"
        found.append(
            SpeedupRow(
                model=a.model,
                faster=fast.pool,
                slower=slow.pool,
                prediction=(slow.prediction.p50 or 0) / (fast.prediction.p50 or 1),
                total=(slow.total.p50 or 0) / (fast.total.p50 or 1),
                published=published,
            )
        )
    return found


@dataclass(frozen=True, kw_only=True)
class CostRow:
    """Cost per inference of one target in one phase at one load."""

    target: str
    phase: str
    users: int
    priced_as: str
    per_second: float
    usd_sequential: float
    """Price per second × median latency."""
    usd_at_throughput: float | None
    """Price per hour ÷ measured throughput (instances under load only)."""


def cost_rows(run: RunData, rows: list[LatencyRow], prices: PriceTable) -> list[CostRow]:
    """Cost per inference from the price table, for every row it can price."""
    found = []
    for row in rows:
        cost = prices.cost_per_inference(
            instance_type=row.instance_type,
            pool=row.pool,
            memory_profile=row.memory_profile,
            p50_ms=row.total.p50,
            throughput_rps=row.throughput_rps,
            users=row.users,
        )
        if cost is None:
            continue
        priced_as = cost.price.priced_as
        if run.emulated and "stand-in" not in priced_as:
            priced_as += " (stand-in)"
        found.append(
            CostRow(
                target=row.target,
                phase=row.phase,
                users=row.users,
                priced_as=priced_as,
                per_second=cost.price.per_second,
                usd_sequential=cost.usd_sequential,
                usd_at_throughput=cost.usd_at_throughput,
            )
        )
    return found


@dataclass(frozen=True, kw_only=True)
class WarmColdRow:
    """Warm vs cold median client latency of one target."""

    target: str
    cold_requests: int
    warm_p50_ms: float | None
    cold_p50_ms: float | None

    @property
    def ratio(self) -> float | None:
        """Cold ÷ warm."""
        return _ratio(self.cold_p50_ms, self.warm_p50_ms)


def warm_cold_rows(run: RunData) -> list[WarmColdRow]:
    """One row per target that had cold requests."""
    found = []
    for target in dict.fromkeys(g.target for g in run.summary.groups):
        cold = run.summary.group(target, "cold")
        if cold is None:
            continue
        warm = run.summary.group(target, "warm")
        found.append(
            WarmColdRow(
                target=target,
                cold_requests=cold.requests,
                warm_p50_ms=warm.client_ms.p50 if warm else None,
                cold_p50_ms=cold.client_ms.p50,
            )
        )
    return found


@dataclass(frozen=True, kw_only=True)
class ColdBreakdown:
    """Where each cold start's time went: the keys found in any entry, and the entries."""

    keys: tuple[str, ...]
    entries: tuple[dict[str, Any], ...]


def cold_breakdown(run: RunData) -> ColdBreakdown:
    """The cold-start entries of the summary with the union of their measured keys (in first-seen order)."""
    keys: list[str] = []
    for entry in run.summary.cold_start:
        keys.extend(k for k in entry if k not in keys and k not in {"target", "kind", "error"})
    return ColdBreakdown(keys=tuple(keys), entries=tuple(run.summary.cold_start))


@dataclass(frozen=True, kw_only=True)
class AnatomyRow:
    """Where the mean client latency of one target in one phase at one load went."""

    target: str
    pool: str
    phase: str
    users: int
    anatomy: Anatomy


def anatomy_rows(run: RunData) -> list[AnatomyRow]:
    """Anatomy per target and phase (sequential) or per target and load step."""
    found = []
    pools = {g.target: g.pool for g in run.summary.groups}
    for group in run.summary.groups:
        if run.summary.steps and group.phase == "warm":
            continue
        if group.anatomy.requests:
            found.append(
                AnatomyRow(
                    target=group.target, pool=group.pool, phase=group.phase, users=1, anatomy=group.anatomy
                )
            )
    for step in run.summary.steps:
        if step.anatomy.requests:
            found.append(
                AnatomyRow(
                    target=step.target,
                    pool=pools.get(step.target, step.pool),
                    phase="load",
                    users=step.users,
                    anatomy=step.anatomy,
                )
            )
    return found


def bucket_bounds(value_s: float, buckets: tuple[float, ...] | list[float] = BUCKETS) -> tuple[float, float]:
    """The lower and upper bound (seconds) of the histogram bucket that holds ``value_s``."""
    lower = 0.0
    for upper in buckets:
        if value_s <= upper:
            return lower, upper
        lower = upper
    return lower, float("inf")


def histogram_quantile(q: float, values_s: list[float], buckets: tuple[float, ...] | list[float]) -> float:
    """What PromQL's ``histogram_quantile(q, …)`` answers for these observations in these buckets.

    Prometheus 2.42 (Debian's), ``promql/quantile.go`` ``bucketQuantile`` (lines 76-120): rank ``q × count``,
    the first bucket whose cumulative count reaches it, linear interpolation inside that bucket from its lower
    bound (0 for the first), and the highest finite bound when the rank falls in ``+Inf``.
    """
    if not values_s:
        raise ValueError("Expected at least one observation, got none.")
    bounds = sorted(buckets)
    rank = q * len(values_s)
    below, lower = 0, 0.0
    for upper in bounds:
        cumulative = sum(1 for v in values_s if v <= upper)
        if cumulative >= rank and cumulative > below:
            return lower + (upper - lower) * (rank - below) / (cumulative - below)
        below, lower = cumulative, upper
    return bounds[-1]


@dataclass(frozen=True, kw_only=True)
class PrometheusCheck:
    """One Prometheus quantile beside the same quantile of the CSV.

    ``csv_ms`` is the CSV's own quantile; ``csv_histogram_ms`` is what ``histogram_quantile`` answers for
    the CSV's values in the metric's buckets. They agree when Prometheus is within one bucket of the latter:
    the same requests landed in the same buckets (a value on a bucket's edge may move one bucket).
    """

    source: str
    pool: str
    model: str
    quantile: str
    csv_ms: float
    csv_histogram_ms: float
    prometheus_ms: float
    tolerance_ms: float
    agree: bool
    query: str
    requests: int


#: (prometheus.json key, CSV column, label in the table, whether discarded requests count, whether the
#: histogram starts again when a cold start restarts the predictor)
_PROMETHEUS_SOURCES = (
    ("request_seconds", "client_ms", "lab exporter: client latency", False, False),
    ("predictor_batch_seconds", "server_prediction_ms", "predictor: prediction time", True, True),
)


def _last_life(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target's rows from its last cold request on: what a restarted predictor's histogram holds."""
    last_cold: dict[str, float] = {}
    for r in rows:
        if r["phase"] == "cold":
            last_cold[r["target"]] = max(r["timestamp"], last_cold.get(r["target"], r["timestamp"]))
    return [r for r in rows if r["timestamp"] >= last_cold.get(r["target"], float("-inf"))]


def prometheus_checks(run: RunData) -> list[PrometheusCheck]:
    """Prometheus quantiles (from its HTTP API) beside the CSV's, over the same requests.

    The lab exporter lives as long as the campaign and sees every request. A predictor's own histogram
    starts again when a cold start restarts it; a local Prometheus (cumulative buckets, no ``increase()``)
    then holds only its last life, so the CSV side keeps the same requests.
    """
    checks = []
    prom = run.prometheus or {}
    for key, column, source, with_discarded, restarts in _PROMETHEUS_SOURCES:
        rows = _last_life(run.rows) if restarts and prom.get("local") else run.rows
        for entry in prom.get(key) or []:
            values = [
                r[column]
                for r in rows
                if r["pool"] == entry["pool"]
                and r["model"] == entry["model"]
                and (with_discarded or r["phase"] != "discarded")
                and not failed(r)
                and r[column] is not None
            ]
            if not values:
                continue
            csv_stats = LatencyStats.of(values)
            seconds = [v / 1000.0 for v in values]
            buckets = entry.get("buckets") or BUCKETS
            for q in ("p50", "p95"):
                ours, theirs = getattr(csv_stats, q), entry.get(f"{q}_ms")
                if ours is None or theirs is None:
                    continue
                expected = 1000.0 * histogram_quantile(int(q[1:]) / 100, seconds, buckets)
                lower, upper = bucket_bounds(expected / 1000.0, buckets)
                tolerance_ms = (upper - lower) * 1000.0
                checks.append(
                    PrometheusCheck(
                        source=source,
                        pool=entry["pool"],
                        model=entry["model"],
                        quantile=q,
                        csv_ms=ours,
                        csv_histogram_ms=round(expected, 3),
                        prometheus_ms=theirs,
                        tolerance_ms=round(tolerance_ms, 3),
                        agree=abs(theirs - expected) <= tolerance_ms,
                        query=entry["queries"][q],
                        requests=len(values),
                    )
                )
    return checks


@dataclass(frozen=True, kw_only=True)
class ColdPublishedRow:
    """Our cold starts (median over a target's cold requests) beside the published serverless figures."""

    target: str
    model: str
    memory_profile: str | None
    cold_requests: int
    setup_s: float | None
    """Container start → ready (ours); the published ModelSetupTime is provisioning before serving."""
    total_s: float | None
    """Client latency of the cold request (no image pull: the image is cached locally)."""
    pull_estimate_s: float | None
    total_with_pull_s: float | None
    published_setup_s: float | None
    published_cold_full_s: float | None

    @property
    def ratio(self) -> float | None:
        """Ours (with the pull estimate, else without) ÷ the published cold full latency."""
        ours = self.total_with_pull_s if self.total_with_pull_s is not None else self.total_s
        return _ratio(ours, self.published_cold_full_s)


def _median(values: list[float | None]) -> float | None:
    data = [v for v in values if v is not None]
    return round(percentiles(data, (50,))[0], 3) if data else None


def cold_published_rows(run: RunData) -> list[ColdPublishedRow]:
    """One row per target with container cold starts (docker runtime): ours beside the published ones."""
    by_target: dict[str, list[dict[str, Any]]] = {}
    for entry in run.summary.cold_start:
        if "container_start_s" in entry:
            by_target.setdefault(entry["target"], []).append(entry)
    targets = {t.name: t for t in run.summary.targets}
    rows = []
    for name, entries in by_target.items():
        target = targets.get(name)
        model = target.model if target is not None else name.split("@", 1)[0]
        profile = target.memory_profile if target is not None else None
        published = published_cold(model, profile)

        def setup(entry: dict[str, Any]) -> float | None:
            parts = [entry.get(k) for k in ("container_start_s", "process_start_to_ready_s")]
            return None if None in parts else sum(parts)

        rows.append(
            ColdPublishedRow(
                target=name,
                model=model,
                memory_profile=profile,
                cold_requests=len(entries),
                setup_s=_median([setup(e) for e in entries]),
                total_s=_median([e.get("total_s") for e in entries]),
                pull_estimate_s=_median([e.get("image_pull_estimate_s") for e in entries]),
                total_with_pull_s=_median([e.get("total_with_pull_estimate_s") for e in entries]),
                published_setup_s=published.get("setup_s"),
                published_cold_full_s=published.get("cold_full_s"),
            )
        )
    return rows


@dataclass(frozen=True, kw_only=True)
class Analysis:
    """Every number the report shows, computed once."""

    latency: list[LatencyRow]
    published: list[PublishedRow]
    course: list[CourseRow]
    speedups: list[SpeedupRow]
    costs: list[CostRow]
    warm_cold: list[WarmColdRow]
    cold_breakdown: ColdBreakdown
    anatomy: list[AnatomyRow]
    prometheus: list[PrometheusCheck]
    cold_published: list[ColdPublishedRow] = field(default_factory=list)
    containers: list[dict[str, Any]] = field(default_factory=list)
    """Docker runtime: each container's limits, memory, CPU and fate (``RunSummary.containers``)."""


def analyse(run: RunData, prices: PriceTable) -> Analysis:
    """All of the report's numbers for ``run``."""
    latency = latency_rows(run)
    return Analysis(
        latency=latency,
        published=published_rows(latency),
        course=course_rows(latency),
        speedups=speedup_rows(latency),
        costs=cost_rows(run, latency, prices),
        warm_cold=warm_cold_rows(run),
        cold_breakdown=cold_breakdown(run),
        anatomy=anatomy_rows(run),
        prometheus=prometheus_checks(run),
        cold_published=cold_published_rows(run),
        containers=list(run.summary.containers),
    )
