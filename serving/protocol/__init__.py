"""The wire protocols, one codec each: KServe V1, Open Inference (V2, JSON and binary), SageMaker.

Each codec decodes a request body into a ``Batch`` in one place and encodes the gradings into its answer;
``Batch.codec`` carries the codec from the route to ``DRModel.postprocess``, so no code dispatches on a
protocol's name. ``common`` holds what they share.
"""

from __future__ import annotations

from serving.protocol.common import (
    IMAGE_MEDIA_TYPES,
    JSON_MEDIA_TYPES,
    Batch,
    Codec,
    Encoded,
    ImageBatch,
    TensorBatch,
    Timings,
    media_type,
    parse_json,
)
from serving.protocol.sagemaker import SAGEMAKER
from serving.protocol.v1 import V1
from serving.protocol.v2 import BINARY_HEADER, V2, V2Input, V2Request

__all__ = [
    "BINARY_HEADER",
    "CODECS",
    "IMAGE_MEDIA_TYPES",
    "JSON_MEDIA_TYPES",
    "SAGEMAKER",
    "V1",
    "V2",
    "Batch",
    "Codec",
    "Encoded",
    "ImageBatch",
    "TensorBatch",
    "Timings",
    "V2Input",
    "V2Request",
    "media_type",
    "parse_json",
]

#: Codec by protocol name.
CODECS: dict[str, Codec] = {codec.name: codec for codec in (V1, V2, SAGEMAKER)}
