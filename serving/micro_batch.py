"""``MicroBatcher``: concurrent callers hand in batches; one thread runs the waiting ones in one backend call.

Adaptive: the worker takes the first waiting request, then gathers whatever else arrives within ``max_wait_s``
(0: only what is already queued) up to ``max_batch`` images, and makes one backend call. A lone caller waits
at most ``max_wait_s`` more than calling the backend itself. The server uses it behind ``--micro-batch``
(``DRModel``), where ``dr-serving bench`` measured that it pays: the TensorFlow backends under concurrency.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Batched", "MicroBatcher"]


@dataclass(frozen=True, kw_only=True)
class Batched:
    """One caller's share of a backend call: its outputs, and the call it rode in."""

    outputs: np.ndarray
    #: ``time.perf_counter()`` when the backend call started and ended.
    started: float
    ended: float
    #: Images in the backend call (this caller's and the others').
    call_images: int


class MicroBatcher:
    """Batch concurrent ``predict`` calls into one backend call (thread-safe)."""

    def __init__(
        self,
        backend: Any,
        *,
        max_batch: int = 8,
        max_wait_s: float = 0.0,
        on_call: Callable[[int, float], None] | None = None,
    ) -> None:
        """``on_call(images, seconds)`` runs on the worker after every successful backend call."""
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError(f"Expected max_batch >= 1 and max_wait_s >= 0, got {max_batch}, {max_wait_s}.")
        self.backend = backend
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.on_call = on_call
        self.batches = 0
        self.images = 0
        self._queue: queue.SimpleQueue[tuple[np.ndarray, Future[Batched]] | None] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._run, name="dr-micro-batch", daemon=True)
        self._worker.start()

    def submit(self, batch: np.ndarray) -> Future[Batched]:
        """Queue ``batch`` (``[N, H, W, C]``); the future holds its outputs once its backend call is done."""
        future: Future[Batched] = Future()
        self._queue.put((np.asarray(batch, dtype=np.float32), future))
        return future

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities for ``batch``, computed together with other callers' images (blocking)."""
        return self.submit(batch).result().outputs

    def close(self) -> None:
        """Stop the worker after the requests already queued."""
        if self._worker.is_alive():
            self._queue.put(None)
            self._worker.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            pending = [first]
            size = len(first[0])
            deadline = time.perf_counter() + self.max_wait_s
            stop = False
            while size < self.max_batch:
                remaining = deadline - time.perf_counter()
                try:
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                pending.append(item)
                size += len(item[0])
            self._serve(pending)
            if stop:
                return

    def _serve(self, pending: list[tuple[np.ndarray, Future[Batched]]]) -> None:
        started = time.perf_counter()
        try:
            outputs = self.backend.predict(np.concatenate([images for images, _ in pending]))
        except Exception as exc:  # every caller of the batch sees the backend's error
            for _, future in pending:
                future.set_exception(exc)
            return
        ended = time.perf_counter()
        images = sum(len(batch) for batch, _ in pending)
        self.batches += 1
        self.images += images
        if self.on_call is not None:
            self.on_call(images, ended - started)
        start = 0
        for batch, future in pending:
            share = outputs[start : start + len(batch)]
            future.set_result(Batched(outputs=share, started=started, ended=ended, call_images=images))
            start += len(batch)
