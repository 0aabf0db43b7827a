"""SageMaker: ``POST /invocations``: one image → ``predictions``, ``requestLatency``, ``predictionLatency``.

Latencies are seconds, as the published study's SageMaker endpoint wrote them; ``predictionLatency`` is the
backend call alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from serving.grading import Grading
from serving.limits import Limits
from serving.protocol.common import ImageBatch, Timings, raw_image

__all__ = ["SAGEMAKER", "SageMakerCodec", "response"]


def response(grading: Grading, *, request_s: float, prediction_s: float) -> dict[str, Any]:
    """The published study's SageMaker answer for one image."""
    return {
        "predictions": list(grading.probabilities),
        "requestLatency": round(request_s, 6),
        "predictionLatency": round(prediction_s, 6),
    }


class SageMakerCodec:
    """The SageMaker codec: one raw image in, one answer out."""

    name = "sagemaker"

    def decode(
        self, body: Any, headers: Mapping[str, str], *, limits: Limits, input_size: tuple[int, int]
    ) -> ImageBatch:
        """One raw image (content type an image type, octet-stream or absent)."""
        return ImageBatch(images=(raw_image(body, content_type=headers.get("content-type")),), codec=self)

    def encode(
        self, gradings: Sequence[Grading], *, model: str, request_id: str | None, timings: Timings
    ) -> dict[str, Any]:
        """The SageMaker answer for the one image."""
        return response(
            gradings[0], request_s=timings.server_ms / 1000, prediction_s=timings.prediction_ms / 1000
        )


SAGEMAKER = SageMakerCodec()
