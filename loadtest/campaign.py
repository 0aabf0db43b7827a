"""One campaign run: the run folder, the Locust environment with the lab's listeners, and the end-of-run
outputs.

Locust runs as a library (an ``Environment``, a local runner, a scheduled quit), as in locust's
``examples/use_as_lib.py``. This module needs gevent's monkey-patching, which ``loadtest.run`` applies before
anything else is imported; ``dr-serving lab run`` therefore executes campaigns in a child process.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gevent
from locust import LoadTestShape
from locust.env import Environment
from locust.runners import STATE_CLEANUP, STATE_RUNNING, STATE_STOPPED, Runner
from locust.stats import PERCENTILES_TO_REPORT, RequestStats, StatsCSV
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from loadtest.containers import ContainerFleet
from loadtest.distributed import STOP_TIMEOUT_S, DistributedRun, GeneratorMonitor, LocalWorkers
from loadtest.emulation import LocalFleet
from loadtest.exporter import LabExporter
from loadtest.images import ImageSource
from loadtest.prometheus_local import LocalPrometheus, PrometheusError, run_quantiles, run_window
from loadtest.recorder import RequestRecorder
from loadtest.spec import GeneratorSpec
from loadtest.summary import RunSummary, group_stats, read_requests, step_stats
from loadtest.targets import Target
from loadtest.users import LoadUser, TargetUser, user_class_for

__all__ = ["Campaign", "make_run_dir"]

console = Console(stderr=True)


class _DeadGreenletNoise(logging.Filter):
    """Drops Locust's harmless "user that didn't have proper args" lines, logged per user a shape stops."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "didn't have proper args" not in record.getMessage()


logging.getLogger("locust.runners").addFilter(_DeadGreenletNoise())


