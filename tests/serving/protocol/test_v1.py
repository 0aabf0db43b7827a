"""The V1 codec: raw image or ``instances`` JSON in, predictions out."""

from __future__ import annotations

import base64
import json

import pytest

from serving.errors import InvalidImage, InvalidRequest, TooLarge, UnsupportedMediaType
from serving.grading import Grading
from serving.limits import Limits
from serving.protocol import V1, v1

LIMITS = Limits()
JPEG = b"\xff\xd8\xff\xe0 pretend jpeg"
PNG = b"\x89PNG\r\n\x1a\n pretend png"
B64 = base64.b64encode(JPEG).decode()


@pytest.mark.parametrize(
    "content_type",
    ["image/jpeg", "image/png", "image/jpeg; charset=binary", "application/octet-stream", "IMAGE/PNG"],
    ids=["jpeg", "png", "with-parameter", "octet-stream", "upper-case"],
)
def test_v1_raw_image(content_type: str) -> None:
    batch = v1.parse(JPEG, content_type=content_type, limits=LIMITS)
    assert batch.images == (JPEG,)
    assert batch.codec is V1


def test_v1_json_batch_from_bytes_and_from_parsed_json() -> None:
    document = {"instances": [{"image_b64": B64}, {"b64": base64.b64encode(PNG).decode()}, B64]}
    from_bytes = v1.parse(
        json.dumps(document).encode(), content_type="application/json; charset=utf-8", limits=LIMITS
    )
    from_dict = v1.parse(document, content_type="application/json", limits=LIMITS)
    assert from_bytes.images == from_dict.images == (JPEG, PNG, JPEG)


def test_v1_data_url_prefix_is_accepted() -> None:
    batch = v1.parse(
        {"instances": [{"image_b64": "data:image/jpeg;base64," + B64}]}, content_type=None, limits=LIMITS
    )
    assert batch.images == (JPEG,)


@pytest.mark.parametrize(
    ("body", "content_type", "error", "message"),
    [
        (JPEG, "text/plain", UnsupportedMediaType, "got 'text/plain'"),
        (JPEG, None, UnsupportedMediaType, "got 'none'"),
        (b"{nope", "application/json", InvalidRequest, "got malformed JSON"),
        (
            {"inputs": []},
            "application/json",
            InvalidRequest,
            "with \"instances\", got an object with keys ['inputs']",
        ),
        ({"instances": []}, "application/json", InvalidRequest, "non-empty list, got a list of 0 items"),
        ({"instances": [{"image": B64}]}, None, InvalidRequest, 'instances[0] to be {"image_b64"'),
        ({"instances": [{"image_b64": "%%%not base64%%%"}]}, None, InvalidRequest, "valid base64"),
        ({"instances": [{"image_b64": ""}]}, None, InvalidImage, "got an empty string"),
    ],
    ids=[
        "text-plain",
        "no-content-type",
        "malformed-json",
        "no-instances",
        "empty-instances",
        "no-image-key",
        "bad-base64",
        "empty-base64",
    ],
)
def test_v1_bad_bodies(body: object, content_type: str | None, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        v1.parse(body, content_type=content_type, limits=LIMITS)
    assert message in str(info.value)


def test_v1_batch_limit() -> None:
    with pytest.raises(TooLarge, match="at most 2 images per request, got 3"):
        v1.parse({"instances": [B64] * 3}, content_type=None, limits=Limits(max_batch=2))


def test_v1_base64_longer_than_the_byte_limit() -> None:
    with pytest.raises(TooLarge, match="at most 10 bytes"):
        v1.parse({"instances": [B64]}, content_type=None, limits=Limits(max_image_bytes=10))


GRADINGS = [
    Grading(grade=0, label="No DR", probabilities=(0.6, 0.1, 0.1, 0.1, 0.1), referable=False),
    Grading(grade=3, label="Severe", probabilities=(0.1, 0.1, 0.1, 0.6, 0.1), referable=True),
]


def test_v1_response_shape() -> None:
    answer = v1.response(GRADINGS, model="mobilenet", prediction_ms=9.61234, server_ms=14.2)
    assert answer == {
        "predictions": [g.to_dict() for g in GRADINGS],
        "model": "mobilenet",
        "batch_size": 2,
        "prediction_ms": 9.612,
        "server_ms": 14.2,
    }
