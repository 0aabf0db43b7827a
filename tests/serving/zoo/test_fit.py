"""``dr-serving model train`` on synthetic photos laid out as APTOS and as folders (tiny sizes and epochs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from labelled_photos import write_aptos, write_folders
from PIL import Image

from serving.backends import load_backend
from serving.imaging import decode_image
from serving.limits import Limits
from serving.metadata import ModelMetadata
from serving.preprocess import prepare_pixels, preprocess_image
from serving.zoo.fit import Recipe, TrainedModel, train_on_data

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parents[3]
#: A small, fast recipe: 64 px MobileNet, one epoch.
TINY = Recipe(input_size=64, batch_size=8, epochs=1, seed=3)


@pytest.fixture(scope="module")
def aptos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six synthetic photos per grade in the APTOS layout, 96 px PNG."""
    return write_aptos(tmp_path_factory.mktemp("aptos"), per_grade=6, size=96, seed=1)


@pytest.fixture(scope="module")
def trained(aptos: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """One epoch on the APTOS photos."""
    return train_on_data(aptos, tmp_path_factory.mktemp("out") / "mine", recipe=TINY, verbose=0)


def test_training_writes_a_servable_model_with_its_record(trained: TrainedModel, aptos: Path) -> None:
    out = trained.model_dir
    assert (out / "saved_model.pb").is_file() and (out / "variables").is_dir()
    metadata = ModelMetadata.load(out)
    assert metadata is not None and metadata.name == "mine" and metadata.input_size == (64, 64)
    assert metadata.weights.source == "trained" and metadata.weights.clinical_use is False
    record = metadata.training
    assert record is not None
    assert record["data"]["layout"] == "aptos" and record["data"]["per_grade"] == [6, 6, 6, 6, 6]
    assert record["split"] == {
        "validation": 0.3,
        "seed": 3,
        "training_photos": 20,
        "validation_photos": 10,
        "stratified": True,
    }
    assert record["recipe"]["architecture"] == "mobilenet" and record["recipe"]["class_weights"] == "balanced"
    assert record["epochs_run"] == 1 and len(record["history"]) == 1
    # The exported model answers like the server would call it.
    backend = load_backend(out, metadata)
    photo = next((aptos / "train_images").iterdir()).read_bytes()
    batch = preprocess_image(decode_image(photo, limits=Limits(), downscale_to=(64, 64)), metadata)[None]
    probabilities = backend.predict(batch.astype(np.float32))
    assert probabilities.shape == (1, 5) and probabilities.sum() == pytest.approx(1.0, abs=1e-4)


def test_the_evaluation_files_agree(trained: TrainedModel) -> None:
    out = trained.model_dir
    figures = json.loads((out / "evaluation.json").read_text())
    assert figures["photos"] == 10 and sum(map(sum, figures["confusion"])) == 10
    assert [sum(row) for row in figures["confusion"]] == [2, 2, 2, 2, 2]  # stratified: 2 of 6 per grade
    assert 0 <= figures["accuracy"] <= 1 and -1 <= figures["quadratic_weighted_kappa"] <= 1
    correct = sum(figures["confusion"][g][g] for g in range(5))
    assert figures["accuracy"] == pytest.approx(correct / 10)
    assert figures["threshold"] == 0.5 and figures["referable_min_grade"] == 2
    assert figures == {**figures, **ModelMetadata.load(out).training["evaluation"]}  # type: ignore[union-attr]
    assert "| 10 | " in (out / "evaluation.md").read_text()
    for name in ("roc.png", "confusion.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG"


def test_training_prepares_photos_exactly_as_the_server(trained: TrainedModel, aptos: Path) -> None:
    metadata = ModelMetadata.load(trained.model_dir)
    assert metadata is not None
    cache = next(trained.model_dir.parent.glob("mine.train/pixels-*.npz"))
    with np.load(cache) as stored:
        pixels = stored["pixels"]
    from serving.zoo.datasets import load_dataset

    examples = load_dataset(aptos).examples
    for index in (0, 7, 29):
        image = decode_image(examples[index].path.read_bytes(), limits=Limits(), downscale_to=(64, 64))
        assert np.array_equal(pixels[index], prepare_pixels(image, metadata))


def test_a_second_run_resumes_after_the_last_epoch(trained: TrainedModel, aptos: Path) -> None:
    again = train_on_data(
        aptos, trained.model_dir, recipe=Recipe(**{**TINY.__dict__, "epochs": 2}), verbose=0
    )
    assert again.resumed_from == 1 and again.epochs_run == 2
    record = ModelMetadata.load(trained.model_dir).training  # type: ignore[union-attr]
    assert [entry["epoch"] for entry in record["history"]] == [1, 2]


def test_vgg19_trains_through_its_batch_norm_twin_and_resumes(aptos: Path, tmp_path: Path) -> None:
    import tensorflow as tf

    recipe = Recipe(architecture="vgg19", input_size=32, batch_size=8, epochs=1, seed=3)
    out = tmp_path / "vgg"
    train_on_data(aptos, out, recipe=recipe, verbose=0)
    again = train_on_data(aptos, out, recipe=Recipe(**{**recipe.__dict__, "epochs": 2}), verbose=0)
    assert again.resumed_from == 1 and again.epochs_run == 2  # resumed from the twin's checkpoint
    metadata = ModelMetadata.load(out)
    assert metadata is not None and metadata.parameters == 20_107_205  # folded: the published VGG19
    shapes = [shape for name, shape in tf.train.list_variables(str(out / "variables" / "variables")) if shape]
    # 16 convolutions and 3 dense layers, a kernel and a bias each: no batch-norm variable is left.
    assert len(shapes) == 38 and sum(int(np.prod(shape)) for shape in shapes) == 20_107_205


def test_the_command_trains_on_folders(tmp_path: Path) -> None:
    data = write_folders(tmp_path / "data", per_grade=4, size=96, seed=2)
    out = tmp_path / "folder-model"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "serving",
            "model",
            "train",
            f"--data={data}",
            f"--out={out}",
            "--input-size=64",
            "--epochs=1",
            "--batch-size=8",
            "--no-augment",
            "--class-weights=none",
            "--threshold=0.4",
        ],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "folder-per-grade layout" in done.stdout and "| true \\ predicted |" in done.stdout
    record = ModelMetadata.load(out).training  # type: ignore[union-attr]
    assert record["data"]["layout"] == "folders" and record["recipe"]["augment"] is False
    assert record["evaluation"]["threshold"] == 0.4 and record["split"]["validation_photos"] == 5


def test_the_command_names_a_wrong_data_folder(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "serving", "model", "train", f"--data={tmp_path}", f"--out={tmp_path / 'o'}"],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2
    assert "train.csv + train_images/ (APTOS) or folders 0/" in done.stderr
