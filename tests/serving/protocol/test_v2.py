"""The V2 codec: JSON and binary framing, BYTES images or FP32 pixels, answers and metadata."""

from __future__ import annotations

import base64
import json
import struct

import numpy as np
import pytest

from serving import protocol
from serving.errors import InvalidRequest, TooLarge
from serving.grading import Grading
from serving.limits import Limits
from serving.protocol import V2, v2

LIMITS = Limits()
JPEG = b"\xff\xd8\xff\xe0 pretend jpeg"
PNG = b"\x89PNG\r\n\x1a\n pretend png"
B64 = base64.b64encode(JPEG).decode()


def _binary(document: dict[str, object], *chunks: bytes) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(document).encode()
    return head + b"".join(chunks), {v2.BINARY_HEADER: str(len(head))}


def test_v2_bytes_json() -> None:
    body = json.dumps(
        {
            "id": "r1",
            "inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [2], "data": [B64, B64]}],
        }
    ).encode()
    request = v2.parse_body(body, headers={})
    batch = v2.to_batch(request, height=224, width=224, limits=LIMITS)
    assert isinstance(batch, protocol.ImageBatch)
    assert batch.images == (JPEG, JPEG)
    assert (batch.codec, batch.request_id) == (V2, "r1")


def test_v2_bytes_binary_extension() -> None:
    raw = struct.pack("<I", len(JPEG)) + JPEG + struct.pack("<I", len(PNG)) + PNG
    document = {
        "inputs": [
            {
                "name": "image_bytes",
                "datatype": "BYTES",
                "shape": [2],
                "parameters": {"binary_data_size": len(raw)},
            }
        ]
    }
    body, headers = _binary(document, raw)
    batch = v2.to_batch(v2.parse_body(body, headers=headers), height=224, width=224, limits=LIMITS)
    assert isinstance(batch, protocol.ImageBatch)
    assert batch.images == (JPEG, PNG)


def test_v2_fp32_json_and_binary_agree() -> None:
    tensor = np.random.default_rng(0).uniform(-1, 1, size=(2, 4, 4, 3)).astype(np.float32)
    json_body = json.dumps(
        {
            "inputs": [
                {"name": "image", "datatype": "FP32", "shape": [2, 4, 4, 3], "data": tensor.ravel().tolist()}
            ]
        }
    ).encode()
    binary_body, headers = _binary(
        {
            "inputs": [
                {
                    "name": "image",
                    "datatype": "FP32",
                    "shape": [2, 4, 4, 3],
                    "parameters": {"binary_data_size": 384},
                }
            ]
        },
        tensor.tobytes(),
    )
    from_json = v2.to_batch(v2.parse_body(json_body, headers={}), height=4, width=4, limits=LIMITS)
    from_binary = v2.to_batch(v2.parse_body(binary_body, headers=headers), height=4, width=4, limits=LIMITS)
    assert isinstance(from_json, protocol.TensorBatch) and isinstance(from_binary, protocol.TensorBatch)
    np.testing.assert_array_equal(from_json.tensor, tensor)
    np.testing.assert_array_equal(from_binary.tensor, tensor)


def _fp32(shape: list[int], data: list[object]) -> v2.V2Request:
    return v2.V2Request(inputs=[v2.V2Input(name="image", datatype="FP32", shape=shape, data=data)])


