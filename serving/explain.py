"""Explanations: the SavedModel's ``explain`` signature (Grad-CAM), and the heat map drawn over the photo.

``Explainer`` loads the model directory's SavedModel a second time, on the first explanation asked for, so the
prediction backend is untouched (``:predict`` never calls or waits for it); a model without the ``explain``
signature (built before it existed, or not a backbone + head) raises ``ExplanationUnavailable`` (501).
``overlay`` blends a colour-mapped heat map, resized to the model input, over the preprocessed photo.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from serving.errors import ExplanationUnavailable

__all__ = ["EXPLAIN_SIGNATURE", "Explainer", "colour_map", "overlay", "overlay_png"]

#: The signature ``serving.zoo.export`` writes (``serving.zoo.gradcam.EXPLAIN_SIGNATURE``, kept TF-free here).
EXPLAIN_SIGNATURE = "explain"
#: Weight of the heat map in the overlay.
OVERLAY_ALPHA = 0.45


class Explainer:
    """Grad-CAM through the SavedModel's ``explain`` signature, loaded on first use."""

    def __init__(self, model_dir: str | os.PathLike[str], *, input_name: str, output_name: str) -> None:
        self.model_dir = Path(model_dir)
        self.input_name = input_name
        self.output_name = output_name
        self._function: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._function is None:
                import tensorflow as tf

                loaded = tf.saved_model.load(str(self.model_dir))
                signatures = dict(getattr(loaded, "signatures", {}) or {})
                if EXPLAIN_SIGNATURE not in signatures:
                    raise ExplanationUnavailable(
                        f"Expected the SavedModel to have an {EXPLAIN_SIGNATURE!r} signature to explain, "
                        f"got only {sorted(signatures)!r}; rebuild it with this version's "
                        "'dr-serving model build' or 'model train'."
                    )
                self._loaded = loaded  # keeps the variables alive
                self._function = signatures[EXPLAIN_SIGNATURE]
            return self._function

    def explain(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities ``[N, classes]`` and heat maps ``[N, h, w]`` in [0, 1] for a scaled float32 batch."""
        function = self._load()
        import tensorflow as tf

        outputs = function(**{self.input_name: tf.constant(np.asarray(batch, dtype=np.float32))})
        probabilities = np.asarray(outputs[self.output_name].numpy(), dtype=np.float32)
        return probabilities, np.asarray(outputs["heatmap"].numpy(), dtype=np.float32)


def colour_map(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] → uint8 RGB from dark blue through cyan, yellow and red ("jet"-like)."""
    v = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)[..., None]
    red = np.clip(1.5 - np.abs(4 * v - 3), 0, 1)
    green = np.clip(1.5 - np.abs(4 * v - 2), 0, 1)
    blue = np.clip(1.5 - np.abs(4 * v - 1), 0, 1)
    return (np.concatenate([red, green, blue], axis=-1) * 255 + 0.5).astype(np.uint8)


def overlay(pixels: np.ndarray, heatmap: np.ndarray, *, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """The heat map resized to ``pixels`` (uint8 H×W×3, bilinear) and blended over them."""
    height, width = pixels.shape[:2]
    resized = Image.fromarray(np.asarray(heatmap, dtype=np.float32), mode="F").resize(
        (width, height), Image.Resampling.BILINEAR
    )
    colours = colour_map(np.asarray(resized)).astype(np.float32)
    blended = (1 - alpha) * pixels.astype(np.float32) + alpha * colours
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def overlay_png(pixels: np.ndarray, heatmap: np.ndarray) -> bytes:
    """:func:`overlay` encoded as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(overlay(pixels, heatmap), mode="RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
