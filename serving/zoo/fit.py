"""``dr-serving model train --data DIR``: train a published architecture on the user's labelled photos.

The recipe (``Recipe``, every field a flag) defaults to the published one: MobileNet at 224 px, x/127.5 − 1,
stratified 70/30 split with seed 0, Adam, small batches, augmentation (flips, quarter turns, brightness),
balanced class weights, early stopping on the validation loss. Photos are decoded and prepared exactly as the
server does (``serving.imaging.decode_image`` within the server's limits,
``serving.preprocess.prepare_pixels``, ``serving.tensor.scale``): no train/serve skew. The prepared pixels are
cached beside the output (``<out>.train/pixels-<key>.npz``), and every epoch leaves a checkpoint
(``<out>.train/last.keras`` + ``state.json``): a run started again with the same data and recipe resumes after
the last finished epoch.

Writes the SavedModel and ``dr_model.json`` (its ``training`` object holds the data, split, recipe and
evaluation), ``evaluation.json``, ``evaluation.md``, ``roc.png`` and ``confusion.png``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from serving import preprocess, tensor
from serving.imaging import decode_image
from serving.limits import Limits
from serving.metadata import ModelMetadata, Preprocessing, WeightsInfo
from serving.zoo.architectures import get_architecture
from serving.zoo.datasets import Dataset, load_dataset, stratified_split
from serving.zoo.evaluation import Evaluation, evaluate

if TYPE_CHECKING:
    import keras

__all__ = ["Recipe", "TrainedModel", "train_on_data"]

#: Folder (inside the output's parent) holding the cache and checkpoints of a run.
WORK_SUFFIX = ".train"


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """How to train; the defaults are the published recipe."""

    architecture: str = "mobilenet"
    input_size: int = 224
    scaling: str = "minus_one_to_one"
    ben_graham: bool = False
    validation: float = 0.3
    seed: int = 0
    batch_size: int = 8
    epochs: int = 30
    patience: int = 5
    learning_rate: float = 1e-3
    class_weights: str = "balanced"
    augment: bool = True
    threshold: float = 0.5

    def __post_init__(self) -> None:
        get_architecture(self.architecture)
        if self.class_weights not in ("balanced", "none"):
            raise ValueError(f"Expected class weights 'balanced' or 'none', got {self.class_weights!r}.")
        if not 0 < self.threshold < 1:
            raise ValueError(f"Expected a referral threshold between 0 and 1, got {self.threshold!r}.")
        for name in ("batch_size", "epochs", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"Expected {name} >= 1, got {getattr(self, name)!r}.")


@dataclass(frozen=True, kw_only=True)
class TrainedModel:
    """What ``train_on_data`` wrote and measured."""

    model_dir: Path
    evaluation: Evaluation
    epochs_run: int
    best_epoch: int
    resumed_from: int
    seconds: float


def _prepare(
    dataset: Dataset, indices: np.ndarray, metadata: ModelMetadata, *, cache: Path, verbose: int
) -> np.ndarray:
    """The server's decode + ``prepare_pixels`` of the chosen photos, uint8 [N, H, W, 3], cached on disk."""
    import keras

    if cache.is_file():
        with np.load(cache) as stored:
            return stored["pixels"]
    height, width = metadata.input_size
    limits = Limits()
    pixels = np.empty((len(indices), height, width, 3), dtype=np.uint8)
    progress = keras.utils.Progbar(len(indices), verbose=min(verbose, 2), unit_name="photo")
    for row, index in enumerate(indices):
        example = dataset.examples[int(index)]
        try:
            image = decode_image(example.path.read_bytes(), limits=limits, downscale_to=(height, width))
        except Exception as exc:
            raise ValueError(f"Cannot use {str(example.path)!r} for training: {exc}") from exc
        pixels[row] = preprocess.prepare_pixels(image, metadata)
        progress.update(row + 1)
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = cache.with_suffix(".partial.npz")
    np.savez(staging, pixels=pixels)
    staging.replace(cache)
    return pixels


def _batches(
    pixels: np.ndarray, grades: np.ndarray, *, recipe: Recipe, weights: dict[int, float] | None, seed: int
) -> keras.utils.PyDataset:
    import keras

    class Batches(keras.utils.PyDataset):
        """Shuffled batches, augmented per the recipe, scaled like the server; weights per grade."""

        def __init__(self) -> None:
            super().__init__()
            self._rng = np.random.default_rng(seed)
            self._order = self._rng.permutation(len(pixels))

        def __len__(self) -> int:
            return math.ceil(len(pixels) / recipe.batch_size)

        def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
            picked = self._order[index * recipe.batch_size : (index + 1) * recipe.batch_size]
            batch = pixels[picked].copy()
            if recipe.augment:
                batch = self._augment(batch)
            x = tensor.scale(batch, scaling=recipe.scaling)
            y = grades[picked]
            if weights is None:
                return x, y
            return x, y, np.array([weights[int(g)] for g in y], dtype=np.float32)

        def _augment(self, batch: np.ndarray) -> np.ndarray:
            for item in range(len(batch)):
                image = batch[item]
                if self._rng.random() < 0.5:
                    image = image[:, ::-1]
                if self._rng.random() < 0.5:
                    image = image[::-1, :]
                image = np.rot90(image, int(self._rng.integers(0, 4)))
                gain = self._rng.uniform(0.9, 1.1)
                batch[item] = np.clip(image.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)
            return batch

        def on_epoch_end(self) -> None:
            self._order = self._rng.permutation(len(pixels))

    return Batches()


