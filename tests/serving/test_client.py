"""``serving.client``: each protocol is answered by the real predictor and read back the same way."""

from __future__ import annotations

import base64
import json
import struct

import httpx
import pytest

from serving import client as wire
from serving.client import PROTOCOLS, build_request, read_answer


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_protocol_is_answered_and_read(
    client: httpx.Client, fundus_jpegs: list[bytes], protocol: str
) -> None:
    prepared = build_request(protocol, "mobilenet", fundus_jpegs[2])
    response = client.post(prepared.path, content=prepared.body, headers=prepared.headers)
    answer = read_answer(response.status_code, response.headers, response.content)
    assert answer.ok, answer.problem
    assert answer.status == 200
    assert answer.prediction_ms is not None and answer.prediction_ms > 0
    assert answer.labels["model"] == "mobilenet"
    assert answer.labels["pool"] == "test-pool"


def test_png_content_type_and_host_header() -> None:
    prepared = build_request("sagemaker", "m", b"\x89PNG", content_type="image/png", host="m.example.com")
    assert prepared == wire.PreparedRequest(
        "/invocations", b"\x89PNG", {"Host": "m.example.com", "Content-Type": "image/png"}
    )


def test_v2_json_and_binary_carry_the_same_bytes() -> None:
    image = b"\xff\xd8 a jpeg"
    as_json = json.loads(build_request("v2", "m", image).body)
    assert base64.b64decode(as_json["inputs"][0]["data"][0]) == image
    binary = build_request("v2-binary", "m", image)
    head_length = int(binary.headers[wire.V2_BINARY_HEADER])
    head = json.loads(binary.body[:head_length])
    rest = binary.body[head_length:]
    assert head["inputs"][0]["parameters"]["binary_data_size"] == len(rest)
    assert struct.unpack("<I", rest[:4]) == (len(image),) and rest[4:] == image


def test_unknown_protocol() -> None:
    with pytest.raises(ValueError, match="grpc"):
        build_request("grpc", "m", b"x")


def test_answers_are_read_from_headers_in_any_case_and_from_the_body() -> None:
    headers = {"x-dr-queue-ms": "7.5", "X-DR-SERVER-MS": "20", "X-DR-Pool": "p"}
    body = json.dumps({"predictions": [[1.0]], "prediction_ms": 3.25}).encode()
    answer = read_answer(200, headers, body)
    assert (answer.ok, answer.queue_ms, answer.server_ms, answer.prediction_ms) == (True, 7.5, 20.0, 3.25)
    assert answer.labels == {"pool": "p"}
    sagemaker = read_answer(200, {}, json.dumps({"predictions": [[1]], "predictionLatency": 0.012}))
    assert sagemaker.prediction_ms == pytest.approx(12.0)


@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [
        (400, b'{"error": "Expected an image, got 3 bytes."}', "HTTP 400: Expected an image, got 3 bytes."),
        (503, b"", "HTTP 503"),
        (200, b"<html>", "answer is not JSON"),
        (200, b'{"result": 1}', "answer has neither 'predictions' nor 'outputs'"),
    ],
    ids=["error-json", "error-empty", "not-json", "wrong-shape"],
)
def test_problems_are_one_phrase(status: int, body: bytes, problem: str) -> None:
    answer = read_answer(status, {}, body)
    assert not answer.ok and answer.problem == problem
