"""Short training on synthetic fundus images, so a model's outputs depend on its input.

A randomly initialised MobileNet answers exactly 0.2 for every class, which makes agreement checks
(SavedModel vs LiteRT) and grade-dependent tests meaningless. A few minutes of training on
:mod:`serving.zoo.synthetic` images fixes that. The weights are NOT a diagnostic model: they only learned
to count synthetic lesions.

Images go through the server's own preprocessing (``serving.preprocess.prepare_pixels``: crop to the disc,
resize, optional Ben Graham) and pixel scaling (``serving.tensor.scale``), so training and serving agree.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from serving import preprocess, tensor
from serving.metadata import ModelMetadata
from serving.zoo.batch_norm_fold import batch_norm_twin
from serving.zoo.synthetic import make_dataset

if TYPE_CHECKING:
    import keras

__all__ = ["TrainingResult", "has_batch_norm", "synthetic_pixels", "train_head", "train_synthetic"]

#: Side of the generated photos before the server's preprocessing crops and resizes them, px.
DEFAULT_PHOTO_SIZE = 320
#: Moving-average momentum of the backbone's batch-norm layers during the short run (Keras' own default, 0.99,
#: needs hundreds of steps before the inference statistics match the training ones).
BATCH_NORM_MOMENTUM = 0.9


@dataclass(frozen=True, kw_only=True)
class TrainingResult:
    """What a synthetic training run achieved; accuracies are measured in inference mode."""

    train_images: int
    validation_images: int
    epochs: int
    train_accuracy: float
    validation_accuracy: float
    seconds: float

    def __repr__(self) -> str:
        return (
            f"TrainingResult(train={self.train_images}, validation={self.validation_images}, "
            f"epochs={self.epochs}, train_accuracy={self.train_accuracy:.3f}, "
            f"validation_accuracy={self.validation_accuracy:.3f}, seconds={self.seconds:.1f})"
        )


def synthetic_pixels(
    n: int,
    *,
    metadata: ModelMetadata,
    seed: int,
    photo_size: int = DEFAULT_PHOTO_SIZE,
    verbose: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` balanced synthetic photos prepared as the server would (uint8 ``[n, H, W, 3]``) and grades."""
    import keras

    height, width = metadata.input_size
    pixels = np.empty((n, height, width, 3), dtype=np.uint8)
    grades = np.empty((n,), dtype=np.int64)
    # Keras's own modes: 1 a live bar, 2 one line when done (for logs), 0 nothing.
    progress = keras.utils.Progbar(n, verbose=verbose, unit_name="image")
    for index, (image, grade) in enumerate(make_dataset(n, size=photo_size, seed=seed)):
        pixels[index] = preprocess.prepare_pixels(image, metadata)
        grades[index] = grade
        if (index + 1) % 50 == 0 or index + 1 == n:
            progress.update(index + 1)
    return pixels, grades


def _batches(
    pixels: np.ndarray, grades: np.ndarray, *, scaling: str, batch_size: int, seed: int
) -> keras.utils.PyDataset:
    import keras

    class Batches(keras.utils.PyDataset):
        """Shuffled, randomly flipped batches, scaled with the model's own scaling."""

        def __init__(self) -> None:
            super().__init__()
            self._rng = np.random.default_rng(seed)
            self._order = self._rng.permutation(len(pixels))

        def __len__(self) -> int:
            return math.ceil(len(pixels) / batch_size)

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            picked = self._order[index * batch_size : (index + 1) * batch_size]
            batch = pixels[picked].copy()
            flips = self._rng.random(len(picked))
            batch[flips < 0.5] = batch[flips < 0.5, :, ::-1]
            batch[flips >= 0.75] = batch[flips >= 0.75, ::-1, :]
            return tensor.scale(batch, scaling=scaling), grades[picked]

        def on_epoch_end(self) -> None:
            self._order = self._rng.permutation(len(pixels))

    return Batches()


def _accuracy(model: keras.Model, pixels: np.ndarray, grades: np.ndarray, *, scaling: str) -> float:
    if len(pixels) == 0:
        return math.nan
    correct = 0
    for start in range(0, len(pixels), 32):
        batch = tensor.scale(pixels[start : start + 32], scaling=scaling)
        probabilities = np.asarray(model(batch, training=False))
        correct += int((probabilities.argmax(axis=1) == grades[start : start + 32]).sum())
    return correct / len(pixels)


