"""Export a Keras classifier as a SavedModel with a stable serving signature, plus its ``dr_model.json``.

Signature ``serving_default``: one input ``image`` (float32 ``[None, H, W, 3]``, already scaled), one output
``probabilities`` (float32 ``[None, 5]``). Models built as backbone + head also get the signature ``explain``
(Grad-CAM of the last convolutional block, :mod:`serving.zoo.gradcam`). Written with ``tf.saved_model.save``
from a ``tf.function`` with an explicit input signature (names do not depend on build order), tracking the raw
``tf.Variable`` s so each weight is stored once (``model.export`` stores them twice). LiteRT converts this
SavedModel with its weights (checked in ``tests/serving/zoo/test_export.py``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from serving.metadata import ModelMetadata
from serving.zoo.gradcam import EXPLAIN_SIGNATURE, explain_function

if TYPE_CHECKING:
    import keras

__all__ = ["SignatureInfo", "directory_size", "export_savedmodel", "read_signature", "verify_export"]


@dataclass(frozen=True, kw_only=True)
class SignatureInfo:
    """Names, shapes and dtypes of one SavedModel signature, as read back from disk."""

    name: str
    inputs: dict[str, tuple[tuple[int | None, ...], str]]
    outputs: dict[str, tuple[tuple[int | None, ...], str]]

    def describe(self) -> str:
        """One line, e.g. ``serving_default: image float32[?,224,224,3] -> probabilities float32[?,5]``."""

        def side(specs: dict[str, tuple[tuple[int | None, ...], str]]) -> str:
            return ", ".join(
                f"{name} {dtype}[{','.join('?' if d is None else str(d) for d in shape)}]"
                for name, (shape, dtype) in specs.items()
            )

        return f"{self.name}: {side(self.inputs)} -> {side(self.outputs)}"


def export_savedmodel(
    model: keras.Model, out_dir: str | os.PathLike[str], *, metadata: ModelMetadata
) -> Path:
    """Write ``model`` as a SavedModel into ``out_dir`` (replacing it) with ``metadata`` beside it."""
    import tensorflow as tf

    height, width = metadata.input_size
    channels = metadata.input.channels
    shape = tuple(model.input_shape[1:]) if hasattr(model, "input_shape") else None
    if shape is not None and shape != (height, width, channels):
        raise ValueError(
            f"Model input shape must match the metadata's {(height, width, channels)!r}, got {shape!r}."
        )
    output_name = metadata.output.name

    @tf.function(
        input_signature=[tf.TensorSpec([None, height, width, channels], tf.float32, name=metadata.input.name)]
    )
    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return {output_name: model(image, training=False)}

    signatures = {metadata.signature: serve}
    try:
        explain = explain_function(model, metadata)
    except ValueError:
        explain = None  # not a backbone + head: no explanation signature (the server answers 501)
    # Track the underlying tf.Variables only: tracking the Keras model as well stores every weight twice.
    root = tf.Module()
    root.weights = [variable.value for variable in model.variables]
    root.serve = serve
    if explain is not None:
        root.explain = explain
        signatures[EXPLAIN_SIGNATURE] = explain
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and swap in, so a half-written model never sits at out_dir.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tf.saved_model.save(root, str(staging), signatures=signatures)
        metadata.save(staging)
        staging.chmod(0o755)  # mkdtemp makes it private; the serving image runs as another user
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def read_signature(model_dir: str | os.PathLike[str], *, signature: str = "serving_default") -> SignatureInfo:
    """Load a SavedModel and describe one of its signatures; ``ValueError`` when it has no such signature."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(model_dir))
    if signature not in loaded.signatures:
        raise ValueError(
            f"SavedModel {str(model_dir)!r} must have signature {signature!r}, "
            f"got {sorted(loaded.signatures)!r}."
        )
    fn = loaded.signatures[signature]
    _, kwargs = fn.structured_input_signature
    return SignatureInfo(
        name=signature,
        inputs={k: (tuple(v.shape.as_list()), v.dtype.name) for k, v in sorted(kwargs.items())},
        outputs={
            k: (tuple(v.shape.as_list()), v.dtype.name) for k, v in sorted(fn.structured_outputs.items())
        },
    )


def verify_export(
    model: keras.Model, model_dir: str | os.PathLike[str], *, metadata: ModelMetadata, seed: int = 0
) -> float:
    """Reload the SavedModel, call its signature on random inputs and return the max |Keras − SavedModel|."""
    import tensorflow as tf

    height, width = metadata.input_size
    batch = np.random.default_rng(seed).uniform(-1, 1, (2, height, width, metadata.input.channels))
    batch = batch.astype(np.float32)
    expected = np.asarray(model(batch, training=False))
    loaded = tf.saved_model.load(str(model_dir))
    answer = loaded.signatures[metadata.signature](**{metadata.input.name: tf.constant(batch)})
    got = answer[metadata.output.name].numpy()
    return float(np.max(np.abs(expected - got)))


def directory_size(path: str | os.PathLike[str]) -> int:
    """Total size of the files under ``path``, bytes."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
