"""Property-based fuzzing of the real predictor: every route and protocol, hostile bodies, never a 5xx.

``test_no_input_gets_a_5xx`` runs in ``make test`` with a bounded number of cases (``DR_FUZZ_EXAMPLES``,
default 300); ``make fuzz`` runs it with thousands and adds schemathesis against the server's OpenAPI
(``test_schemathesis_finds_no_server_error``, marker ``fuzz``). Requests go to 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.launcher import PredictorProcess
from serving.zoo.synthetic import encode_image, make_fundus_image

MODEL = "mobilenet"
EXAMPLES = int(os.environ.get("DR_FUZZ_EXAMPLES", "300"))
ROUTES = (
    ("POST", f"/v1/models/{MODEL}:predict"),
    ("POST", f"/v2/models/{MODEL}/infer"),
    ("POST", "/invocations"),
    ("POST", f"/v1/models/{MODEL}/preprocessed"),
    ("POST", "/v1/models/other:predict"),
    ("POST", f"/v2/models/{MODEL}/versions/1/infer"),
    ("POST", f"/v2/repository/models/{MODEL}/unload"),
    ("GET", f"/v2/models/{MODEL}"),
    ("GET", f"/v2/models/{MODEL}/ready?model_version=1"),
    ("GET", f"/v1/models/{MODEL}"),
    ("GET", "/v2/health/ready"),
    ("GET", "/ping"),
    ("PUT", f"/v1/models/{MODEL}:predict"),
    ("DELETE", "/invocations"),
)
CONTENT_TYPES = (
    None,
    "image/jpeg",
    "image/png",
    "application/json",
    "application/octet-stream",
    "application/x-image",
    "text/plain",
    "image/png; charset=utf-8",
)
_SEEDS = [
    encode_image(make_fundus_image(grade, size=96, seed=grade), fmt)
    for grade, fmt in ((1, "JPEG"), (3, "PNG"))
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    """A real JPEG/PNG with bytes flipped, cut or overwritten (size fields included)."""
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@st.composite
def v1_documents(draw: st.DrawFn) -> bytes:
    image = draw(mutated_images() | st.sampled_from(_SEEDS) | st.binary(max_size=64))
    instance = draw(
        st.sampled_from(
            [{"image_b64": _b64(image)}, {"b64": _b64(image)}, _b64(image), {"image_b64": draw(json_values)}]
        )
    )
    document = {"instances": [instance] * draw(st.integers(0, 6))}
    if draw(st.booleans()):
        document[draw(st.text(max_size=5))] = draw(json_values)
    return json.dumps(document).encode()


@st.composite
def v2_requests(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    datatype = draw(st.sampled_from(["BYTES", "FP32", "INT32", "fp32", ""]))
    shape = draw(
        st.lists(st.integers(-2, 300) | st.sampled_from([224, 3, 10**20]), max_size=5)
        | st.sampled_from([[1], [2], [1, 224, 224, 3], [1, 1]])
    )
    image = draw(mutated_images() | st.sampled_from(_SEEDS))
    entry: dict[str, object] = {"name": draw(st.text(max_size=10)), "datatype": datatype, "shape": shape}
    raw = b""
    if draw(st.booleans()):
        entry["data"] = draw(
            st.sampled_from([[_b64(image)], [0.5] * 12, [], [[1, [2]]]]) | st.lists(json_values, max_size=4)
        )
        headers = {"content-type": "application/json"}
    else:
        raw = struct.pack("<I", len(image)) + image if datatype == "BYTES" else draw(st.binary(max_size=256))
        size = draw(st.sampled_from([len(raw), len(raw) + 1, 0, -1]))
        entry["parameters"] = {"binary_data_size": size}
        headers = {}
    head = json.dumps({"id": draw(st.text(max_size=5)), "inputs": [entry] * draw(st.integers(0, 2))}).encode()
    if raw or draw(st.booleans()):
        declared = draw(st.sampled_from([str(len(head)), str(len(head) + 7), "0", "x", "-3", "9" * 30]))
        headers["inference-header-content-length"] = declared
    return head + raw, headers


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes, dict[str, str]]:
    method, path = draw(st.sampled_from(ROUTES))
    headers: dict[str, str] = {}
    body = draw(
        st.one_of(
            st.binary(max_size=512),
            mutated_images(),
            st.sampled_from(_SEEDS),
            v1_documents(),
            json_values.map(lambda value: json.dumps(value).encode()),
            st.integers(1, 3000).map(lambda depth: b'{"inputs": ' + b"[" * depth + b"]" * depth + b"}"),
            st.just(b'{"instances": [' + b"9" * 5000 + b"]}"),
        )
    )
    if path.endswith("/infer") and draw(st.booleans()):
        body, headers = draw(v2_requests())
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type is not None and "content-type" not in headers:
        headers["content-type"] = content_type
    return method, path, body, headers


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(request=requests())
def test_no_input_gets_a_5xx(request: tuple[str, str, bytes, dict[str, str]], client: httpx.Client) -> None:
    method, path, body, headers = request
    response = client.request(method, path, content=body or None, headers=headers)
    assert response.status_code < 500, (method, path, headers, body[:200], response.text[:300])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json")
        answer = response.json()
        assert set(answer) == {"error"} and isinstance(answer["error"], str) and "\n" not in answer["error"]


def test_after_fuzzing_the_server_serves_and_logged_no_traceback(
    client: httpx.Client, predictor: PredictorProcess, fundus_jpegs: list[bytes]
) -> None:
    response = client.post(
        f"/v1/models/{MODEL}:predict", content=fundus_jpegs[0], headers={"content-type": "image/jpeg"}
    )
    assert response.status_code == 200
    assert "Traceback" not in predictor.log_text()


@pytest.mark.fuzz
def test_schemathesis_finds_no_server_error(predictor: PredictorProcess, tmp_path: Path) -> None:
    """schemathesis against the served OpenAPI document: no 5xx."""
    binary = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.model_name" = "{MODEL}"\n')  # the served model, not only 404s
    command = [
        binary,
        "--config-file",
        str(config),
        "run",
        f"{predictor.url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        os.environ.get("DR_SCHEMATHESIS_EXAMPLES", "200"),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    print(result.stdout[-4000:])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