def train_synthetic(
    model: keras.Model,
    *,
    metadata: ModelMetadata,
    images: int,
    epochs: int = 3,
    seed: int = 0,
    validation_images: int | None = None,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    photo_size: int = DEFAULT_PHOTO_SIZE,
    verbose: int = 2,
) -> TrainingResult:
    """Train ``model`` in place on ``images`` synthetic photos; report accuracy on held-out ones.

    A model without batch norm (VGG19) trains through its batch-norm twin, folded back into it afterwards
    (:mod:`serving.zoo.batch_norm_fold`): same architecture and parameters, minutes instead of hours.
    """
    if isinstance(images, bool) or not isinstance(images, int) or images < 5:
        raise ValueError(f"Number of training images must be an integer >= 5, got {images!r}.")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"Number of epochs must be a positive integer, got {epochs!r}.")
    import keras

    started = time.perf_counter()
    if validation_images is None:
        validation_images = max(50, images // 5)
    keras.utils.set_random_seed(seed)
    if verbose:
        print(
            f">> generating {images} training + {validation_images} validation synthetic photos", flush=True
        )
    train_x, train_y = synthetic_pixels(
        images, metadata=metadata, seed=seed, photo_size=photo_size, verbose=verbose
    )
    # A different seed stream: validation photos never appear in training.
    val_x, val_y = synthetic_pixels(
        validation_images, metadata=metadata, seed=seed + 1_000_003, photo_size=photo_size, verbose=verbose
    )
    twin = None if has_batch_norm(model) else batch_norm_twin(model)
    trained = model if twin is None else twin.model
    for layer in _all_layers(trained):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BATCH_NORM_MOMENTUM
    trained.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    batches = _batches(train_x, train_y, scaling=metadata.scaling, batch_size=batch_size, seed=seed)
    if verbose:
        how = "" if twin is None else " with batch norm after every convolution (folded in afterwards)"
        print(f">> training {model.name}{how} for {epochs} epoch(s) of {len(batches)} steps", flush=True)
    trained.fit(batches, epochs=epochs, verbose=verbose)
    _recalibrate_batch_norm(trained, train_x, scaling=metadata.scaling, batch_size=batch_size, seed=seed)
    if twin is not None:
        twin.fold()
    return _evaluate(
        model,
        (train_x[:validation_images], train_y[:validation_images]),
        (val_x, val_y),
        scaling=metadata.scaling,
        images=images,
        epochs=epochs,
        started=started,
        verbose=verbose,
    )


def train_head(
    model: keras.Model,
    *,
    metadata: ModelMetadata,
    images: int,
    epochs: int = 100,
    seed: int = 0,
    validation_images: int | None = None,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    photo_size: int = DEFAULT_PHOTO_SIZE,
    verbose: int = 2,
) -> TrainingResult:
    """Train only the dense head of ``model`` (backbone → dense layers) on ``images`` synthetic photos.

    For a backbone that cannot learn in minutes on a CPU (VGG19: 39 GFLOP per image, no batch norm). Its
    random convolution kernels are first rescaled so that each layer's output has unit standard deviation on
    a batch of photos (the layer-sequential unit-variance initialisation of Mishkin & Matas, "All you need
    is a good init", 2016, without its orthogonal start): with Keras' default initialisation VGG19's
    features shrink to nearly nothing and the head cannot tell photos apart. The backbone then stays fixed,
    the photos go through it once, and the head trains on the cached features (``epochs`` passes take
    seconds).
    """
    if isinstance(images, bool) or not isinstance(images, int) or images < 5:
        raise ValueError(f"Number of training images must be an integer >= 5, got {images!r}.")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"Number of epochs must be a positive integer, got {epochs!r}.")
    import keras

    started = time.perf_counter()
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    head = model.layers[model.layers.index(backbone) + 1 :]
    if validation_images is None:
        validation_images = max(50, images // 5)
    keras.utils.set_random_seed(seed)
    if verbose:
        print(
            f">> generating {images} training + {validation_images} validation synthetic photos", flush=True
        )
    train_x, train_y = synthetic_pixels(images, metadata=metadata, seed=seed, photo_size=photo_size)
    val_x, val_y = synthetic_pixels(
        validation_images, metadata=metadata, seed=seed + 1_000_003, photo_size=photo_size
    )
    scaling = metadata.scaling
    if verbose:
        print(f">> scaling {backbone.name}'s convolutions to unit output variance", flush=True)
    probe = tensor.scale(train_x[:batch_size], scaling=scaling)
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.Conv2D):
            std = float(np.std(np.asarray(keras.Model(backbone.input, layer.output)(probe))))
            kernel, *rest = layer.get_weights()
            layer.set_weights([kernel / max(std, 1e-12), *[value / max(std, 1e-12) for value in rest]])
    if verbose:
        print(f">> computing {backbone.name} features of {images} photos", flush=True)

    def features(pixels: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                np.asarray(
                    backbone(tensor.scale(pixels[i : i + batch_size], scaling=scaling), training=False)
                )
                for i in range(0, len(pixels), batch_size)
            ]
        )

    train_f = features(train_x)
    inputs = keras.Input(train_f.shape[1:])
    outputs = inputs
    for layer in head:
        outputs = layer(outputs)
    head_model = keras.Model(inputs, outputs)
    head_model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    if verbose:
        print(f">> training the head for {epochs} epoch(s) on cached features", flush=True)
    head_model.fit(train_f, train_y, epochs=epochs, batch_size=batch_size, verbose=0)
    return _evaluate(
        model,
        (train_x[:validation_images], train_y[:validation_images]),
        (val_x, val_y),
        scaling=scaling,
        images=images,
        epochs=epochs,
        started=started,
        verbose=verbose,
    )


