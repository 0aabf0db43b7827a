"""The SageMaker codec: one raw image in, the published study's answer out."""

from __future__ import annotations

import pytest

from serving import protocol
from serving.errors import InvalidImage, UnsupportedMediaType
from serving.grading import Grading
from serving.limits import Limits
from serving.protocol import SAGEMAKER, sagemaker

LIMITS = Limits()
JPEG = b"\xff\xd8\xff\xe0 pretend jpeg"


def test_sagemaker_accepts_missing_or_image_content_type() -> None:
    def decode(body: bytes, headers: dict[str, str]) -> protocol.Batch:
        return SAGEMAKER.decode(body, headers, limits=LIMITS, input_size=(224, 224))

    assert decode(JPEG, {}).images == (JPEG,)
    assert decode(JPEG, {"content-type": "application/x-image"}).codec is SAGEMAKER
    with pytest.raises(UnsupportedMediaType):
        decode(JPEG, {"content-type": "application/json"})
    with pytest.raises(InvalidImage, match="empty body"):
        decode(b"", {"content-type": "image/jpeg"})


GRADINGS = [
    Grading(grade=0, label="No DR", probabilities=(0.6, 0.1, 0.1, 0.1, 0.1), referable=False),
    Grading(grade=3, label="Severe", probabilities=(0.1, 0.1, 0.1, 0.6, 0.1), referable=True),
]


def test_sagemaker_response_shape() -> None:
    answer = sagemaker.response(GRADINGS[1], request_s=0.0142, prediction_s=0.0096)
    assert answer == {
        "predictions": [0.1, 0.1, 0.1, 0.6, 0.1],
        "requestLatency": 0.0142,
        "predictionLatency": 0.0096,
    }
