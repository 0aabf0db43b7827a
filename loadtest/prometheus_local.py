"""The real Prometheus server on 127.0.0.1 for runs without a cluster, and the queries the lab sends to any
Prometheus.

``LocalPrometheus`` starts Debian's ``prometheus`` binary with a generated scrape config (1 s interval) that
scrapes the lab exporter and every local predictor's ``/metrics`` (target labels pool, arch, model, mode,
instance_type), in a temporary storage folder, and stops it afterwards.

Query choice: the lab exporter's registry lives exactly as long as one campaign, so at the end of a run its
cumulative ``_bucket`` counters hold the whole campaign. The lab therefore asks for an *instant* quantile over
the raw buckets (``histogram_quantile(q, sum by (le, pool, model) (drlab_request_seconds_bucket{...}))``) once
Prometheus has scraped after the last request. A ``rate()``/``increase()`` window would need two samples of
every series and lose the requests made before a series' first scrape, which matters for campaigns of a few
seconds. For a long-lived Prometheus (a cluster's), ``increase(...[window])`` over the campaign is used
instead.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from serving.launcher import free_port

__all__ = [
    "WINDOW_MARGIN_S",
    "LocalPrometheus",
    "PrometheusError",
    "ScrapeTarget",
    "instant_query",
    "quantile_query",
    "query_quantiles",
    "run_quantiles",
    "run_window",
]

#: Seconds an ``increase()`` window on a long-lived Prometheus reaches back before the run.
WINDOW_MARGIN_S = 30.0


class PrometheusError(RuntimeError):
    """Prometheus could not be started, scraped or queried."""


@dataclass(frozen=True, kw_only=True)
class ScrapeTarget:
    """One HTTP endpoint to scrape (``host:port``) with the labels to attach to its series."""

    job: str
    address: str
    labels: dict[str, str] = field(default_factory=dict)
    path: str = "/metrics"


def _parse_time(text: str) -> float:
    # Prometheus writes RFC 3339 with nanoseconds; Python parses at most microseconds.
    head, _, rest = text.partition(".")
    if rest:
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class LocalPrometheus:
    """A Prometheus server from the ``prometheus`` binary on 127.0.0.1, with a temporary storage folder."""

    def __init__(
        self,
        targets: list[ScrapeTarget],
        *,
        scrape_interval: float = 1.0,
        binary: str = "prometheus",
        log_path: str | Path | None = None,
    ) -> None:
        if not targets:
            raise ValueError("LocalPrometheus needs at least one scrape target.")
        self.targets = targets
        self.scrape_interval = scrape_interval
        self.binary = binary
        self.log_path = Path(log_path) if log_path else None
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._work_dir: Path | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        if self.port is None:
            raise PrometheusError("Prometheus is not running; call start() first.")
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        """The generated scrape configuration."""
        interval = f"{max(1, round(self.scrape_interval * 1000))}ms"
        jobs: dict[str, list[dict[str, Any]]] = {}
        for target in self.targets:
            jobs.setdefault(target.job, []).append(
                {"targets": [target.address], "labels": dict(target.labels)}
            )
        paths = {t.job: t.path for t in self.targets}
        return {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "evaluation_interval": interval,
            },
            "scrape_configs": [
                {"job_name": job, "metrics_path": paths[job], "honor_labels": True, "static_configs": configs}
                for job, configs in jobs.items()
            ],
        }

    def start(self, *, timeout: float = 30.0) -> str:
        """Start the server and wait until it is ready; returns its URL."""
        binary = shutil.which(self.binary) or shutil.which(self.binary, path="/usr/bin:/usr/sbin")
        if binary is None:
            raise PrometheusError(
                f"The {self.binary!r} binary is not on PATH; install Debian's package with "
                "'sudo apt-get install prometheus' (or run 'make system-deps')."
            )
        self._work_dir = Path(tempfile.mkdtemp(prefix="drlab-prometheus-"))
        config_path = self._work_dir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False), encoding="utf-8")
        self.port = free_port()
        log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self._process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={self._work_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.stop()
                raise PrometheusError(
                    f"Prometheus exited with code {self._process.returncode} during start-up."
                )
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise PrometheusError(f"Prometheus was not ready within {timeout:.0f} s.")

    def target_health(self) -> list[dict[str, Any]]:
        """The active targets as Prometheus reports them (health, lastScrape, labels)."""
        answer = httpx.get(f"{self.url}/api/v1/targets", params={"state": "active"}, timeout=5.0).json()
        return list(answer["data"]["activeTargets"])

    def wait_for_scrape(self, *, after: float, timeout: float = 30.0) -> None:
        """Wait until every target has been scraped successfully after Unix time ``after``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.target_health()
            if len(health) == len(self.targets) and all(
                t["health"] == "up" and _parse_time(t["lastScrape"]) > after for t in health
            ):
                return
            time.sleep(self.scrape_interval / 4)
        down = [
            f"{t['scrapeUrl']} ({t['health']}: {t.get('lastError') or 'not scraped yet'})" for t in health
        ]
        raise PrometheusError(f"Prometheus did not scrape every target within {timeout:.0f} s: {down}.")

    def stop(self) -> None:
        """Stop the server and remove its storage folder; safe to call twice."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        self._process = None
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    def __enter__(self) -> LocalPrometheus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self.port else "stopped"
        return f"LocalPrometheus({where}, {len(self.targets)} targets)"


def quantile_query(
    quantile: float,
    *,
    metric: str,
    matchers: str = "",
    window_s: float | None = None,
    by: str = "le, pool, model",
) -> str:
    """The PromQL for one quantile: over the raw buckets (``window_s`` None) or their ``increase``."""
    series = f"{metric}_bucket{{{matchers}}}"
    if window_s is not None:
        series = f"increase({series}[{max(1, round(window_s))}s])"
    return f"histogram_quantile({quantile}, sum by ({by}) ({series}))"


def query_quantiles(
    url: str,
    *,
    metric: str,
    matchers: str = "",
    quantiles: tuple[float, ...] = (0.5, 0.95),
    window_s: float | None = None,
    at: float | None = None,
) -> list[dict[str, Any]]:
    """Ask Prometheus at ``url`` for per-(pool, model) quantiles of ``metric``; values in milliseconds."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    queries = {}
    for q in quantiles:
        expr = quantile_query(q, metric=metric, matchers=matchers, window_s=window_s)
        queries[q] = expr
        for item in instant_query(url, expr, at=at):
            labels = item["metric"]
            key = (labels.get("pool", ""), labels.get("model", ""))
            row = rows.setdefault(key, {"pool": key[0], "model": key[1], "metric": metric})
            value = float(item["value"][1])
            row[f"p{round(q * 100)}_ms"] = None if value != value else round(value * 1000.0, 3)
    buckets = _bucket_bounds(url, metric=metric, matchers=matchers, at=at)
    return [
        {**row, "queries": {f"p{round(q * 100)}": e for q, e in queries.items()}, "buckets": buckets}
        for row in rows.values()
    ]


