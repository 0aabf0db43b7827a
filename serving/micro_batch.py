"""``MicroBatcher``: callers hand in one image each; one thread runs them through the backend as a batch.

Adaptive: the worker takes the first waiting request, then gathers whatever else arrives within ``max_wait_s``
(at most ``max_batch`` images) and makes one backend call. A lone caller waits at most ``max_wait_s`` more
than calling the backend itself. ``dr-serving bench`` measures with it whether batching under concurrency
pays for a backend before anything serves through it.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

import numpy as np

__all__ = ["MicroBatcher"]


class MicroBatcher:
    """Batch concurrent single-image ``predict`` calls into one backend call (thread-safe)."""

    def __init__(self, backend: Any, *, max_batch: int = 8, max_wait_s: float = 0.002) -> None:
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError(f"Expected max_batch >= 1 and max_wait_s >= 0, got {max_batch}, {max_wait_s}.")
        self.backend = backend
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.batches = 0
        self.images = 0
        self._queue: queue.SimpleQueue[tuple[np.ndarray, Future[np.ndarray]] | None] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._run, name="dr-micro-batch", daemon=True)
        self._worker.start()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities for ``batch`` (``[N, H, W, C]``), computed together with other callers' images."""
        future: Future[np.ndarray] = Future()
        self._queue.put((np.asarray(batch, dtype=np.float32), future))
        return future.result()

    def close(self) -> None:
        """Stop the worker after the requests already queued."""
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

    def _serve(self, pending: list[tuple[np.ndarray, Future[np.ndarray]]]) -> None:
        try:
            outputs = self.backend.predict(np.concatenate([images for images, _ in pending]))
        except Exception as exc:  # every caller of the batch sees the backend's error
            for _, future in pending:
                future.set_exception(exc)
            return
        self.batches += 1
        start = 0
        for images, future in pending:
            future.set_result(outputs[start : start + len(images)])
            start += len(images)
        self.images += start
