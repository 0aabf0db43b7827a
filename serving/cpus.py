"""How many CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (``--cpus``, a limit).

Both backends size their thread pools by ``available_cpus``. TensorFlow on its own counts the CPUs in the
affinity mask, so a pod limited to 1 CPU on a 16-CPU node would run 16 threads per op and spend its quota in a
fraction of each CFS period.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["MAX_THREADS", "available_cpus", "cgroup_cpu_limit", "schedulable_cpus", "thread_count"]

#: The most threads per model call ``--threads`` accepts (the chart's schema says the same).
MAX_THREADS = 256

#: Where the CFS quota is read from: cgroup v2's ``cpu.max``, then cgroup v1's quota and period (two mounts).
_QUOTA_FILES: tuple[tuple[Path, Path | None], ...] = (
    (Path("/sys/fs/cgroup/cpu.max"), None),
    (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")),
    (
        Path("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"),
        Path("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us"),
    ),
)


def cgroup_cpu_limit() -> float | None:
    """CPUs allowed by the container's CFS quota (cgroup v2 or v1), or ``None`` when unlimited."""
    for quota_path, period_path in _QUOTA_FILES:
        try:
            if period_path is None:
                quota, period = quota_path.read_text().split()[:2]
            else:
                quota, period = quota_path.read_text().strip(), period_path.read_text().strip()
        except (OSError, ValueError):
            continue
        if quota in ("max", "-1"):
            return None
        return int(quota) / int(period)
    return None


def schedulable_cpus() -> int:
    """CPUs in this process's affinity mask (what TensorFlow counts on its own), at least 1."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, count)


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by the CFS quota rounded up (at least 1)."""
    count = schedulable_cpus()
    limit = cgroup_cpu_limit()
    if limit is not None:
        count = min(count, max(1, math.ceil(limit)))
    return count


def thread_count(num_threads: int | None) -> int:
    """Threads per backend call: ``num_threads`` if given (at least 1), else ``available_cpus()``."""
    if num_threads is not None and num_threads < 1:
        raise ValueError(
            f"num_threads must be a positive integer or None for automatic, got {num_threads!r}."
        )
    return num_threads or available_cpus()
