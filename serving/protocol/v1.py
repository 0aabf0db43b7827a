"""KServe V1: a raw ``image/jpeg|png`` body, or ``{"instances": [{"image_b64": "..."}, ...]}``.

Answer: ``{"predictions": [...], "model", "batch_size", "prediction_ms", "server_ms"}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from serving.errors import InvalidRequest, UnsupportedMediaType
from serving.grading import Grading
from serving.limits import Limits
from serving.protocol.common import (
    JSON_MEDIA_TYPES,
    RAW_MEDIA_TYPES,
    ImageBatch,
    Timings,
    b64decode,
    check_batch,
    describe,
    media_type,
    parse_json,
    raw_image,
)

__all__ = ["V1", "V1Codec", "parse", "response"]


def parse(body: Any, *, content_type: str | None, limits: Limits) -> ImageBatch:
    """A V1 predict body: raw image bytes, JSON bytes, or JSON already parsed (dict) → encoded images."""
    if isinstance(body, bytes | bytearray | memoryview):
        kind = media_type(content_type)
        if kind in JSON_MEDIA_TYPES:
            body = parse_json(bytes(body))
        elif kind in RAW_MEDIA_TYPES:
            return ImageBatch(images=(raw_image(bytes(body), content_type=content_type),), codec=V1)
        else:
            shown = kind or "none"
            raise UnsupportedMediaType(
                f"Expected content type image/jpeg, image/png or application/json, got {shown[:80]!r}.",
                reason="wrong_content_type",
            )
    if not isinstance(body, dict) or "instances" not in body:
        raise InvalidRequest(
            f'Expected a JSON object with "instances", got {describe(body)}.', reason="invalid_json"
        )
    instances = body["instances"]
    if not isinstance(instances, list) or not instances:
        raise InvalidRequest(
            f'Expected "instances" to be a non-empty list, got {describe(instances)}.', reason="invalid_json"
        )
    check_batch(len(instances), limits)
    images = []
    for index, instance in enumerate(instances):
        encoded = instance.get("image_b64", instance.get("b64")) if isinstance(instance, dict) else instance
        if not isinstance(encoded, str):
            raise InvalidRequest(
                f'Expected instances[{index}] to be {{"image_b64": "<base64 JPEG/PNG>"}}, '
                f"got {describe(instance)}.",
                reason="invalid_json",
            )
        images.append(b64decode(encoded, where=f"instances[{index}].image_b64", limits=limits))
    request_id = body.get("id")
    return ImageBatch(
        images=tuple(images), codec=V1, request_id=request_id if isinstance(request_id, str) else None
    )


def response(
    gradings: Sequence[Grading], *, model: str, prediction_ms: float, server_ms: float
) -> dict[str, Any]:
    """The V1 answer: one ``predictions`` item per image plus batch timings."""
    return {
        "predictions": [grading.to_dict() for grading in gradings],
        "model": model,
        "batch_size": len(gradings),
        "prediction_ms": round(prediction_ms, 3),
        "server_ms": round(server_ms, 3),
    }


class V1Codec:
    """The KServe V1 codec."""

    name = "v1"

    def decode(
        self, body: Any, headers: Mapping[str, str], *, limits: Limits, input_size: tuple[int, int]
    ) -> ImageBatch:
        """Raw image or ``instances`` JSON → images."""
        return parse(body, content_type=headers.get("content-type"), limits=limits)

    def encode(
        self, gradings: Sequence[Grading], *, model: str, request_id: str | None, timings: Timings
    ) -> dict[str, Any]:
        """The V1 answer."""
        return response(
            gradings, model=model, prediction_ms=timings.prediction_ms, server_ms=timings.server_ms
        )


V1 = V1Codec()
