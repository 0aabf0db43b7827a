"""Each kind of bad input gets a 4xx JSON error naming the problem; the server keeps serving, logs stay clean.

The session's predictor runs with ``DR_MAX_IMAGE_BYTES=2000000``, ``DR_MAX_BATCH=4`` and
``--max-image-pixels=20000000`` (see ``conftest.py``).
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import numpy as np
import pytest
from PIL import Image

from serving.launcher import PredictorProcess

MODEL = "mobilenet"
V1 = f"/v1/models/{MODEL}:predict"
V2 = f"/v2/models/{MODEL}/infer"
#: A marker inside bad payloads: it must never reach the server log.
SECRET = b"PAYLOAD-MARKER-5c1e"


def _png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def _binary(document: dict[str, object], raw: bytes) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(document).encode()
    return head + raw, {
        "inference-header-content-length": str(len(head)),
        "content-type": "application/octet-stream",
    }


def _fp32(shape: list[int], data: list[float] | None = None, datatype: str = "FP32") -> dict[str, object]:
    count = int(np.prod(shape))
    return {
        "inputs": [{"name": "image", "datatype": datatype, "shape": shape, "data": data or [0.0] * count}]
    }


@dataclass(frozen=True)
class Case:
    """One bad request and what the server must answer."""

    path: str
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 400
    error: str = ""
    reason: str = ""
    method: str = "POST"


_nan_body, _nan_headers = _binary(
    {
        "inputs": [
            {
                "name": "image",
                "datatype": "FP32",
                "shape": [1, 224, 224, 3],
                "parameters": {"binary_data_size": 602112},
            }
        ]
    },
    np.full((1, 224, 224, 3), np.nan, dtype="<f4").tobytes(),
)
_b64_garbage = base64.b64encode(SECRET * 4).decode() + "!!"


def _jpeg_with_height(height: int, width: int = 300) -> bytes:
    """A fundus JPEG whose start-of-frame height was changed afterwards (the issue 11 integrity probe)."""
    from serving.zoo.synthetic import encode_image, make_fundus_image

    data = encode_image(make_fundus_image(2, size=300, seed=3), "JPEG")
    sof = data.find(b"\xff\xc0")
    return data[: sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[sof + 9 :]


_JSON = {"content-type": "application/json"}
_DEEP = b"[" * 5000 + b"]" * 5000

CASES = {
    "undecodable-bytes": Case(
        V1, SECRET * 20, {"content-type": "image/jpeg"}, 400, "do not decode", "undecodable"
    ),
    "truncated-jpeg": Case(
        V1,
        b"\xff\xd8\xff\xe0" + SECRET,
        {"content-type": "image/jpeg"},
        400,
        "truncated or corrupt JPEG",
        "undecodable",
    ),
    "empty-body": Case(V1, b"", {"content-type": "image/jpeg"}, 400, "got an empty body", "empty_body"),
    "wrong-content-type": Case(
        V1, SECRET, {"content-type": "text/plain"}, 415, "got 'text/plain'", "wrong_content_type"
    ),
    "too-many-bytes": Case(
        V1,
        SECRET + bytes(2_100_000),
        {"content-type": "image/jpeg"},
        413,
        "at most 2000000 bytes",
        "too_many_bytes",
    ),
    "body-over-request-limit": Case(
        V1,
        bytes(12_000_000),
        {"content-type": "image/jpeg"},
        413,
        "request body of at most",
        "too_many_bytes",
    ),
    "decompression-bomb": Case(
        V1,
        _png(5000, 5000, "1"),
        {"content-type": "image/png"},
        413,
        "got 5000x5000 = 25000000 pixels",
        "too_many_pixels",
    ),
    "tiny-image": Case(
        V1,
        _png(16, 16),
        {"content-type": "image/png"},
        400,
        "at least 32 pixels on each side, got 16x16",
        "too_small",
    ),
    "malformed-json-v1": Case(
        V1,
        b'{"instances": [' + SECRET,
        {"content-type": "application/json"},
        400,
        "malformed JSON",
        "malformed_json",
    ),
    "malformed-base64-v1": Case(
        V1,
        json.dumps({"instances": [{"image_b64": _b64_garbage}]}).encode(),
        {"content-type": "application/json"},
        400,
        "instances[0].image_b64 to be valid base64",
        "malformed_base64",
    ),
    "oversized-batch": Case(
        V1,
        json.dumps({"instances": [{"image_b64": "AAAA"}] * 5}).encode(),
        {"content-type": "application/json"},
        413,
        "at most 4 images per request, got 5",
        "batch_too_large",
    ),
    "no-instances": Case(
        V1,
        b'{"inputs": []}',
        {"content-type": "application/json"},
        400,
        'JSON object with "instances"',
        "invalid_json",
    ),
    "unknown-model-v1": Case(
        "/v1/models/resnet:predict",
        _png(64, 64),
        {"content-type": "image/png"},
        404,
        "Expected a model named 'mobilenet', got 'resnet'",
        "unknown_model",
    ),
    "unknown-model-v2": Case(
        "/v2/models/resnet/infer",
        json.dumps(_fp32([1, 224, 224, 3])).encode(),
        {"content-type": "application/json"},
        404,
        "got 'resnet'",
        "unknown_model",
    ),
    "unknown-model-preprocessed": Case(
        "/v1/models/resnet/preprocessed",
        _png(64, 64),
        {"content-type": "image/png"},
        404,
        "got 'resnet'",
        "unknown_model",
    ),
    "malformed-json-v2": Case(
        V2,
        b'{"inputs": [' + SECRET,
        {"content-type": "application/json"},
        400,
        "malformed JSON",
        "malformed_json",
    ),
    "malformed-base64-v2": Case(
        V2,
        json.dumps(
            {"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": [_b64_garbage]}]}
        ).encode(),
        {"content-type": "application/json"},
        400,
        "inputs[0].data[0] to be valid base64",
        "malformed_base64",
    ),
    "undecodable-bytes-v2": Case(
        V2,
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "image_bytes",
                        "datatype": "BYTES",
                        "shape": [1],
                        "data": [base64.b64encode(SECRET * 9).decode()],
                    }
                ]
            }
        ).encode(),
        {"content-type": "application/json"},
        400,
        "do not decode",
        "undecodable",
    ),
    "wrong-tensor-shape": Case(
        V2,
        json.dumps(_fp32([1, 100, 100, 3])).encode(),
        {"content-type": "application/json"},
        400,
        "shaped ['N', 224, 224, 3], got [1, 100, 100, 3]",
        "wrong_shape",
    ),
    "wrong-dtype": Case(
        V2,
        json.dumps(_fp32([1, 224, 224, 3], datatype="INT32")).encode(),
        {"content-type": "application/json"},
        400,
        "got 'INT32'",
        "wrong_dtype",
    ),
    "nan-binary-tensor": Case(
        V2, _nan_body, _nan_headers, 400, "got 150528 NaN or infinite values", "non_finite"
    ),
    "inf-json-tensor": Case(
        V2,
        json.dumps(_fp32([1, 224, 224, 3], [float("inf")] + [0.0] * 150527)).encode(),
        {"content-type": "application/json"},
        400,
        "got 1 NaN or infinite values",
        "non_finite",
    ),
    "bad-binary-header": Case(
        V2,
        b'{"inputs": []}',
        {"inference-header-content-length": "999"},
        400,
        "between 1 and the body length 14, got 999",
        "invalid_header",
    ),
    "sagemaker-undecodable": Case(
        "/invocations",
        SECRET * 3,
        {"content-type": "application/x-image"},
        400,
        "do not decode",
        "undecodable",
    ),
    "sagemaker-wrong-content-type": Case(
        "/invocations",
        b'{"a": 1}',
        {"content-type": "application/json"},
        415,
        "got content type 'application/json'",
        "wrong_content_type",
    ),
    # -- issue 11: routes not served (1), memory by design (2, 4), no 5xx (6), integrity of what is graded (5)
    "unload-route": Case(
        "/v2/repository/models/mobilenet/unload",
        b"",
        {},
        404,
        "Expected a route this server serves",
        "unknown_route",
    ),
    "load-route": Case(
        "/v2/repository/models/resnet/load", b"", {}, 404, "route this server serves", "unknown_route"
    ),
    # ":explain" is ours (Grad-CAM); a body without instances is refused like on ":predict".
    "explain-route": Case(
        "/v1/models/mobilenet:explain", b"{}", _JSON, 400, 'with "instances"', "invalid_json"
    ),
    "versioned-infer": Case(
        "/v2/models/mobilenet/versions/1/infer",
        b"{}",
        _JSON,
        404,
        "route this server serves",
        "unknown_route",
    ),
    "versioned-ready": Case(
        "/v2/models/mobilenet/versions/1/ready",
        b"",
        {},
        404,
        "route this server serves",
        "unknown_route",
        "GET",
    ),
    "model-version-query": Case(
        "/v2/models/mobilenet/ready?model_version=7",
        b"",
        {},
        404,
        "no model version",
        "unknown_version",
        "GET",
    ),
    "tall-thin-png": Case(
        V1, _png(64, 12800), {"content-type": "image/png"}, 400, "got 64x12800 (200.0:1)", "bad_aspect_ratio"
    ),
    "rgba-over-decode-budget": Case(
        V1,
        _png(4500, 4000, "RGBA"),
        {"content-type": "image/png"},
        413,
        "decodes to at most 67108864 bytes, got 4500x4000 in mode RGBA",
        "too_many_decoded_bytes",
    ),
    "jpeg-height-grown": Case(
        V1,
        _jpeg_with_height(340),
        {"content-type": "image/jpeg"},
        400,
        "premature end of data",
        "corrupt_image",
    ),
    "jpeg-height-shrunk": Case(
        V1, _jpeg_with_height(260), {"content-type": "image/jpeg"}, 400, "extraneous bytes", "corrupt_image"
    ),
    "jpeg-height-bomb": Case(
        "/invocations",
        _jpeg_with_height(65000, 65000),
        {"content-type": "image/jpeg"},
        413,
        "decompression bomb",
        "too_many_pixels",
    ),
    "deep-json-v1": Case(V1, b'{"instances": ' + _DEEP + b"}", _JSON, 400, "nested at most", "too_deep"),
    "deep-json-v2": Case(V2, b'{"inputs": ' + _DEEP + b"}", _JSON, 400, "nested at most", "too_deep"),
    "huge-integer-v2": Case(
        V2,
        b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [' + b"9" * 5000 + b"]}]}",
        _JSON,
        400,
        "malformed JSON",
        "malformed_json",
    ),
    "huge-shape-v2": Case(
        V2,
        b'{"inputs": [{"name": "x", "datatype": "BYTES", "shape": [' + b"9" * 4000 + b'], "data": []}]}',
        _JSON,
        400,
        "shape to be a list of non-negative integers, got a list of 1 items",
        "invalid_json",
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_is_refused_cleanly(
    rejections: Callable[[str], float],
    case: Case,
    client: httpx.Client,
    predictor: PredictorProcess,
    fundus_jpegs: list[bytes],
    served_backend: str,
) -> None:
    if case.path.endswith(":explain") and served_backend == "litert":
        pytest.skip("the lite image answers :explain with 501 (Grad-CAM needs TensorFlow), whatever the body")
    before = rejections(case.reason)
    response = client.request(case.method, case.path, content=case.content or None, headers=case.headers)
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert case.error in body["error"]
    assert "Traceback" not in body["error"] and "\n" not in body["error"]
    assert rejections(case.reason) == before + 1
    # The server still answers a good request, and its log has no traceback and none of the payload.
    good = client.post(V1, content=fundus_jpegs[0], headers={"content-type": "image/jpeg"})
    assert good.status_code == 200
    log = predictor.log_text()
    assert "Traceback" not in log
    assert SECRET.decode() not in log
    assert _b64_garbage[:24] not in log


def test_every_rejection_is_logged_as_one_line(
    client: httpx.Client, predictor: PredictorProcess, served_backend: str
) -> None:
    client.post(V1, content=b"", headers={"content-type": "image/jpeg"})
    lines = [line for line in predictor.log_text().splitlines() if " Rejected " in line]
    assert lines
    # 4xx refusals, 499 clients that left, 503 overload: never a 500 (the last resort) on the live server;
    # LiteRT answers :explain with 501 (Grad-CAM needs TensorFlow).
    statuses = "4\\d\\d|503" + ("|501" if served_backend == "litert" else "")
    pattern = re.compile(rf" Rejected \S+ \S+ with ({statuses}) \([a-z0-9_]+\): \S")
    assert all(pattern.search(line) for line in lines), [line for line in lines if not pattern.search(line)]
