"""Inference backends and ``load_backend``, which picks one for a model directory.

Kinds: ``savedmodel`` (TensorFlow signature call), ``litert`` (``model.tflite`` through the LiteRT
interpreter), ``auto`` (LiteRT when ``model.tflite`` exists and TensorFlow is not installed, or there is no
SavedModel; otherwise the SavedModel). Each backend's dependencies are imported only when it is chosen.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
from pathlib import Path

from serving.backends.base import Backend, InputSpec
from serving.errors import ModelLoadError
from serving.metadata import DEFAULT_CLASS_NAMES, InputInfo, ModelMetadata, OutputInfo

__all__ = ["BACKEND_KINDS", "Backend", "InputSpec", "choose_kind", "describe_model", "load_backend"]

logger = logging.getLogger(__name__)

#: Values accepted by ``--backend``.
BACKEND_KINDS = ("auto", "savedmodel", "litert")
TFLITE_FILENAME = "model.tflite"


def choose_kind(model_dir: str | os.PathLike[str], *, kind: str = "auto") -> str:
    """Resolve ``kind`` (``auto`` included) to ``savedmodel`` or ``litert`` for ``model_dir``."""
    if kind not in BACKEND_KINDS:
        raise ValueError(f"Expected backend to be one of {list(BACKEND_KINDS)!r}, got {kind!r}.")
    if kind != "auto":
        return kind
    directory = Path(model_dir)
    has_tflite = (directory / TFLITE_FILENAME).is_file()
    has_savedmodel = (directory / "saved_model.pb").is_file()
    has_tensorflow = importlib.util.find_spec("tensorflow") is not None
    if has_tflite and (not has_tensorflow or not has_savedmodel):
        return "litert"
    return "savedmodel"


def load_backend(
    model_dir: str | os.PathLike[str], metadata: ModelMetadata | None, *, kind: str = "auto"
) -> Backend:
    """Load the model in ``model_dir`` with the chosen backend; ``ModelLoadError`` names what is wrong."""
    if not Path(model_dir).is_dir():
        raise ModelLoadError(f"Expected a model directory at {str(model_dir)!r}, but it does not exist.")
    resolved = choose_kind(model_dir, kind=kind)
    if resolved == "litert":
        try:
            from serving.backends.litert import LiteRTBackend
        except ImportError as exc:
            raise ModelLoadError(
                f"Expected the LiteRT runtime for backend 'litert', but it is not installed ({exc})."
            ) from exc
        return LiteRTBackend(model_dir, metadata=metadata)
    if importlib.util.find_spec("tensorflow") is None:
        raise ModelLoadError(
            "Expected TensorFlow for backend 'savedmodel', but it is not installed; "
            "install dr-serving[tf] or serve a model.tflite with --backend=litert."
        )
    from serving.backends.savedmodel import SavedModelBackend

    return SavedModelBackend(model_dir, metadata=metadata)


def describe_model(
    model_dir: str | os.PathLike[str], metadata: ModelMetadata | None, backend: Backend
) -> ModelMetadata:
    """The metadata to serve with: ``metadata`` with the names the backend found, or guesses when absent."""
    spec = backend.input_spec
    if metadata is not None:
        return dataclasses.replace(
            metadata,
            input=dataclasses.replace(metadata.input, name=spec.name, height=spec.height, width=spec.width),
            output=OutputInfo(name=backend.output_name),
        )
    num_classes = getattr(backend, "num_classes", None) or len(DEFAULT_CLASS_NAMES)
    class_names = (
        DEFAULT_CLASS_NAMES
        if num_classes == len(DEFAULT_CLASS_NAMES)
        else tuple(f"class {index}" for index in range(num_classes))
    )
    guessed = ModelMetadata(
        name=Path(model_dir).resolve().name or "model",
        input=InputInfo(name=spec.name, height=spec.height, width=spec.width, channels=3, dtype=spec.dtype),
        output=OutputInfo(name=backend.output_name),
        scaling="minus_one_to_one",
        class_names=class_names,
        referable_min_grade=min(2, num_classes - 1),
    )
    logger.info(
        "No dr_model.json in %s: guessed input %r %dx%d, output %r, "
        "scaling 'minus_one_to_one' (x/127.5 - 1), %d classes %s; write a dr_model.json to override.",
        model_dir,
        spec.name,
        spec.height,
        spec.width,
        backend.output_name,
        num_classes,
        list(class_names),
    )
    return guessed
