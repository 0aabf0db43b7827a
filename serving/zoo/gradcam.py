"""Grad-CAM of the last convolutional block, as a SavedModel signature written beside ``serving_default``.

Grad-CAM (Selvaraju et al., 2017): the gradient of the predicted grade's probability with respect to the last
convolutional feature map, averaged over the map's positions, weighs its channels; the ReLU of the weighted
sum, divided by its maximum, is a heat map in [0, 1] of where the evidence for that grade lies. The signature
``explain`` takes the same ``image`` input as ``serving_default`` and returns ``probabilities`` [N, classes]
and ``heatmap`` [N, h, w] (the feature map's size, 7×7 for MobileNet at 224 px).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from serving.metadata import ModelMetadata

if TYPE_CHECKING:
    import keras

__all__ = ["EXPLAIN_SIGNATURE", "explain_function", "last_conv_layer"]

#: Name of the signature (``serving.explain`` reads it by this name).
EXPLAIN_SIGNATURE = "explain"


def last_conv_layer(model: keras.Model) -> tuple[keras.Model, keras.layers.Layer, list[keras.layers.Layer]]:
    """The backbone, its last layer with a 4-D output that is not a pooling layer, and the layers after it.

    ``ValueError`` when ``model`` is not a backbone followed by a head (as ``build_keras_model`` makes).
    """
    import keras

    for index, layer in enumerate(model.layers):
        if isinstance(layer, keras.Model):
            backbone, head = layer, model.layers[index + 1 :]
            break
    else:
        raise ValueError(f"Expected a backbone model inside {model.name!r}, found none.")
    for layer in reversed(backbone.layers):
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", ())
        pooling = "pool" in type(layer).__name__.lower()
        if len(shape) == 4 and not pooling:
            return backbone, layer, list(head)
    raise ValueError(f"Expected a convolutional layer in backbone {backbone.name!r}, found none.")


def explain_function(model: keras.Model, metadata: ModelMetadata) -> Any:
    """A ``tf.function`` with the serving input signature returning ``probabilities`` and ``heatmap``."""
    import keras
    import tensorflow as tf

    backbone, layer, head = last_conv_layer(model)
    features = keras.Model(backbone.inputs, [layer.output, backbone.output], name=f"{backbone.name}_gradcam")
    height, width = metadata.input_size

    @tf.function(
        input_signature=[
            tf.TensorSpec(
                [None, height, width, metadata.input.channels], tf.float32, name=metadata.input.name
            )
        ]
    )
    def explain(image: tf.Tensor) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            conv, pooled = features(image, training=False)
            tape.watch(conv)
            x = pooled
            for step in head:
                x = step(x, training=False)
            grade = tf.argmax(x, axis=1)
            score = tf.gather(x, grade, batch_dims=1)
        gradients = tape.gradient(score, conv)
        weights = tf.reduce_mean(gradients, axis=[1, 2], keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * conv, axis=-1))
        cam = cam / (tf.reduce_max(cam, axis=[1, 2], keepdims=True) + 1e-12)
        return {metadata.output.name: x, "heatmap": cam}

    return explain