def _evaluate(
    model: keras.Model,
    train: tuple[np.ndarray, np.ndarray],
    held_out: tuple[np.ndarray, np.ndarray],
    *,
    scaling: str,
    images: int,
    epochs: int,
    started: float,
    verbose: int,
) -> TrainingResult:
    """Inference-mode accuracy on a held-out-sized slice of the training photos and on the held-out ones."""
    train_accuracy = _accuracy(model, *train, scaling=scaling)
    validation_accuracy = _accuracy(model, *held_out, scaling=scaling)
    result = TrainingResult(
        train_images=images,
        validation_images=len(held_out[0]),
        epochs=epochs,
        train_accuracy=train_accuracy,
        validation_accuracy=validation_accuracy,
        seconds=time.perf_counter() - started,
    )
    if verbose:
        print(
            f">> accuracy (inference mode): train {train_accuracy:.1%}, held-out {validation_accuracy:.1%} "
            f"(chance 20%), {result.seconds:.0f} s",
            flush=True,
        )
    return result


def _recalibrate_batch_norm(
    model: keras.Model,
    pixels: np.ndarray,
    *,
    scaling: str,
    batch_size: int,
    seed: int,
    max_batches: int = 16,
) -> None:
    """Set every batch-norm layer's inference statistics to the mean over training batches.

    After a short run the moving averages still lag the weights, and a model that is right in training mode
    can answer one class for everything in inference mode; averaging fresh batch statistics fixes that.
    """
    import keras

    layers = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers:
        return
    saved = [layer.momentum for layer in layers]
    order = np.random.default_rng(seed + 1).permutation(len(pixels))
    starts = range(0, len(pixels), batch_size)
    try:
        for index, start in enumerate(list(starts)[:max_batches]):
            # momentum i/(i+1): after n batches each moving statistic is the plain mean of n batch statistics
            for layer in layers:
                layer.momentum = index / (index + 1)
            batch = tensor.scale(pixels[order[start : start + batch_size]], scaling=scaling)
            model(batch, training=True)
    finally:
        for layer, momentum in zip(layers, saved, strict=True):
            layer.momentum = momentum


def has_batch_norm(model: keras.Model) -> bool:
    """Whether ``model`` (nested models included) has any batch-norm layer."""
    import keras

    return any(isinstance(layer, keras.layers.BatchNormalization) for layer in _all_layers(model))


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    found: list[keras.layers.Layer] = []
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        found.append(layer)
        stack.extend(getattr(layer, "layers", []))
    return found
