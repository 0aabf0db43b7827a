"""The interface every inference backend offers: a batch of scaled pixels in, class probabilities out.

Backends know nothing of HTTP or KServe. ``serving.backends.load_backend`` picks one for a model directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Backend", "InputSpec"]


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """What the model's input tensor looks like, as read from the model (metadata overrides guesses)."""

    name: str
    height: int
    width: int
    channels: int = 3
    dtype: str = "float32"

    def __repr__(self) -> str:
        return f"InputSpec({self.name!r}, {self.height}x{self.width}x{self.channels}, {self.dtype})"


@runtime_checkable
class Backend(Protocol):
    """A loaded model turning ``[N, H, W, C]`` scaled float32 pixels into ``[N, classes]`` probabilities."""

    #: Short name used in metrics and headers: ``"savedmodel"`` or ``"litert"``.
    name: str
    #: The model's input, as the backend found it.
    input_spec: InputSpec
    #: Name of the output tensor the probabilities come from.
    output_name: str
    #: The arithmetic the model really runs in: ``fp32``, ``int8`` or ``bf16``.
    precision: str
    #: CPU threads one call may use (``serving.cpus.available_cpus`` unless set).
    num_threads: int

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on a float32 batch shaped ``[N, H, W, C]``; returns float32 ``[N, classes]``.

        Blocking: callers on an event loop run it in an executor.
        """
        ...