def instant_query(url: str, expr: str, *, at: float | None = None) -> list[dict[str, Any]]:
    """The result vector of one PromQL instant query to Prometheus at ``url`` (at Unix time ``at``)."""
    params: dict[str, Any] = {"query": expr}
    if at is not None:
        params["time"] = f"{at:.3f}"
    try:
        answer = httpx.get(f"{url.rstrip('/')}/api/v1/query", params=params, timeout=10.0).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise PrometheusError(f"Prometheus at {url!r} did not answer the query {expr!r}: {exc}.") from exc
    if answer.get("status") != "success":
        raise PrometheusError(f"Prometheus rejected the query {expr!r}: {answer.get('error')!r}.")
    return list(answer["data"]["result"])


def run_window(started: float, finished: float, *, now: float) -> tuple[float, float]:
    """``(at, window_s)`` for a long-lived Prometheus: evaluate after the scrape that follows the run (at
    most a minute later), over a window that starts with the scrape before it."""
    at = min(now, finished + 60.0)
    return at, at - started + WINDOW_MARGIN_S


def run_quantiles(
    url: str, *, scenario: str, at: float, window_s: float | None, local: bool
) -> dict[str, Any]:
    """One run's quantiles (``prometheus.json``): client latency and server prediction time as the lab
    exporter saw them, and the predictors' own batch time. ``window_s`` None = the cumulative buckets of a
    Prometheus that lived exactly as long as the run."""
    if window_s is None:
        method = "instant query over the campaign's cumulative buckets"
    else:
        method = f"instant query of increase() over the run's window ({window_s:.0f} s)"
    result: dict[str, Any] = {"url": url, "local": local, "at": at, "method": method}
    result["request_seconds"] = query_quantiles(
        url,
        metric="drlab_request_seconds",
        matchers=f'scenario="{scenario}",outcome="success"',
        window_s=window_s,
        at=at,
    )
    result["server_prediction_seconds"] = query_quantiles(
        url,
        metric="drlab_server_prediction_seconds",
        matchers=f'scenario="{scenario}"',
        window_s=window_s,
        at=at,
    )
    result["predictor_batch_seconds"] = query_quantiles(
        url, metric="dr_inference_batch_seconds", window_s=window_s, at=at
    )
    return result


def _bucket_bounds(url: str, *, metric: str, matchers: str, at: float | None) -> list[float]:
    """The finite ``le`` bounds (seconds) of ``metric`` as Prometheus holds them."""
    params: dict[str, Any] = {"query": f"group by (le) ({metric}_bucket{{{matchers}}})"}
    if at is not None:
        params["time"] = f"{at:.3f}"
    try:
        answer = httpx.get(f"{url.rstrip('/')}/api/v1/query", params=params, timeout=10.0).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise PrometheusError(
            f"Prometheus at {url!r} did not list the buckets of {metric!r}: {exc}."
        ) from exc
    bounds = {float(item["metric"]["le"]) for item in answer.get("data", {}).get("result", [])}
    return sorted(b for b in bounds if b != float("inf"))
