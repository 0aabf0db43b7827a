"""Process concerns of ``dr-serving serve``: start time, garbage collector, logging, exit on SIGTERM."""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["configure_logging", "exit_cleanly", "process_start_time", "tune_gc"]

#: Wall-clock time this module was first imported: the fallback for the process start time.
_IMPORTED_AT = time.time()


def process_start_time() -> float:
    """Wall-clock time this process started (Linux ``/proc``, to a tick), else when this module was imported.

    The process's start is read in ticks since boot and compared with ``CLOCK_BOOTTIME`` now; ``/proc/stat``'s
    ``btime`` would only give whole seconds.
    """
    try:
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age
    except (OSError, ValueError, IndexError, AttributeError):
        return _IMPORTED_AT


def tune_gc() -> None:
    """Move everything loaded so far out of the collector's way and collect rarely (TF makes GC costly)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def exit_cleanly(signum: int, frame: Any) -> None:
    """Signal handler: leave through ``SystemExit`` so that ``finally`` blocks run."""
    raise SystemExit(0)


def configure_logging() -> None:
    """One line per record on stderr for the ``serving`` loggers (time, pid, logger, level, message)."""
    package_logger = logging.getLogger("serving")
    if not package_logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s.%(msecs)03d %(process)d %(name)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"
            )
        )
        package_logger.addHandler(handler)
        package_logger.setLevel(logging.INFO)
        package_logger.propagate = False
