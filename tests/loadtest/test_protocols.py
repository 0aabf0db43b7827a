from __future__ import annotations

import base64
import json

import httpx
import pytest

from loadtest.images import ImageSource
from loadtest.protocols import PROTOCOLS, build_request, read_answer
from loadtest.targets import Target

IMAGES = ImageSource.synthetic(count=2, size=256, seed=3)


def test_v1_request_is_the_raw_image() -> None:
    image = IMAGES.images[0]
    prepared = build_request("v1", "mobilenet", image, host="m.example.com")
    assert prepared.path == "/v1/models/mobilenet:predict"
    assert prepared.body == image.data
    assert prepared.headers == {"Host": "m.example.com", "Content-Type": "image/jpeg"}


def test_v2_request_carries_the_image_base64() -> None:
    image = IMAGES.images[1]
    prepared = build_request("v2", "vgg19", image)
    body = json.loads(prepared.body)
    assert prepared.path == "/v2/models/vgg19/infer"
    (entry,) = body["inputs"]
    assert entry["datatype"] == "BYTES" and entry["shape"] == [1]
    assert base64.b64decode(entry["data"][0]) == image.data


def test_unknown_protocol() -> None:
    with pytest.raises(ValueError, match="v1"):
        build_request("grpc", "m", IMAGES.images[0])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_real_predictor_answers_are_read(predictor: Target, protocol: str) -> None:
    prepared = build_request(protocol, predictor.model, IMAGES.images[0])
    response = httpx.post(
        predictor.base_url + prepared.path, content=prepared.body, headers=prepared.headers, timeout=60
    )
    answer = read_answer(response)
    assert answer.ok, answer.problem
    assert answer.prediction_ms is not None and answer.prediction_ms > 0
    assert answer.server_ms is not None and answer.server_ms >= answer.prediction_ms
    assert answer.labels is not None
    assert answer.labels["pool"] == "testpool"
    assert answer.labels["instance_type"] == "m5.xlarge"
    assert answer.labels["model"] == "mobilenet"


def test_real_predictor_error_is_a_problem(predictor: Target) -> None:
    response = httpx.post(
        f"{predictor.base_url}/v1/models/mobilenet:predict",
        content=b"not an image",
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )
    answer = read_answer(response)
    assert not answer.ok
    assert answer.problem.startswith("HTTP 400: ")
