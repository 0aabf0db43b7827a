"""The two published DR classifiers: a Keras application backbone with a small dense head.

Backbone (``include_top=False``, ``pooling="avg"``, ``weights=None``) → Dense 128 relu → Dense 128 relu →
Dense 5 softmax, exactly as in the published study, so parameter counts match its table (3,377,221 and
20,107,205 at 224×224×3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from serving.metadata import DEFAULT_CLASS_NAMES

if TYPE_CHECKING:
    import keras

__all__ = ["ARCHITECTURES", "ArchitectureInfo", "build_keras_model", "get_architecture"]


@dataclass(frozen=True, kw_only=True)
class ArchitectureInfo:
    """Published facts about one architecture at 224×224×3, used by the benchmark and the model info."""

    name: str
    #: Trainable + non-trainable parameters with the 5-class head.
    parameters: int
    #: Multiply-accumulates counted as 2 FLOP, one 224×224 image (the figure cited for the backbone).
    gflops: float
    #: Pixel scaling the published server applied (see ``serving.metadata.SCALINGS``).
    scaling: str = "minus_one_to_one"
    #: SavedModel size reported by the study, MB.
    published_savedmodel_mb: float
    #: Whether the backbone has batch norm; one without trains through a batch-norm twin
    #: (:mod:`serving.zoo.batch_norm_fold`).
    batch_norm: bool


ARCHITECTURES: dict[str, ArchitectureInfo] = {
    "mobilenet": ArchitectureInfo(
        name="mobilenet", parameters=3_377_221, gflops=1.14, published_savedmodel_mb=15.7, batch_norm=True
    ),
    "vgg19": ArchitectureInfo(
        name="vgg19", parameters=20_107_205, gflops=39.0, published_savedmodel_mb=77.7, batch_norm=False
    ),
}

#: Width of the two hidden dense layers of the head.
HEAD_UNITS = 128


def get_architecture(arch: str) -> ArchitectureInfo:
    """Look up an architecture by name; ``ValueError`` for an unknown one."""
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"Architecture must be one of {sorted(ARCHITECTURES)!r}, got {arch!r}.") from None


def build_keras_model(arch: str, *, input_size: int = 224, seed: int | None = None) -> keras.Model:
    """Build the published classifier (random initial weights) for ``arch`` at ``input_size``² RGB."""
    get_architecture(arch)
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 32:
        raise ValueError(f"Input size must be an integer >= 32 pixels, got {input_size!r}.")
    import keras

    if seed is not None:
        keras.utils.set_random_seed(seed)
    shape = (input_size, input_size, 3)
    if arch == "mobilenet":
        backbone = keras.applications.MobileNet(
            input_shape=shape, include_top=False, weights=None, pooling="avg"
        )
    else:
        backbone = keras.applications.VGG19(input_shape=shape, include_top=False, weights=None, pooling="avg")
    inputs = keras.Input(shape=shape, name="image")
    x = backbone(inputs)
    x = keras.layers.Dense(HEAD_UNITS, activation="relu", name="dense_1")(x)
    x = keras.layers.Dense(HEAD_UNITS, activation="relu", name="dense_2")(x)
    outputs = keras.layers.Dense(len(DEFAULT_CLASS_NAMES), activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=arch)