def make_run_dir(out: str | Path, scenario: str) -> Path:
    """Create ``<out>/<UTC timestamp>-<scenario>/`` (a suffix keeps two runs in the same second apart)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = Path(out) / f"{stamp}-{scenario}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


@dataclass(kw_only=True)
class Campaign:
    """Everything one scenario run needs: targets, images, the run folder and the lab's listeners."""

    scenario: str
    targets: list[Target]
    images: ImageSource
    run_dir: Path
    environment_label: str
    protocol: str = "v1"
    seed: int = 0
    fleet: LocalFleet | ContainerFleet | None = None
    """The local predictors (processes or containers); ``None`` against a cluster or a URL."""
    prometheus: LocalPrometheus | None = None
    prometheus_url: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    cold_start: list[dict[str, Any]] = field(default_factory=list)
    """Per cold request, where its time went (the cold-start scenario fills it)."""
    quiet: bool = False
    workers: int = 0
    """Locust workers (0: this process runs the users; see ``loadtest.distributed``)."""
    generator_spec: GeneratorSpec = field(default_factory=GeneratorSpec)
    image_spec: dict[str, Any] = field(default_factory=dict)
    """How workers rebuild ``images`` (``folder``, ``count``, ``size``, ``seed``)."""

    def __post_init__(self) -> None:
        self.recorder = RequestRecorder(self.run_dir / "requests.csv")
        self.exporter = LabExporter()
        # The base environment takes the requests scenarios time themselves (cold starts); each Locust run
        # gets an environment of its own (a runner cannot be created twice), and the listeners attach to all.
        self.environment = Environment()
        self.environment.events.request.add_listener(self._log_stats)
        self.environments = [self.environment]
        self.recorder.register(self.environment)
        self.exporter.register(self.environment)
        self.started = time.time()
        self.finished: float | None = None
        self.user_specs: dict[str, dict[str, Any]] = {}
        if self.workers:
            kind = "cluster-workers" if self.generator_spec.external else "local-workers"
        else:
            kind = "local-process"
        self.generator = GeneratorMonitor(kind=kind, workers=self.workers, pool=self.generator_spec.pool)

    def say(self, message: str) -> None:
        """Print one progress line (to stderr), unless quiet."""
        if not self.quiet:
            console.print(message, highlight=False)

    def progress(self) -> Progress:
        """A rich progress display for long steps (disabled when quiet)."""
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f}"),
            TimeElapsedColumn(),
            console=console,
            disable=self.quiet,
            transient=False,
        )

    def user_for(
        self, base: type[TargetUser], target: Target, index: int, **attributes: Any
    ) -> type[TargetUser]:
        """``base`` bound to ``target``, with this campaign's images, protocol and scenario label."""
        cls = user_class_for(
            base,
            target,
            index,
            images=self.images,
            protocol=self.protocol,
            scenario=self.scenario,
            **attributes,
        )
        # What a distributed worker needs to build the same class (``loadtest.worker.user_classes_from``).
        self.user_specs[cls.__name__] = {
            "name": cls.__name__,
            "base": base.__name__,
            "target": target.to_dict(),
            "index": index,
            "protocol": self.protocol,
            "scenario": self.scenario,
            "attributes": attributes,
        }
        return cls

    def run_shape(
        self, target: Target, index: int, shape: LoadTestShape, *, pause: float, message: str
    ) -> None:
        """Drive one target with load users following ``shape`` (a ``duration`` in seconds) until it ends."""
        self.say(message)
        user = self.user_for(LoadUser, target, index, pause=pause)
        self.run_users([user], shape=shape, max_seconds=shape.duration + 120.0)

    def run_users(
        self,
        user_classes: list[type[TargetUser]],
        *,
        shape: LoadTestShape | None = None,
        users: int | None = None,
        expected_requests: int | None = None,
        max_seconds: float,
    ) -> float:
        """Run Locust until the shape ends, every user stopped, or ``max_seconds``; returns seconds run."""
        stop_timeout = STOP_TIMEOUT_S if self.workers else 60.0
        env = Environment(user_classes=user_classes, shape_class=shape, stop_timeout=stop_timeout)
        self.environments.append(env)
        distributed = self._distributed(env, user_classes) if self.workers else None
        if distributed is not None:
            runner: Runner = distributed.runner
        else:
            self.recorder.register(env)
            self.exporter.register(env)
            runner = env.create_local_runner()
        start = time.monotonic()
        if shape is not None:
            shape.runner = runner
            runner.start_shape()
            total = getattr(shape, "duration", max_seconds)
            unit = "s"
        else:
            runner.start(users or len(user_classes), spawn_rate=max(1.0, float(users or len(user_classes))))
            total = expected_requests or max_seconds
            unit = "requests"
        with self.progress() as progress:
            task = progress.add_task(f"{self.scenario} ({unit})", total=total)
            while time.monotonic() - start < max_seconds:
                gevent.sleep(0.25)
                self.generator.sample(runner)
                if distributed is not None:
                    distributed.sample()
                if shape is not None:
                    progress.update(task, completed=min(total, time.monotonic() - start))
                else:
                    progress.update(task, completed=min(total, self.recorder.rows))
                # A shape stops the runner itself; quit only once its users are stopped (not while stopping).
                if runner.state in (STATE_STOPPED, STATE_CLEANUP):
                    break
                # Sequential users stop themselves; the run is over once spawning finished and none is left.
                if shape is None and runner.state == STATE_RUNNING and runner.user_count == 0:
                    break
            else:
                self.say(f"[yellow]Stopping: the campaign reached its limit of {max_seconds:.0f} s.")
        if distributed is not None:
            try:
                # Stop users still running (time limit); users that stopped by themselves need no stop.
                if runner.state not in (STATE_STOPPED, STATE_CLEANUP) and runner.user_count > 0:
                    runner.stop()
                distributed.drain()
            finally:
                distributed.close()
            return time.monotonic() - start
        runner.quit()
        runner.greenlet.join(timeout=30)
        return time.monotonic() - start

    def _distributed(self, env: Environment, user_classes: list[type[TargetUser]]) -> DistributedRun:
        """A master runner for ``env`` with its workers connected and given the user classes."""
        spec = self.generator_spec
        run = DistributedRun(
            env,
            workers=self.workers,
            users=[self.user_specs[cls.__name__] for cls in user_classes],
            images=self.image_spec,
            recorder=self.recorder,
            exporter=self.exporter,
            bind=spec.bind,
            port=spec.port,
            monitor=self.generator,
        )
        if not spec.external:
            run.local_workers = LocalWorkers(
                self.workers,
                master=f"127.0.0.1:{run.port}",
                log_dir=self.run_dir,
                tag=f"{len(self.environments) - 1}-",
            )
            run.local_workers.start()
        self.say(f"locust master on {spec.bind}:{run.port}: waiting for {self.workers} workers")
        try:
            run.wait_for_workers(timeout=60.0 if not spec.external else 600.0)
        except BaseException:
            run.close()
            raise
        return run

    def _log_stats(
        self,
        *,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        exception: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        """Keep Locust's own statistics for requests sent without a runner (which otherwise logs them)."""
        self.environment.stats.log_request(request_type, name, response_time, response_length)
        if exception is not None:
            self.environment.stats.log_error(request_type, name, exception)

    def _write_locust_stats(self) -> None:
        """Write ``locust_stats.csv`` etc. over every environment of the campaign (Locust's own columns)."""
        combined = RequestStats()
        for env in self.environments:
            for entry in env.stats.entries.values():
                combined.get(entry.name, entry.method).extend(entry)
            combined.total.extend(env.stats.total)
            combined.errors.update(env.stats.errors)
        runner = next((env.runner for env in reversed(self.environments) if env.runner is not None), None)
        writer = StatsCSV(SimpleNamespace(stats=combined, runner=runner), PERCENTILES_TO_REPORT)

        for suffix, method in (
            ("stats", writer.requests_csv),
            ("failures", writer.failures_csv),
            ("exceptions", writer.exceptions_csv),
        ):
            with (self.run_dir / f"locust_{suffix}.csv").open("w", newline="", encoding="utf-8") as handle:
                method(csv.writer(handle))

    def query_prometheus(self) -> dict[str, Any] | None:
        """Read per-(pool, model) quantiles from Prometheus after its last scrape; ``None`` without one."""
        url = self.prometheus.url if self.prometheus is not None else self.prometheus_url
        if url is None:
            return None
        end = time.time()
        try:
            if self.prometheus is not None:
                self.prometheus.wait_for_scrape(after=end)
                at, window = time.time(), None
            else:
                at, window = run_window(self.started, end, now=time.time())
            result = run_quantiles(
                url, scenario=self.scenario, at=at, window_s=window, local=self.prometheus is not None
            )
        except PrometheusError as exc:
            result = {"url": url, "local": self.prometheus is not None, "at": end, "error": str(exc)}
            self.say(f"[yellow]Prometheus: {exc}")
        (self.run_dir / "prometheus.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        return result

    def finish(self) -> RunSummary:
        """Query Prometheus, close the listeners and write ``summary.json`` (the run's statistics, once)."""
        prometheus = self.query_prometheus()
        self._write_locust_stats()
        self.environment.events.quitting.fire(environment=self.environment, reverse=True)
        self.finished = time.time()
        self.settings["generator"] = self.generator.as_dict()
        if self.generator.saturated:
            self.say(
                "[yellow]The load generator itself was saturated (CPU at Locust's 90 % threshold): latencies "
                "include client-side queueing; add --workers."
            )
        rows = read_requests(self.run_dir / "requests.csv")
        containers: tuple[dict[str, Any], ...] = ()
        if isinstance(self.fleet, ContainerFleet):
            containers = tuple(self.fleet.report())
            for item in containers:
                if item["oom_killed"]:
                    self.say(
                        f"[red]{item['target']}: OOM-killed at --memory {item['memory_profile']} "
                        f"(exit code {item['exit_code']}): a failed target."
                    )
        summary = RunSummary(
            scenario=self.scenario,
            environment=self.environment_label,
            started=datetime.fromtimestamp(self.started, UTC).isoformat(timespec="seconds"),
            finished=datetime.fromtimestamp(self.finished, UTC).isoformat(timespec="seconds"),
            duration_s=round(self.finished - self.started, 3),
            started_unix=round(self.started, 3),
            finished_unix=round(self.finished, 3),
            protocol=self.protocol,
            images=self.images.description,
            settings=self.settings,
            targets=tuple(self.targets),
            requests=len(rows),
            groups=tuple(group_stats(rows, self.targets)),
            steps=tuple(step_stats(rows)) if self.scenario in {"ramp", "shape"} else (),
            cold_start=tuple(self.cold_start),
            prometheus=prometheus,
            containers=containers,
        )
        summary.write(self.run_dir / "summary.json")
        return summary


def timed(say: Callable[[str], None], label: str) -> Callable[[], float]:
    """Start a stopwatch; calling the result prints ``label`` with the elapsed seconds and returns them."""
    start = time.monotonic()

    def stop() -> float:
        seconds = time.monotonic() - start
        say(f"{label} in {seconds:.1f} s")
        return seconds

    return stop
