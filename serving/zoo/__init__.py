"""The model zoo: the published MobileNet/VGG19 classifiers, synthetic fundus photos, training and export.

Importing the package is cheap (numpy + Pillow): TensorFlow is imported only when a model is built, so the
load lab can use :mod:`serving.zoo.synthetic` without it. :func:`build_model` is the Python face of
``dr-serving model build``.

The models are for serving and benchmarking only, NOT for diagnosis: their weights are random or trained for a
few minutes on synthetic images.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from serving.metadata import ModelMetadata, WeightsInfo
from serving.zoo.architectures import ARCHITECTURES, get_architecture
from serving.zoo.synthetic import GENERATOR_VERSION

__all__ = [
    "ARCHITECTURES",
    "build_model",
    "compatible_model",
    "console_verbosity",
    "describe_training",
    "planned_metadata",
]

#: Epochs of synthetic training when not given.
DEFAULT_EPOCHS = 3
#: Seed when not given.
DEFAULT_SEED = 0


def console_verbosity() -> int:
    """Keras progress for our stdout: 1 (live bars) on a terminal, 2 (a line per epoch) in a log."""
    return 1 if sys.stdout.isatty() else 2


def describe_training(
    train_synthetic: int, *, epochs: int, seed: int, head_only: bool = False, folded_batch_norm: bool = False
) -> str | None:
    """The ``weights.trained_on`` text for a build; ``None`` for random initial weights.

    ``folded_batch_norm``: all layers trained through a batch-norm twin (architectures without batch norm).
    """
    if not train_synthetic:
        return None
    if head_only:
        how = "dense head only, on a variance-scaled random backbone, "
    elif folded_batch_norm:
        how = "all layers, with batch norm after every convolution folded into it after training, "
    else:
        how = ""
    return (
        f"{train_synthetic} synthetic fundus images (serving.zoo.synthetic v{GENERATOR_VERSION}), "
        f"{how}{epochs} epoch(s), seed {seed}"
    )


def planned_metadata(
    arch: str,
    *,
    train_synthetic: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = DEFAULT_SEED,
    input_size: int = 224,
    head_only: bool = False,
) -> ModelMetadata:
    """The metadata a build with these options writes (before creation time and accuracy are known)."""
    info = get_architecture(arch)
    base = ModelMetadata(name=arch, architecture=arch, scaling=info.scaling)
    trained_on = describe_training(
        train_synthetic, epochs=epochs, seed=seed, head_only=head_only, folded_batch_norm=not info.batch_norm
    )
    if trained_on is None:
        weights = WeightsInfo(
            source="random-init",
            clinical_use=False,
            notes="Random initial weights (weights=None): for serving and benchmarking only, "
            "not for diagnosis.",
        )
    else:
        weights = WeightsInfo(source="synthetic", trained_on=trained_on, clinical_use=False)
    return replace(base, input=replace(base.input, height=input_size, width=input_size), weights=weights)


def compatible_model(out_dir: str | os.PathLike[str], wanted: ModelMetadata) -> ModelMetadata | None:
    """The metadata of the model in ``out_dir`` if it was built with the same options, else ``None``."""
    directory = Path(out_dir)
    if not (directory / "saved_model.pb").is_file() or not (directory / "variables").is_dir():
        return None
    try:
        found = ModelMetadata.load(directory)
    except ValueError:
        return None
    if found is None:
        return None
    same = (
        found.architecture == wanted.architecture
        and found.input == wanted.input
        and found.output == wanted.output
        and found.signature == wanted.signature
        and found.scaling == wanted.scaling
        and found.weights.source == wanted.weights.source
        and found.weights.trained_on == wanted.weights.trained_on
    )
    return found if same else None


def build_model(
    arch: str,
    out_dir: str | os.PathLike[str],
    *,
    train_synthetic: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = DEFAULT_SEED,
    input_size: int = 224,
    head_only: bool = False,
    force: bool = False,
    verbose: int = 0,
) -> Path:
    """Build ``arch`` (random weights, or trained on ``train_synthetic`` synthetic photos) into ``out_dir``.

    An existing model built with the same options is reused unless ``force``. ``verbose`` 0 is silent,
    1 shows progress bars, 2 one line per step. ``head_only`` trains the dense head on a fixed,
    variance-scaled random backbone (:func:`serving.zoo.train.train_head`), for VGG19.
    """
    wanted = planned_metadata(
        arch,
        train_synthetic=train_synthetic,
        epochs=epochs,
        seed=seed,
        input_size=input_size,
        head_only=head_only,
    )
    out = Path(out_dir)
    if not force and compatible_model(out, wanted) is not None:
        if verbose:
            print(f">> reusing {arch} in {out} (same options; --force rebuilds it)", flush=True)
        return out
    with _build_lock(out):
        # Another process may have built it while this one waited for the lock.
        if not force and compatible_model(out, wanted) is not None:
            if verbose:
                print(f">> reusing {arch} in {out} (built meanwhile by another process)", flush=True)
            return out
        return _build(
            wanted,
            out,
            train_synthetic=train_synthetic,
            epochs=epochs,
            seed=seed,
            head_only=head_only,
            verbose=verbose,
        )


@contextmanager
def _build_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``.<name>.build.lock`` beside ``out``, so parallel builds do not collide."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(
    wanted: ModelMetadata,
    out: Path,
    *,
    train_synthetic: int,
    epochs: int,
    seed: int,
    head_only: bool,
    verbose: int,
) -> Path:
    """Build, train (when asked), export and check the model ``wanted`` describes."""
    import tensorflow as tf

    from serving.zoo.architectures import build_keras_model
    from serving.zoo.export import directory_size, export_savedmodel, verify_export
    from serving.zoo.train import train_head
    from serving.zoo.train import train_synthetic as train

    arch, input_size = wanted.architecture, wanted.input.height
    started = time.perf_counter()
    if verbose:
        print(f">> building {arch} at {input_size}x{input_size}x3 (seed {seed})", flush=True)
    model = build_keras_model(arch, input_size=input_size, seed=seed)
    metadata = replace(wanted, parameters=int(model.count_params()))
    if train_synthetic:
        result = (train_head if head_only else train)(
            model, metadata=wanted, images=train_synthetic, epochs=epochs, seed=seed, verbose=verbose
        )
        notes = (
            f"Accuracy in inference mode: {result.train_accuracy:.3f} on {result.validation_images} "
            f"training images, {result.validation_accuracy:.3f} on {result.validation_images} held-out "
            "synthetic images "
            "(chance 0.2). Learned synthetic lesions only: for serving and benchmarking, "
            "not for diagnosis."
        )
        metadata = replace(metadata, weights=replace(metadata.weights, notes=notes))
        if verbose and result.validation_accuracy < 0.3:
            print(
                f">> warning: held-out accuracy {result.validation_accuracy:.1%} is close to chance (20%); "
                "train on more photos or for more epochs",
                flush=True,
            )
    metadata = replace(
        metadata,
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        tensorflow_version=tf.__version__,
    )
    export_savedmodel(model, out, metadata=metadata)
    difference = verify_export(model, out, metadata=metadata, seed=seed)
    if not difference < 1e-4:
        raise RuntimeError(
            f"Reloaded SavedModel in {str(out)!r} must reproduce the Keras outputs within 1e-4, "
            f"got a difference of {difference!r}."
        )
    if verbose:
        size_mb = directory_size(out) / 1e6
        print(
            f">> wrote {out} ({size_mb:.1f} MB, {metadata.parameters:,} parameters, "
            f"{time.perf_counter() - started:.0f} s; reload check max |diff| {difference:.1e})",
            flush=True,
        )
    return out
