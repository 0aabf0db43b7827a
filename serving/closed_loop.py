"""A closed-loop HTTP load: N connections, each sending its next request as soon as the last one is answered.

Each connection is a thread with its own keep-alive ``http.client`` connection (the standard library's client
costs about a tenth of httpx's per request, and the server, not the client, should be what is measured). A
failed request (exception or non-200 answer) counts as an error and the connection is reopened. Numeric
response headers named in ``phases`` (e.g. the server's ``X-DR-Decode-Ms``) are averaged over the answers.
"""

from __future__ import annotations

import http.client
import math
import statistics
import threading
import time
from dataclasses import dataclass, field

from serving.timing import percentile

__all__ = ["LoadResult", "closed_loop"]


@dataclass(frozen=True, kw_only=True)
class LoadResult:
    """What one closed-loop run achieved."""

    connections: int
    seconds: float
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    #: Answers over the whole run, warm-up and the last requests after the window included.
    answered_in_run: int = 0
    #: Mean of each numeric response header named in ``phases`` over the answers (NaN when never sent).
    phases_ms: dict[str, float] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        """Answered requests per second (errors excluded)."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def closed_loop(
    host: str,
    port: int,
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    connections: int,
    seconds: float,
    warmup_seconds: float = 0.5,
    timeout: float = 60.0,
    phases: tuple[str, ...] = (),
) -> LoadResult:
    """Keep ``connections`` requests in flight for ``seconds`` (after ``warmup_seconds``) and count."""
    if connections < 1 or seconds <= 0:
        raise ValueError(f"Expected connections >= 1 and seconds > 0, got {connections} and {seconds}.")
    start_at = time.perf_counter() + warmup_seconds
    stop_at = start_at + seconds
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    seen: list[dict[str, list[float]]] = [{name: [] for name in phases} for _ in range(connections)]
    answered_in_run = [0] * connections
    ready = threading.Barrier(connections)

    def connection(index: int) -> None:
        client = http.client.HTTPConnection(host, port, timeout=timeout)
        ready.wait()
        while True:
            started = time.perf_counter()
            if started >= stop_at:
                break
            values: dict[str, float] = {}
            try:
                client.request("POST", path, body=body, headers=headers)
                response = client.getresponse()
                response.read()
                ok = response.status == 200
                values = {name: _number(response.getheader(name)) for name in phases}
            except (OSError, http.client.HTTPException):
                ok = False
                client.close()
                client = http.client.HTTPConnection(host, port, timeout=timeout)
            finished = time.perf_counter()
            answered_in_run[index] += ok
            # Completions inside the window count, whenever they started: at high concurrency a request
            # may take longer than the warm-up.
            if start_at <= finished <= stop_at:
                if ok:
                    latencies[index].append((finished - started) * 1000)
                    for name, value in values.items():
                        if not math.isnan(value):
                            seen[index][name].append(value)
                else:
                    errors[index] += 1
        client.close()

    threads = [threading.Thread(target=connection, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answered = [value for values in latencies for value in values]
    pooled = {name: [value for mine in seen for value in mine[name]] for name in phases}
    return LoadResult(
        connections=connections,
        seconds=seconds,
        requests=len(answered),
        errors=sum(errors),
        p50_ms=percentile(answered, 50) if answered else float("nan"),
        p99_ms=percentile(answered, 99) if answered else float("nan"),
        answered_in_run=sum(answered_in_run),
        phases_ms={name: statistics.fmean(v) if v else float("nan") for name, v in pooled.items()},
    )


def _number(raw: str | None) -> float:
    """A header's value as a number; NaN when absent or not a number."""
    try:
        return float(raw) if raw is not None else float("nan")
    except ValueError:
        return float("nan")
