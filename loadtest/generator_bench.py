"""How many requests per second the load generator can send: one Locust process vs a master + N workers.

``dr-serving lab generator-bench`` serves the real predictor on 127.0.0.1, then runs Locust's own command line
(``python -m locust``: headless single process, or ``--master`` with ``--expect-workers N`` and N ``--worker``
processes) with ``loadtest.bench_locustfile`` against a cheap route (``/v2/health/live``), interleaving the
configurations round after round. Each run's request rate is Locust's aggregated ``Requests/s``; its generator
CPU is the CPU time (psutil) of the Locust processes over a steady window (after start-up, before the end), in
% of one core, and requests per CPU-second gives the rate one fully busy generator process could reach.
Rates are only compared inside one invocation (ratios against one process, same rounds).
No gevent here: every Locust process is a child.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from serving.launcher import PredictorProcess, free_port

__all__ = ["BenchRow", "run_generator_bench", "write_results"]

LOCUSTFILE = Path(__file__).with_name("bench_locustfile.py")


@dataclass(frozen=True)
class BenchRow:
    """One timed Locust run."""

    generator: str
    """``1 process`` or ``master + N workers``."""
    workers: int
    round: int
    users: int
    seconds: float
    requests: int
    failures: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    generator_cpu_percent: float
    """CPU of all Locust processes in the steady window, in % of one core (200 = two cores busy)."""
    requests_per_cpu_s: float
    """Requests sent per CPU-second of the generator: the rate one fully busy process could reach."""


#: Seconds after launch before the CPU window opens (imports, connecting, spawning every user).
STARTUP_S = 3.5


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _steady_cpu(processes: list[subprocess.Popen[bytes]], *, started: float, seconds: float) -> float:
    """CPU % (of one core) of the Locust processes between start-up and one second before the run ends."""
    handles = [psutil.Process(p.pid) for p in processes]
    window = max(1.0, seconds - STARTUP_S + 1.0)
    time.sleep(max(0.0, started + STARTUP_S - time.monotonic()))
    before, opened = _cpu_seconds(handles), time.monotonic()
    time.sleep(window)
    return 100.0 * (_cpu_seconds(handles) - before) / (time.monotonic() - opened)


def _locust(*args: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "LOCUST_SKIP_MONKEY_PATCH"}
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--skip-log-setup", *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )


def _one_run(host: str, *, workers: int, users: int, seconds: float, index: int, folder: Path) -> BenchRow:
    """Run Locust once (one process, or a master and ``workers`` workers) and read its aggregated stats."""
    prefix = folder / f"run{index}"
    log = folder / f"run{index}.log"
    common = ["--headless", "-u", str(users), "-r", str(users), "-t", f"{seconds:g}s", "--host", host]
    common += ["--csv", str(prefix), "--only-summary", "--exit-code-on-error", "0"]
    started = time.monotonic()
    if workers == 0:
        processes = [_locust(*common, log=log)]
    else:
        port = free_port()
        master = _locust(
            *common,
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(workers),
            log=log,
        )
        worker_args = ("--worker", "--master-host", "127.0.0.1", "--master-port", str(port))
        processes = [master, *(_locust(*worker_args, log=log) for _ in range(workers))]
    cpu = _steady_cpu(processes, started=started, seconds=seconds)
    try:
        for process in processes:
            process.wait(timeout=seconds + 90)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    with Path(f"{prefix}_stats.csv").open(encoding="utf-8") as handle:
        total = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    return BenchRow(
        generator="1 process" if workers == 0 else f"master + {workers} workers",
        workers=workers,
        round=0,
        users=users,
        seconds=seconds,
        requests=int(total["Request Count"]),
        failures=int(total["Failure Count"]),
        requests_per_s=round(float(total["Requests/s"]), 1),
        p50_ms=float(total["50%"]),
        p95_ms=float(total["95%"]),
        generator_cpu_percent=round(cpu, 1),
        requests_per_cpu_s=round(float(total["Requests/s"]) / (cpu / 100.0), 1) if cpu > 0 else 0.0,
    )


def run_generator_bench(
    model_dir: Path,
    *,
    workers: list[int],
    users: int = 50,
    seconds: float = 10.0,
    rounds: int = 2,
    path: str = "/v2/health/live",
    progress: bool = True,
) -> list[BenchRow]:
    """Serve ``model_dir``; run one process and each worker count, interleaved for ``rounds`` rounds."""
    configs = [0, *[n for n in workers if n > 0]]
    rows: list[BenchRow] = []
    os.environ["DRLAB_BENCH_PATH"] = path
    with (
        tempfile.TemporaryDirectory(prefix="drlab-genbench-") as tmp,
        PredictorProcess(model_dir) as predictor,
    ):
        for round_ in range(1, rounds + 1):
            for n in configs:
                row = _one_run(
                    predictor.url, workers=n, users=users, seconds=seconds, index=len(rows), folder=Path(tmp)
                )
                row = BenchRow(**{**asdict(row), "round": round_})
                rows.append(row)
                if progress:
                    print(
                        f"round {round_}: {row.generator}: {row.requests_per_s:g} requests/s, "
                        f"generator CPU {row.generator_cpu_percent:g} %, "
                        f"{row.requests_per_cpu_s:g} requests per CPU-second",
                        file=sys.stderr,
                    )
    return rows


def summary_rows(rows: list[BenchRow]) -> list[dict[str, object]]:
    """Per configuration: median requests/s over the rounds and the ratio to one process."""
    by_config: dict[int, list[BenchRow]] = {}
    for row in rows:
        by_config.setdefault(row.workers, []).append(row)
    base = statistics.median(r.requests_per_s for r in by_config.get(0, rows))
    table = []
    for _, members in sorted(by_config.items()):
        rate = statistics.median(r.requests_per_s for r in members)
        table.append(
            {
                "generator": members[0].generator,
                "rounds": len(members),
                "requests_per_s": round(rate, 1),
                "vs_1_process": round(rate / base, 2) if base else None,
                "p50_ms": round(statistics.median(r.p50_ms for r in members), 1),
                "generator_cpu_percent": round(
                    statistics.median(r.generator_cpu_percent for r in members), 1
                ),
                "requests_per_cpu_s": round(statistics.median(r.requests_per_cpu_s for r in members), 1),
                "failures": sum(r.failures for r in members),
            }
        )
    return table


def write_results(rows: list[BenchRow], out: Path, *, meta: dict[str, object]) -> tuple[Path, Path]:
    """Write ``generator-bench-<UTC>.json`` (meta, runs, summary) and ``.csv`` (the runs) under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path = out / f"generator-bench-{stamp}.json"
    csv_path = json_path.with_suffix(".csv")
    document = {"meta": meta, "summary": summary_rows(rows), "runs": [asdict(r) for r in rows]}
    json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    return json_path, csv_path
