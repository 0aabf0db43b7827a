"""The master side of a distributed campaign (``--workers N``), and the load generator's own health.

Locust's ``MasterRunner`` (``Environment.create_master_runner``) drives N ``loadtest.worker`` processes it
starts on 127.0.0.1 (or, in the cluster, worker pods that connect to it). The same user classes, shapes and
scenarios run unchanged: the master owns the shape and the user counts, the workers own the users.

Why the rows travel through Locust's worker reports rather than one CSV per worker merged at the end: the
master already receives every worker's statistics on that channel every few seconds, so the campaign's one
``requests.csv``, the Prometheus exporter (scraped live) and the progress display see requests as they
happen, a worker pod needs no volume, and nothing has to be copied back from the workers before the report.
A worker's ``users`` column holds its own share of the users; the master rewrites it with the campaign's total
at the request's time (``active_users`` likewise), so step statistics read the same as in one process.

``GeneratorMonitor`` follows the CPU Locust itself measures (``Runner.current_cpu_usage`` for the master or
single process, the workers' heartbeats for each worker) and Locust's own CPU warnings; the run's
``settings["generator"]`` keeps where the load came from and whether its generator was saturated.
"""

from __future__ import annotations

import bisect
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gevent
import psutil
from locust.rpc import Message
from locust.runners import CPU_WARNING_THRESHOLD, MasterRunner, Runner

if TYPE_CHECKING:
    from locust.env import Environment

    from loadtest.exporter import LabExporter
    from loadtest.recorder import RequestRecorder

__all__ = ["STOP_TIMEOUT_S", "DistributedRun", "GeneratorMonitor", "LocalWorkers", "WorkerError"]

#: Seconds a worker's users get to finish their request when a run stops. A Locust worker also waits this long
#: after a stop before it reads its next message (locust/runners.py, WorkerRunner.worker, "stop"), so it stays
#: short: a request still running after it is dropped from the run.
STOP_TIMEOUT_S = 5.0


class WorkerError(RuntimeError):
    """The workers did not connect or did not report their last rows in time."""


class LocalWorkers:
    """N ``python -m loadtest.worker`` processes on 127.0.0.1, each logging to ``worker-<i>.log``."""

    def __init__(self, count: int, *, master: str, log_dir: Path, tag: str = "") -> None:
        self.count = count
        self.master = master
        self.log_dir = log_dir
        self.tag = tag
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        """Start the worker processes (they connect to the master by themselves)."""
        for index in range(1, self.count + 1):
            log = (self.log_dir / f"worker-{self.tag}{index}.log").open("ab")
            with log:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "loadtest.worker", self.master],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )

    def alive(self) -> int:
        """How many worker processes are still running."""
        return sum(process.poll() is None for process in self.processes)

    def stop(self, *, timeout: float = 10.0) -> None:
        """Wait for the workers to leave after the master's quit; end the ones that linger."""
        deadline = time.monotonic() + timeout
        for process in self.processes:
            while process.poll() is None and time.monotonic() < deadline:
                gevent.sleep(0.1)
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@dataclass
class GeneratorMonitor:
    """The load generator's CPU (as Locust measures it) and Locust's CPU warnings over a campaign."""

    kind: str
    """``local-process``, ``local-workers`` or ``cluster-workers``."""
    workers: int = 0
    pool: str | None = None
    cpu_max: dict[str, float] = field(default_factory=dict)
    """Process (``master``/``process``, ``worker-<i>``) → highest CPU % seen."""
    locust_cpu_warning: bool = False
    _process: psutil.Process = field(default_factory=psutil.Process, repr=False)
    _last: float = 0.0

    def sample(self, runner: Runner) -> None:
        """Read the CPU figures now (call every fraction of a second while a run goes on).

        This process is measured with psutil over at least one second (Locust's own monitor only updates every
        5 s); the workers' figures arrive with their reports (``note``) and heartbeats.
        """
        own = "master" if isinstance(runner, MasterRunner) else "process"
        now = time.monotonic()
        if now - self._last >= 1.0:
            value = self._process.cpu_percent()
            if self._last:
                self._keep(own, value)
            self._last = now
        self._keep(own, float(runner.current_cpu_usage))
        self.locust_cpu_warning |= bool(runner.cpu_warning_emitted)
        if isinstance(runner, MasterRunner):
            self.locust_cpu_warning |= bool(runner.worker_cpu_warning_emitted)
            for client in runner.clients.values():
                self._keep(f"worker-{runner.get_worker_index(client.id)}", float(client.cpu_usage))

    def note(self, name: str, value: float) -> None:
        """Keep one CPU figure a worker measured itself."""
        self._keep(name, value)

    def _keep(self, name: str, value: float) -> None:
        self.cpu_max[name] = max(self.cpu_max.get(name, 0.0), round(value, 1))

    @property
    def saturated(self) -> bool:
        """A generator process reached Locust's CPU warning threshold (90 %), or Locust warned."""
        return self.locust_cpu_warning or any(v >= CPU_WARNING_THRESHOLD for v in self.cpu_max.values())

    def as_dict(self) -> dict[str, Any]:
        """What ``settings["generator"]`` holds."""
        return {
            "kind": self.kind,
            "workers": self.workers,
            "pool": self.pool,
            "cpu_max_percent": dict(sorted(self.cpu_max.items())),
            "cpu_threshold_percent": CPU_WARNING_THRESHOLD,
            "locust_cpu_warning": self.locust_cpu_warning,
            "saturated": self.saturated,
        }


