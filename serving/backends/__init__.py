"""Inference backends and ``load_backend``, which picks one for a model directory.

Kinds: ``savedmodel`` (TensorFlow signature call), ``litert`` (``model.tflite`` through the LiteRT
interpreter), ``auto`` (LiteRT when ``model.tflite`` exists and TensorFlow is not installed, or there is no
SavedModel; otherwise the SavedModel). Each backend's dependencies are imported only when it is chosen.

Precisions (``--precision`` / ``DR_PRECISION``): ``fp32`` (default) serves ``model.tflite`` or the SavedModel;
``int8`` serves ``model.int8.tflite`` (``dr-serving model convert --quantize int8``) with LiteRT, so ``auto``
resolves to ``litert`` and ``savedmodel`` is refused; ``bf16`` serves the SavedModel with oneDNN's bfloat16
math mode (TensorFlow only, so ``auto`` resolves to ``savedmodel``; pays on CPUs with
AMX, e.g. VGG19 on a Xeon; where oneDNN keeps fp32 math the backend says so and serves fp32).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
from pathlib import Path

from serving.backends.base import Backend, InputSpec
from serving.backends.litert import INT8_TFLITE_FILENAME, TFLITE_FILENAME
from serving.errors import ModelLoadError
from serving.metadata import DEFAULT_CLASS_NAMES, InputInfo, ModelMetadata, OutputInfo

__all__ = [
    "BACKEND_KINDS",
    "PRECISIONS",
    "Backend",
    "InputSpec",
    "choose_kind",
    "describe_model",
    "load_backend",
    "tflite_filename",
]

logger = logging.getLogger(__name__)

#: Values accepted by ``--backend``.
BACKEND_KINDS = ("auto", "savedmodel", "litert")
#: Values accepted by ``--precision`` / ``DR_PRECISION``.
PRECISIONS = ("fp32", "int8", "bf16")


def tflite_filename(precision: str) -> str:
    """The LiteRT file of a model directory that serves ``precision``."""
    if precision not in PRECISIONS:
        raise ValueError(f"Expected precision to be one of {list(PRECISIONS)!r}, got {precision!r}.")
    return INT8_TFLITE_FILENAME if precision == "int8" else TFLITE_FILENAME


def choose_kind(model_dir: str | os.PathLike[str], *, kind: str = "auto", precision: str = "fp32") -> str:
    """Resolve ``kind`` (``auto`` included) to ``savedmodel`` or ``litert`` for a model and precision."""
    if kind not in BACKEND_KINDS:
        raise ValueError(f"Expected backend to be one of {list(BACKEND_KINDS)!r}, got {kind!r}.")
    tflite_filename(precision)
    if precision == "bf16":
        if kind == "litert":
            raise ValueError(
                "Expected backend 'savedmodel' or 'auto' for precision 'bf16' (bfloat16 runs in TensorFlow), "
                "got 'litert'."
            )
        return "savedmodel"
    if precision == "int8":
        if kind == "savedmodel":
            raise ValueError(
                "Expected backend 'litert' or 'auto' for precision 'int8' (int8 models are LiteRT files), "
                "got 'savedmodel'."
            )
        return "litert"
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
    model_dir: str | os.PathLike[str],
    metadata: ModelMetadata | None,
    *,
    kind: str = "auto",
    precision: str = "fp32",
    num_threads: int | None = None,
) -> Backend:
    """Load the model in ``model_dir`` with the chosen backend; ``ModelLoadError`` names what is wrong.

    ``num_threads``: CPU threads per call (``None``: ``serving.cpus.available_cpus()``).
    """
    if not Path(model_dir).is_dir():
        raise ModelLoadError(f"Expected a model directory at {str(model_dir)!r}, but it does not exist.")
    try:
        resolved = choose_kind(model_dir, kind=kind, precision=precision)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc
    if precision == "int8" and not (Path(model_dir) / INT8_TFLITE_FILENAME).is_file():
        raise ModelLoadError(
            f"Expected {INT8_TFLITE_FILENAME} in {str(model_dir)!r} for precision 'int8', but there is no "
            f"such file; make it with: dr-serving model convert --quantize int8 {model_dir}"
        )
    if resolved == "litert":
        try:
            from serving.backends.litert import LiteRTBackend
        except ImportError as exc:
            raise ModelLoadError(
                f"Expected the LiteRT runtime for backend 'litert', but it is not installed ({exc})."
            ) from exc
        return LiteRTBackend(
            Path(model_dir) / tflite_filename(precision), metadata=metadata, num_threads=num_threads
        )
    if importlib.util.find_spec("tensorflow") is None:
        raise ModelLoadError(
            "Expected TensorFlow for backend 'savedmodel', but it is not installed; "
            "install dr-serving[tf] or serve a model.tflite with --backend=litert."
        )
    from serving.backends.savedmodel import SavedModelBackend

    return SavedModelBackend(model_dir, metadata=metadata, precision=precision, num_threads=num_threads)


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