@pytest.mark.parametrize(
    ("request_", "message", "reason"),
    [
        (
            _fp32([1, 3, 4, 3], [0.0] * 36),
            "Expected an FP32 input shaped ['N', 4, 4, 3], got [1, 3, 4, 3]",
            "wrong_shape",
        ),
        (
            _fp32([1, 4, 4, 3], [0.0] * 47),
            "Expected 48 FP32 values for shape [1, 4, 4, 3], got 47",
            "wrong_shape",
        ),
        (_fp32([1, 4, 4, 3], ["x"] * 48), "Expected FP32 data to be numbers", "wrong_dtype"),
        (_fp32([1, 4, 4, 3], [float("nan")] + [0.0] * 47), "got 1 NaN or infinite values", "non_finite"),
        (_fp32([1, 4, 4, 3], [float("inf")] * 2 + [0.0] * 46), "got 2 NaN or infinite values", "non_finite"),
        (
            v2.V2Request(inputs=[v2.V2Input(name="image", datatype="INT32", shape=[1], data=[1])]),
            "datatype 'BYTES' (encoded images) or 'FP32' (pixels), got 'INT32'",
            "wrong_dtype",
        ),
        (
            v2.V2Request(inputs=[v2.V2Input(name="b", datatype="BYTES", shape=[2], data=[B64])]),
            "Expected 2 images as the shape [2] says, got 1",
            "wrong_shape",
        ),
        (
            v2.V2Request(inputs=[v2.V2Input(name="b", datatype="BYTES", shape=[1, 2], data=[B64])]),
            "BYTES input shaped [N] (or [N, 1]), got [1, 2]",
            "wrong_shape",
        ),
    ],
    ids=[
        "wrong-shape",
        "wrong-count",
        "strings-as-fp32",
        "nan",
        "inf",
        "int32",
        "bytes-count",
        "bytes-shape",
    ],
)
def test_v2_bad_tensors(request_: v2.V2Request, message: str, reason: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        v2.to_batch(request_, height=4, width=4, limits=LIMITS)
    assert message in str(info.value)
    assert info.value.reason == reason


def test_v2_nan_literal_in_json_is_reported_as_nan() -> None:
    body = b'{"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 1, 3], "data": [NaN, 0, 0]}]}'
    with pytest.raises(InvalidRequest, match="got 1 NaN or infinite values"):
        v2.to_batch(v2.parse_body(body, headers={}), height=1, width=1, limits=LIMITS)


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b"", {}, "got an empty body"),
        (b"[1, 2]", {}, 'with "inputs", got a list of 2 items'),
        (b'{"inputs": {}}', {}, '"inputs" to be a non-empty list'),
        (
            b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1]}]}',
            {},
            "non-negative integers, got [-1]",
        ),
        (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}]}', {}, 'carry "data" or binary data'),
        (b"{}", {v2.BINARY_HEADER: "ten"}, "to be an integer, got 'ten'"),
        (b"{}", {v2.BINARY_HEADER: "99"}, "between 1 and the body length 2, got 99"),
    ],
    ids=[
        "empty",
        "not-an-object",
        "inputs-not-list",
        "negative-shape",
        "no-data",
        "bad-header",
        "header-too-big",
    ],
)
def test_v2_malformed_bodies(body: bytes, headers: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        v2.parse_body(body, headers=headers)
    assert message in str(info.value)


def test_v2_binary_size_beyond_the_body() -> None:
    body, headers = _binary(
        {
            "inputs": [
                {"name": "b", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 100}}
            ]
        },
        b"1234",
    )
    with pytest.raises(InvalidRequest, match="binary_data_size to fit the 4 binary bytes left, got 100"):
        v2.parse_body(body, headers=headers)


def test_v2_truncated_binary_element() -> None:
    raw = struct.pack("<I", 50) + b"short"
    request = v2.V2Request(inputs=[v2.V2Input(name="b", datatype="BYTES", shape=[1], raw=raw)])
    with pytest.raises(InvalidRequest, match="Expected 50 bytes for binary element 0, got 5"):
        v2.to_batch(request, height=4, width=4, limits=LIMITS)


def test_v2_batch_limit() -> None:
    request = _fp32([3, 1, 1, 3], [0.0] * 9)
    with pytest.raises(TooLarge, match="at most 2 images per request, got 3"):
        v2.to_batch(request, height=1, width=1, limits=Limits(max_batch=2))


GRADINGS = [
    Grading(grade=0, label="No DR", probabilities=(0.6, 0.1, 0.1, 0.1, 0.1), referable=False),
    Grading(grade=3, label="Severe", probabilities=(0.1, 0.1, 0.1, 0.6, 0.1), referable=True),
]


def test_v2_response_shape() -> None:
    answer = v2.response(GRADINGS, model="mobilenet", request_id="r1", prediction_ms=9.6, server_ms=14.2)
    outputs = {output["name"]: output for output in answer["outputs"]}
    assert answer["id"] == "r1" and answer["model_name"] == "mobilenet"
    assert outputs["grade"] == {"name": "grade", "datatype": "INT64", "shape": [2], "data": [0, 3]}
    assert outputs["probabilities"]["shape"] == [2, 5] and outputs["probabilities"]["datatype"] == "FP32"
    assert outputs["probabilities"]["data"] == [0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.6, 0.1]
    assert outputs["referable"] == {
        "name": "referable",
        "datatype": "BOOL",
        "shape": [2],
        "data": [False, True],
    }
    assert outputs["label"] == {
        "name": "label",
        "datatype": "BYTES",
        "shape": [2],
        "data": ["No DR", "Severe"],
    }
    assert answer["parameters"] == {"prediction_ms": 9.6, "server_ms": 14.2}


def test_v2_metadata_types() -> None:
    assert v2.input_types(input_name="image", height=299, width=299) == [
        {"name": "image_bytes", "datatype": "BYTES", "shape": [-1]},
        {"name": "image", "datatype": "FP32", "shape": [-1, 299, 299, 3]},
    ]
    assert [o["name"] for o in v2.output_types(num_classes=5)] == [
        "grade",
        "probabilities",
        "referable",
        "label",
    ]
