"""Fixtures shared by every test area.

Model fixtures build real models once per machine into ``models/`` (git-ignored) and reuse them afterwards.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import keras

# Variables that change the predictor's or the lab's behaviour; tests start from a clean slate.
_BEHAVIOUR_VARIABLES = ("KUBECONFIG", "HELM_NAMESPACE", "STORAGE_URI", "LOCUST_HOST")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Strip environment variables that would change behaviour (``DR_*`` and a few others)."""
    for name in list(os.environ):
        if name.startswith("DR_") or name in _BEHAVIOUR_VARIABLES:
            monkeypatch.delenv(name, raising=False)


# ----------------------------------------------------------------------------------------------------
# Model fixtures: built once per machine into models/test/, reused while valid, guarded by a file lock so that
# parallel pytest sessions never build the same model twice.

#: Where the test models live (git-ignored).
TEST_MODELS_DIR = Path(__file__).resolve().parent.parent / "models" / "test"
#: Synthetic photos and epochs for the trained MobileNet fixture (≈2–3 minutes on 2 shared cores).
FIXTURE_TRAIN_IMAGES = 300
FIXTURE_EPOCHS = 3
FIXTURE_SEED = 0


@contextmanager
def _model_lock(name: str) -> Iterator[None]:
    """Hold an exclusive lock on ``models/test/.<name>.lock`` (blocks while another session builds it)."""
    TEST_MODELS_DIR.mkdir(parents=True, exist_ok=True)
    with open(TEST_MODELS_DIR / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _foreign_model(size: int, input_name: str) -> keras.Model:
    """A small CNN with random weights and 5 softmax outputs, which already depend on the input."""
    import keras

    keras.utils.set_random_seed(FIXTURE_SEED)
    inputs = keras.Input((size, size, 3), name=input_name)
    x = keras.layers.Conv2D(8, 5, strides=4, activation="relu")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    outputs = keras.layers.Dense(5, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def _build_foreign(name: str, write: Callable[[Path], None]) -> Path:
    """Build a foreign SavedModel (no dr_model.json) into models/test/<name> unless it is already there."""
    target = TEST_MODELS_DIR / name
    with _model_lock(name):
        if not (target / "saved_model.pb").is_file():
            staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=TEST_MODELS_DIR))
            try:
                write(staging / "model")
                shutil.rmtree(target, ignore_errors=True)
                (staging / "model").rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return target


@pytest.fixture(scope="session")
def mobilenet_dir() -> Path:
    """MobileNet as published, trained briefly on synthetic photos, exported with dr_model.json.

    Signature ``serving_default``: ``image`` float32 [None,224,224,3] (x/127.5 − 1) → ``probabilities``
    float32 [None,5].
    Its outputs depend on the input (random-init MobileNet answers 0.2 everywhere).
    """
    from serving.zoo import build_model

    # build_model locks the folder itself and reuses a model built with the same options.
    return build_model(
        "mobilenet",
        TEST_MODELS_DIR / "mobilenet",
        train_synthetic=FIXTURE_TRAIN_IMAGES,
        epochs=FIXTURE_EPOCHS,
        seed=FIXTURE_SEED,
    )


@pytest.fixture(scope="session")
def vgg19_dir() -> Path:
    """VGG19 as published, random weights, with dr_model.json (224×224×3 ``image`` → ``probabilities``)."""
    from serving.zoo import build_model

    return build_model("vgg19", TEST_MODELS_DIR / "vgg19", seed=FIXTURE_SEED)


@pytest.fixture(scope="session")
def foreign_savedmodel_dir() -> Path:
    """A SavedModel saved the way the published study did (plain ``tf.saved_model.save``), no dr_model.json.

    Signature ``serving_default``: 224×224×3 float32 input named ``inputs`` → 5 softmax outputs ``output_0``.
    """

    def write(path: Path) -> None:
        import tensorflow as tf

        tf.saved_model.save(_foreign_model(224, "input_1"), str(path))

    return _build_foreign("foreign-224-v1", write)


@pytest.fixture(scope="session")
def savedmodel_299_dir() -> Path:
    """A Keras ``model.export`` SavedModel: 299×299×3 ``input_1`` → 5 outputs ``output_0``, no metadata."""

    def write(path: Path) -> None:
        _foreign_model(299, "input_1").export(str(path), verbose=False)

    return _build_foreign("export-299-v1", write)
