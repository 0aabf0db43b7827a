"""Train a convolutional chain without batch norm (VGG19) through a twin that has it, then fold it back.

VGG19 has no batch normalisation: trained from random weights on a CPU it needs hours and a careful start.
The twin built here is the same chain with a ``BatchNormalization`` between every convolution and its
activation (conv → BN → ReLU), which trains in minutes. In inference mode batch norm is a per-channel affine
map, so after training it is folded exactly into the convolution it follows: with ``s = γ / √(σ² + ε)``,
``kernel ← kernel · s`` and ``bias ← (bias − μ) · s + β``. The original model then holds the trained weights
with its published architecture and parameter count unchanged (Ioffe & Szegedy 2015; the folding is what
TF Lite's converter does for conv + BN graphs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

__all__ = ["BatchNormTwin", "batch_norm_twin"]


@dataclass(frozen=True)
class BatchNormTwin:
    """The training twin of ``original`` and, per convolution, the original, twin and batch-norm layers."""

    original: keras.Model
    model: keras.Model
    convolutions: tuple[tuple[keras.layers.Conv2D, keras.layers.Conv2D, keras.layers.BatchNormalization], ...]
    copies: tuple[tuple[keras.layers.Layer, keras.layers.Layer], ...]

    @classmethod
    def pair(cls, original: keras.Model, twin: keras.Model) -> BatchNormTwin:
        """Pair ``original``'s layers with those of ``twin`` by name.

        ``twin`` was built by :func:`batch_norm_twin`, perhaps reloaded from a checkpoint since: a convolution
        keeps its name there, its batch norm is ``<name>_bn``.
        """
        import keras

        found = {layer.name: layer for layer in twin.layers}
        convolutions = []
        copies = []
        try:
            for layer in _chain(original):
                if isinstance(layer, keras.layers.Conv2D):
                    convolutions.append((layer, found[layer.name], found[f"{layer.name}_bn"]))
                elif layer.weights:
                    copies.append((layer, found[layer.name]))
        except KeyError as missing:
            raise ValueError(
                f"{twin.name!r} is not the batch-norm twin of {original.name!r}: no layer {missing}."
            ) from None
        return cls(original, twin, tuple(convolutions), tuple(copies))

    def fold(self) -> None:
        """Write the twin's weights into the original, each batch norm folded into its convolution."""
        for original, conv, norm in self.convolutions:
            kernel, bias = conv.get_weights()
            gamma, beta, mean, variance = norm.get_weights()
            scale = gamma / np.sqrt(variance + norm.epsilon)
            original.set_weights([kernel * scale, (bias - mean) * scale + beta])
        for original, copy in self.copies:
            original.set_weights(copy.get_weights())


def batch_norm_twin(model: keras.Model) -> BatchNormTwin:
    """Build the conv → BN → activation twin of ``model``, a plain chain of layers (nested models flattened).

    Convolutions start from He-normal kernels (the right scale for ReLU) and zero biases; every other layer
    with weights starts from a copy of the original's. ``ValueError`` if ``model`` is not a plain chain of
    convolutions, pooling, flatten and dense layers.
    """
    import keras

    inputs = keras.Input(model.input_shape[1:], name="image")
    outputs = inputs
    for layer in _chain(model):
        if isinstance(layer, keras.layers.Conv2D):
            config = layer.get_config()
            conv = keras.layers.Conv2D.from_config(
                config
                | {"activation": "linear", "kernel_initializer": "he_normal", "bias_initializer": "zeros"}
            )
            # Momentum is the trainer's: serving.zoo.train and fit set it on every batch norm they train.
            norm = keras.layers.BatchNormalization(name=f"{layer.name}_bn")
            activation = keras.layers.Activation(config["activation"], name=f"{layer.name}_act")
            outputs = activation(norm(conv(outputs)))
        else:
            copy = layer.__class__.from_config(layer.get_config())
            outputs = copy(outputs)
            if layer.weights:
                copy.set_weights(layer.get_weights())
    return BatchNormTwin.pair(model, keras.Model(inputs, outputs, name=f"{model.name}_bn_twin"))


def _chain(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers of ``model`` in order, nested models flattened, input layers left out; ``ValueError`` for
    any layer other than convolution, pooling, flatten and dense."""
    import keras

    allowed = (
        keras.layers.Conv2D,
        keras.layers.MaxPooling2D,
        keras.layers.AveragePooling2D,
        keras.layers.GlobalAveragePooling2D,
        keras.layers.GlobalMaxPooling2D,
        keras.layers.Flatten,
        keras.layers.Dense,
    )
    found: list[keras.layers.Layer] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            found.extend(_chain(layer))
            continue
        # Every allowed layer takes one input and gives one output: without merge layers a model is a chain.
        if not isinstance(layer, allowed):
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) of {model.name!r}: only a plain chain of "
                "convolutions, pooling and dense layers without batch norm can be trained through a "
                "batch-norm twin."
            )
        found.append(layer)
    return found