def _class_weights(grades: np.ndarray, classes: int, mode: str) -> dict[int, float] | None:
    """``balanced``: n / (classes present × count) per grade (scikit-learn's definition); ``none``: None."""
    if mode == "none":
        return None
    counts = np.bincount(grades, minlength=classes)
    present = int((counts > 0).sum())
    return {
        grade: float(len(grades) / (present * count)) if count else 0.0 for grade, count in enumerate(counts)
    }


def _predict(model: keras.Model, pixels: np.ndarray, *, scaling: str) -> np.ndarray:
    outputs = [
        np.asarray(model(tensor.scale(pixels[start : start + 32], scaling=scaling), training=False))
        for start in range(0, len(pixels), 32)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, 5), dtype=np.float32)


def train_on_data(
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    recipe: Recipe | None = None,
    name: str | None = None,
    verbose: int = 1,
) -> TrainedModel:
    """Train on the photos in ``data_dir`` (APTOS or folder per grade); write the model into ``out_dir``."""
    import keras
    import tensorflow as tf

    from serving.zoo.architectures import build_keras_model, get_architecture
    from serving.zoo.batch_norm_fold import BatchNormTwin, batch_norm_twin
    from serving.zoo.export import export_savedmodel, verify_export
    from serving.zoo.train import BATCH_NORM_MOMENTUM, _all_layers, _recalibrate_batch_norm

    recipe = recipe or Recipe()
    started = time.perf_counter()
    dataset = load_dataset(data_dir)
    grades = dataset.grades
    train_idx, val_idx = stratified_split(grades, validation=recipe.validation, seed=recipe.seed)
    out = Path(out_dir)
    work = out.parent / f"{out.name}{WORK_SUFFIX}"
    metadata = ModelMetadata(
        name=name or out.name,
        architecture=recipe.architecture,
        scaling=recipe.scaling,
        preprocessing=Preprocessing(crop_fundus=True, ben_graham=recipe.ben_graham),
    )
    metadata = replace(
        metadata, input=replace(metadata.input, height=recipe.input_size, width=recipe.input_size)
    )
    key = f"{dataset.fingerprint()}-{recipe.input_size}-{int(recipe.ben_graham)}"
    if verbose:
        print(f">> data: {dataset.describe()}", flush=True)
        print(
            f">> split (seed {recipe.seed}): {len(train_idx)} training, {len(val_idx)} validation photos",
            flush=True,
        )
    cached = _prepare(
        dataset, np.arange(len(dataset.examples)), metadata, cache=work / f"pixels-{key}.npz", verbose=verbose
    )
    train_x, train_y = cached[train_idx], grades[train_idx]
    val_x, val_y = cached[val_idx], grades[val_idx]
    weights = _class_weights(train_y, metadata.num_classes, recipe.class_weights)

    state_path, last_path, best_path = work / "state.json", work / "last.keras", work / "best.weights.h5"
    # Epochs and patience may change between runs (train longer); anything else starts afresh.
    steady = {key: value for key, value in asdict(recipe).items() if key not in ("epochs", "patience")}
    # An architecture without batch norm (VGG19) trains through its batch-norm twin, folded back into the
    # published model at the end; that model is built only when it is needed (not to resume MobileNet).
    build = partial(build_keras_model, recipe.architecture, input_size=recipe.input_size, seed=recipe.seed)
    uses_twin = not get_architecture(recipe.architecture).batch_norm
    published = build() if uses_twin else None
    fingerprint = {"data": dataset.fingerprint(), "recipe": steady, "batch_norm_twin": uses_twin}
    state: dict[str, Any] = {"epoch": 0, "best_loss": None, "best_epoch": 0, "wait": 0, "history": []}
    model: keras.Model | None = None
    if state_path.is_file() and last_path.is_file():
        saved = json.loads(state_path.read_text(encoding="utf-8"))
        if saved.get("fingerprint") == fingerprint:
            state = saved
            model = keras.saving.load_model(last_path)
            if verbose:
                print(f">> resuming after epoch {state['epoch']} (checkpoint {last_path})", flush=True)
    resumed_from = int(state["epoch"])
    if model is None:
        model = batch_norm_twin(published).model if published is not None else build()
        for layer in _all_layers(model):
            if isinstance(layer, keras.layers.BatchNormalization):
                # Keras' 0.99 needs hundreds of steps before the inference statistics catch up; with a small
                # dataset every validation in inference mode would then answer one class.
                layer.momentum = BATCH_NORM_MOMENTUM
        model.compile(
            optimizer=keras.optimizers.Adam(recipe.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    keras.utils.set_random_seed(recipe.seed + resumed_from)
    batches = _batches(train_x, train_y, recipe=recipe, weights=weights, seed=recipe.seed + resumed_from)
    val_scaled = tensor.scale(val_x, scaling=recipe.scaling)
    work.mkdir(parents=True, exist_ok=True)
    stopped = bool(state["wait"] >= recipe.patience)
    while state["epoch"] < recipe.epochs and not stopped:
        epoch = int(state["epoch"])
        history = model.fit(batches, epochs=epoch + 1, initial_epoch=epoch, verbose=verbose)
        # Validate the model as it will be exported: batch-norm statistics recalibrated on training batches.
        _recalibrate_batch_norm(
            model, train_x, scaling=recipe.scaling, batch_size=recipe.batch_size, seed=recipe.seed + epoch
        )
        val_loss, val_accuracy = model.evaluate(val_scaled, val_y, batch_size=32, verbose=0)
        entry = {
            "epoch": epoch + 1,
            "loss": float(history.history["loss"][-1]),
            "val_loss": float(val_loss),
            "val_accuracy": float(val_accuracy),
        }
        state["history"].append(entry)
        state["epoch"] = epoch + 1
        if state["best_loss"] is None or val_loss < state["best_loss"]:
            state.update(best_loss=float(val_loss), best_epoch=epoch + 1, wait=0)
            model.save_weights(best_path)
        else:
            state["wait"] += 1
        stopped = state["wait"] >= recipe.patience
        model.save(last_path)
        state["fingerprint"] = fingerprint
        state_path.write_text(json.dumps(state, indent=2), encoding="utf-8")
        if verbose:
            print(
                f">> epoch {epoch + 1}/{recipe.epochs}: validation loss {val_loss:.4f}, accuracy "
                f"{val_accuracy:.1%}" + (" (best)" if state["best_epoch"] == epoch + 1 else ""),
                flush=True,
            )
    if stopped and verbose:
        print(f">> early stop: no better validation loss for {recipe.patience} epoch(s)", flush=True)
    if best_path.is_file():
        model.load_weights(best_path)
    _recalibrate_batch_norm(
        model, train_x, scaling=recipe.scaling, batch_size=recipe.batch_size, seed=recipe.seed
    )
    if published is not None:
        BatchNormTwin.pair(published, model).fold()
        model = published
    result = evaluate(
        _predict(model, val_x, scaling=recipe.scaling),
        val_y,
        referable_min_grade=metadata.referable_min_grade,
        threshold=recipe.threshold,
    )
    training = {
        "data": {
            "directory": str(dataset.root),
            "layout": dataset.layout,
            "photos": len(dataset.examples),
            "per_grade": dataset.counts(),
            "fingerprint": dataset.fingerprint(),
        },
        "split": {
            "validation": recipe.validation,
            "seed": recipe.seed,
            "training_photos": len(train_idx),
            "validation_photos": len(val_idx),
            "stratified": True,
        },
        "recipe": asdict(recipe),
        "epochs_run": int(state["epoch"]),
        "best_epoch": int(state["best_epoch"]),
        "history": state["history"],
        "evaluation": {key: value for key, value in result.to_dict().items() if key != "roc"},
    }
    metadata = replace(
        metadata,
        parameters=int(model.count_params()),
        weights=WeightsInfo(
            source="trained",
            trained_on=dataset.describe(),
            clinical_use=False,
            notes=(
                "dr-serving model train: validation quadratic weighted kappa "
                f"{result.quadratic_weighted_kappa:.3f}, "
                f"referable AUC {result.referable_auc:.3f} on {result.photos} held-out photos; not validated "
                "for diagnosis."
            ),
        ),
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        tensorflow_version=tf.__version__,
        training=training,
    )
    export_savedmodel(model, out, metadata=metadata)
    difference = verify_export(model, out, metadata=metadata, seed=recipe.seed)
    if not difference < 1e-4:
        raise RuntimeError(
            f"Expected the exported SavedModel to reproduce Keras within 1e-4, got {difference!r}."
        )
    (out / "evaluation.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    (out / "evaluation.md").write_text(result.table() + "\n", encoding="utf-8")
    result.plot(out)
    if verbose:
        print(result.table(), flush=True)
        print(f">> wrote {out} ({time.perf_counter() - started:.0f} s)", flush=True)
    return TrainedModel(
        model_dir=out,
        evaluation=result,
        epochs_run=int(state["epoch"]),
        best_epoch=int(state["best_epoch"]),
        resumed_from=resumed_from,
        seconds=time.perf_counter() - started,
    )