class DistributedRun:
    """One Locust run driven by a master runner: worker start-up, user classes, rows and the end handshake."""

    def __init__(
        self,
        environment: Environment,
        *,
        workers: int,
        users: list[dict[str, Any]],
        images: dict[str, Any],
        recorder: RequestRecorder,
        exporter: LabExporter,
        bind: str = "127.0.0.1",
        port: int = 0,
        local_workers: LocalWorkers | None = None,
        monitor: GeneratorMonitor | None = None,
    ) -> None:
        self.environment = environment
        self.workers = workers
        self.message = {"users": users, "images": images}
        self.recorder = recorder
        self.exporter = exporter
        self.runner: MasterRunner = environment.create_master_runner(bind, port)
        self.port = int(self.runner.server.port)
        self.local_workers = local_workers
        self.monitor = monitor
        self.rows = 0
        self._times: list[float] = []
        self._counts: list[tuple[int, int]] = []
        self._reports: dict[str, tuple[float, int]] = {}
        environment.events.worker_report.add_listener(self._on_report)

    def wait_for_workers(self, *, timeout: float = 60.0) -> None:
        """Wait until ``workers`` workers are ready, then send them the user classes."""
        deadline = time.monotonic() + timeout
        while len(self.runner.clients.ready) < self.workers:
            if self.local_workers is not None and self.local_workers.alive() < self.workers:
                raise WorkerError(
                    "A worker process exited before connecting; see worker-*.log in "
                    f"{self.local_workers.log_dir}."
                )
            if time.monotonic() > deadline:
                raise WorkerError(
                    f"Only {len(self.runner.clients.ready)} of {self.workers} Locust workers connected to "
                    f"the master on port {self.port} within {timeout:.0f} s."
                )
            gevent.sleep(0.1)
        self.runner.send_message("drlab_users", self.message)

    def sample(self) -> None:
        """Note the campaign's target and running user counts now (the rows' ``users`` come from here)."""
        counts = (int(self.runner.target_user_count or 0), int(self.runner.user_count))
        if not self._counts or self._counts[-1] != counts:
            self._times.append(time.time())
            self._counts.append(counts)

    def users_at(self, timestamp: float) -> tuple[int, int]:
        """The (target, running) user counts the master knew at ``timestamp``."""
        at = bisect.bisect_right(self._times, timestamp) - 1
        return self._counts[max(at, 0)] if self._counts else (1, 1)

    def _on_report(self, client_id: str, data: dict[str, Any], **kwargs: Any) -> None:
        for row in data.get("drlab_rows") or ():
            target, running = self.users_at(float(row["timestamp"]))
            spawned = int(row["active_users"]) >= int(row["users"])
            row["users"] = max(target, 1)
            row["active_users"] = row["users"] if spawned else max(1, min(running, row["users"] - 1))
            self.recorder.write_row(row)
            self.exporter.observe_row(row)
            self.rows += 1
        if self.monitor is not None and data.get("drlab_cpu") is not None:
            self.monitor.note(f"worker-{self.runner.get_worker_index(client_id)}", float(data["drlab_cpu"]))
        if "drlab_worker_users" in data:
            self._reports[client_id] = (time.monotonic(), int(data["drlab_worker_users"]))

    def drain(self, *, timeout: float = 30.0) -> None:
        """Wait for a report from every worker with none of its users left: every row has then arrived."""
        since = time.monotonic()
        deadline = since + timeout
        while True:
            done = [c for c, (at, users) in self._reports.items() if at > since and users == 0]
            if len(done) >= self.workers:
                return
            if time.monotonic() > deadline:
                raise WorkerError(
                    f"{self.workers - len(done)} of {self.workers} workers did not send their last requests "
                    f"within {timeout:.0f} s."
                )
            gevent.sleep(0.2)

    def close(self) -> None:
        """Quit the master (which tells the workers to quit) and end local worker processes."""
        # Workers that stopped (a shape ended) left the master's list; they still need the quit message.
        for client_id in self._reports:
            self.runner.server.send_to_client(Message("quit", None, client_id))
        self.runner.quit()
        # Locust leaves the master's socket bound; the next run of the campaign binds the same port (cluster).
        self.runner.server.close(linger=0)
        if self.local_workers is not None:
            self.local_workers.stop(timeout=3.0)
