"""The real predictor over real HTTP: every protocol, inspection, V2 metadata, health, headers, metrics."""

from __future__ import annotations

import base64
import io
import json
import platform
import struct
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from serving.backends import load_backend
from serving.imaging import decode_image
from serving.launcher import PredictorProcess
from serving.limits import Limits
from serving.metadata import ModelMetadata
from serving.metrics import normalise_arch
from serving.preprocess import prepare_pixels, preprocess_image

MODEL = "mobilenet"
V1 = f"/v1/models/{MODEL}:predict"
V2 = f"/v2/models/{MODEL}/infer"


@pytest.fixture(scope="module")
def reference(mobilenet_dir: Path) -> tuple[ModelMetadata, object]:
    """The same model loaded in the test process, to check the server's numbers independently."""
    metadata = ModelMetadata.load(mobilenet_dir)
    assert metadata is not None
    return metadata, load_backend(mobilenet_dir, metadata)


def _expected(reference: tuple[ModelMetadata, object], images: list[bytes]) -> np.ndarray:
    metadata, backend = reference
    batch = np.stack([preprocess_image(decode_image(data, limits=Limits()), metadata) for data in images])
    return backend.predict(batch)  # type: ignore[attr-defined]


def _metrics(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _assert_v1_answer(answer: dict[str, object], count: int) -> None:
    assert answer["model"] == MODEL
    assert answer["batch_size"] == count
    assert isinstance(answer["prediction_ms"], float) and isinstance(answer["server_ms"], float)
    assert 0 < answer["prediction_ms"] <= answer["server_ms"]
    predictions = answer["predictions"]
    assert isinstance(predictions, list) and len(predictions) == count
    for item in predictions:
        assert set(item) == {"grade", "label", "probabilities", "referable"}
        assert item["label"] == ["No DR", "Mild", "Moderate", "Severe", "Proliferative"][item["grade"]]
        assert item["grade"] == int(np.argmax(item["probabilities"]))
        assert item["referable"] is (item["grade"] >= 2)
        assert sum(item["probabilities"]) == pytest.approx(1.0, abs=1e-4)


# -- health and metadata ------------------------------------------------------------------------------------


def test_health_routes(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get(f"/v1/models/{MODEL}").json() == {"name": MODEL, "ready": True}
    assert client.get(f"/v2/models/{MODEL}/ready").json() == {"name": MODEL, "ready": True}
    ping = client.get("/ping")
    assert (ping.status_code, ping.json()) == (200, {"status": "up"})


def test_v2_metadata_describes_inputs_and_outputs(client: httpx.Client) -> None:
    response = client.get(f"/v2/models/{MODEL}")
    assert response.status_code == 200
    assert response.json() == {
        "name": MODEL,
        "versions": None,
        "platform": "",
        "inputs": [
            {"name": "image_bytes", "datatype": "BYTES", "shape": [-1]},
            {"name": "image", "datatype": "FP32", "shape": [-1, 224, 224, 3]},
        ],
        "outputs": [
            {"name": "grade", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 5]},
            {"name": "referable", "datatype": "BOOL", "shape": [-1]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
        ],
    }


# -- V1 -----------------------------------------------------------------------------------------------------


def test_v1_raw_jpeg_matches_the_model_and_sets_headers(
    client: httpx.Client,
    fundus_jpegs: list[bytes],
    reference: tuple[ModelMetadata, object],
    served_backend: str,
) -> None:
    response = client.post(V1, content=fundus_jpegs[2], headers={"content-type": "image/jpeg"})
    assert response.status_code == 200
    answer = response.json()
    _assert_v1_answer(answer, 1)
    np.testing.assert_allclose(
        answer["predictions"][0]["probabilities"], _expected(reference, [fundus_jpegs[2]])[0], atol=1e-4
    )
    headers = response.headers
    assert headers["x-dr-model"] == MODEL
    assert headers["x-dr-backend"] == served_backend
    assert headers["x-dr-pool"] == "test-pool"
    assert headers["x-dr-instance-type"] == "test.large"
    assert headers["x-dr-mode"] == "local"
    assert headers["x-dr-node"] == "test-node"
    assert headers["x-dr-arch"] == normalise_arch(platform.machine())
    assert float(headers["x-dr-prediction-ms"]) == pytest.approx(answer["prediction_ms"], abs=1e-3)
    assert float(headers["x-dr-server-ms"]) == pytest.approx(answer["server_ms"], abs=1e-3)


def test_v1_raw_png(client: httpx.Client, fundus_png: bytes, reference: tuple[ModelMetadata, object]) -> None:
    response = client.post(V1, content=fundus_png, headers={"content-type": "image/png"})
    assert response.status_code == 200
    _assert_v1_answer(response.json(), 1)
    np.testing.assert_allclose(
        response.json()["predictions"][0]["probabilities"], _expected(reference, [fundus_png])[0], atol=1e-4
    )


def test_v1_json_batch(
    client: httpx.Client, fundus_jpegs: list[bytes], reference: tuple[ModelMetadata, object]
) -> None:
    images = fundus_jpegs[:3]
    body = {"instances": [{"image_b64": base64.b64encode(data).decode()} for data in images]}
    response = client.post(V1, json=body)
    assert response.status_code == 200
    answer = response.json()
    _assert_v1_answer(answer, 3)
    got = np.array([item["probabilities"] for item in answer["predictions"]])
    np.testing.assert_allclose(got, _expected(reference, images), atol=1e-4)


def test_synthetic_trained_model_grades_inputs_differently(
    client: httpx.Client, fundus_jpegs: list[bytes]
) -> None:
    images = [fundus_jpegs[g] for g in (0, 1, 3, 4)]  # the session's predictor takes at most 4 per request
    body = {"instances": [{"image_b64": base64.b64encode(data).decode()} for data in images]}
    predictions = client.post(V1, json=body).json()["predictions"]
    probabilities = np.array([item["probabilities"] for item in predictions])
    assert not np.allclose(probabilities[0], probabilities[-1], atol=1e-3)
    assert len({item["grade"] for item in predictions}) >= 2


# -- V2 -----------------------------------------------------------------------------------------------------


def _v2_outputs(response: httpx.Response) -> dict[str, dict[str, object]]:
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model_name"] == MODEL
    assert set(answer["parameters"]) == {"prediction_ms", "server_ms"}
    assert response.headers["x-dr-model"] == MODEL
    return {output["name"]: output for output in answer["outputs"]}


def _assert_v2_matches(outputs: dict[str, dict[str, object]], expected: np.ndarray) -> None:
    count = expected.shape[0]
    grades = expected.argmax(axis=1).tolist()
    assert outputs["grade"] == {"name": "grade", "datatype": "INT64", "shape": [count], "data": grades}
    assert outputs["probabilities"]["shape"] == [count, 5]
    np.testing.assert_allclose(outputs["probabilities"]["data"], expected.ravel(), atol=1e-4)
    assert outputs["referable"]["data"] == [grade >= 2 for grade in grades]
    labels = ["No DR", "Mild", "Moderate", "Severe", "Proliferative"]
    assert outputs["label"] == {
        "name": "label",
        "datatype": "BYTES",
        "shape": [count],
        "data": [labels[g] for g in grades],
    }


def test_v2_bytes_json(
    client: httpx.Client, fundus_jpegs: list[bytes], reference: tuple[ModelMetadata, object]
) -> None:
    images = fundus_jpegs[1:3]
    body = {
        "id": "req-7",
        "inputs": [
            {
                "name": "image_bytes",
                "datatype": "BYTES",
                "shape": [2],
                "data": [base64.b64encode(data).decode() for data in images],
            }
        ],
    }
    response = client.post(V2, json=body)
    assert response.json()["id"] == "req-7"
    _assert_v2_matches(_v2_outputs(response), _expected(reference, images))


def test_v2_bytes_binary_extension(
    client: httpx.Client,
    fundus_jpegs: list[bytes],
    fundus_png: bytes,
    reference: tuple[ModelMetadata, object],
) -> None:
    images = [fundus_jpegs[3], fundus_png]
    raw = b"".join(struct.pack("<I", len(data)) + data for data in images)
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "image_bytes",
                    "datatype": "BYTES",
                    "shape": [2],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    ).encode()
    response = client.post(
        V2,
        content=head + raw,
        headers={
            "inference-header-content-length": str(len(head)),
            "content-type": "application/octet-stream",
        },
    )
    _assert_v2_matches(_v2_outputs(response), _expected(reference, images))


def test_v2_fp32_tensor_json_and_binary(
    client: httpx.Client, fundus_jpegs: list[bytes], reference: tuple[ModelMetadata, object]
) -> None:
    metadata, _ = reference
    tensor = np.stack([preprocess_image(decode_image(fundus_jpegs[4], limits=Limits()), metadata)])
    expected = _expected(reference, [fundus_jpegs[4]])
    as_json = {
        "inputs": [
            {"name": "image", "datatype": "FP32", "shape": [1, 224, 224, 3], "data": tensor.ravel().tolist()}
        ]
    }
    _assert_v2_matches(_v2_outputs(client.post(V2, json=as_json)), expected)
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "datatype": "FP32",
                    "shape": [1, 224, 224, 3],
                    "parameters": {"binary_data_size": tensor.nbytes},
                }
            ]
        }
    ).encode()
    response = client.post(
        V2,
        content=head + tensor.astype("<f4").tobytes(),
        headers={
            "inference-header-content-length": str(len(head)),
            "content-type": "application/octet-stream",
        },
    )
    _assert_v2_matches(_v2_outputs(response), expected)


# -- SageMaker and inspection -------------------------------------------------------------------------------


def test_sagemaker_invocations(
    client: httpx.Client, fundus_jpegs: list[bytes], reference: tuple[ModelMetadata, object]
) -> None:
    response = client.post(
        "/invocations", content=fundus_jpegs[0], headers={"content-type": "application/x-image"}
    )
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"predictions", "requestLatency", "predictionLatency"}
    np.testing.assert_allclose(answer["predictions"], _expected(reference, [fundus_jpegs[0]])[0], atol=1e-4)
    assert 0 < answer["predictionLatency"] <= answer["requestLatency"] < 60
    assert response.headers["x-dr-model"] == MODEL


def test_preprocessed_png_is_the_model_input(
    client: httpx.Client, fundus_png: bytes, reference: tuple[ModelMetadata, object]
) -> None:
    response = client.post(
        f"/v1/models/{MODEL}/preprocessed", content=fundus_png, headers={"content-type": "image/png"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    served = np.asarray(Image.open(io.BytesIO(response.content)))
    metadata, _ = reference
    assert served.shape == (224, 224, 3)
    assert np.array_equal(served, prepare_pixels(decode_image(fundus_png, limits=Limits()), metadata))


# -- metrics ------------------------------------------------------------------------------------------------


def test_metrics_count_exactly(client: httpx.Client, fundus_jpegs: list[bytes], served_backend: str) -> None:
    node = {
        "pool": "test-pool",
        "arch": client.get("/ping").headers.get("x-dr-arch", ""),
        "instance_type": "test.large",
    }
    response = client.post(V1, content=fundus_jpegs[1], headers={"content-type": "image/jpeg"})
    node["arch"] = response.headers["x-dr-arch"]
    before = _metrics(client)
    single = client.post(V1, content=fundus_jpegs[1], headers={"content-type": "image/jpeg"}).json()
    grade = str(single["predictions"][0]["grade"])
    body = {"instances": [{"image_b64": base64.b64encode(data).decode()} for data in fundus_jpegs[:3]]}
    batch = client.post(V1, json=body).json()
    rejected = client.post(V1, content=b"not an image", headers={"content-type": "image/jpeg"})
    assert rejected.status_code == 400
    after = _metrics(client)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    batch_grades = [str(item["grade"]) for item in batch["predictions"]]
    for g in {grade, *batch_grades}:
        expected = (g == grade) + batch_grades.count(g)
        assert delta("dr_predictions_total", model=MODEL, grade=g) == expected
    labels = {"model": MODEL, "backend": served_backend, **node}
    assert delta("dr_inference_batch_seconds_count", **labels) == 2
    assert delta("dr_inference_image_seconds_count", **labels) == 4
    assert delta("dr_batch_size_count", model=MODEL) == 2
    assert delta("dr_batch_size_sum", model=MODEL) == 4
    assert delta("dr_rejected_requests_total", model=MODEL, reason="undecodable") == 1
    assert delta("request_predict_seconds_count", model_name=MODEL) == 2
    for phase in ("body", "decode", "queue", "prediction", "postprocess"):
        assert delta("dr_request_phase_seconds_count", model=MODEL, phase=phase) == 2
    # The prediction phase is the backend call: the same observations as dr_inference_batch_seconds.
    assert delta("dr_request_phase_seconds_sum", model=MODEL, phase="prediction") == pytest.approx(
        delta("dr_inference_batch_seconds_sum", **labels)
    )
    for name in ("X-DR-Body-Ms", "X-DR-Decode-Ms", "X-DR-Queue-Ms", "X-DR-Postprocess-Ms"):
        assert float(response.headers[name]) >= 0
    info = {
        "model": MODEL,
        "backend": served_backend,
        "precision": "fp32",
        "architecture": "mobilenet",
        "mode": "local",
    }
    info |= node
    assert _value(after, "dr_model_info", **info) == 1
    load = _value(after, "dr_model_load_seconds", model=MODEL, backend=served_backend)
    startup = _value(after, "dr_startup_seconds", model=MODEL, backend=served_backend)
    assert 0 < load <= startup < 600


# -- start-up failures through the command line ------------------------------------------------------------


def test_serve_missing_model_dir_fails_with_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    from dr_cli.main import main

    code = main(["serve", "--model-dir", "/nonexistent/model"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err == "Error: Expected a model directory at '/nonexistent/model', but it does not exist."


def test_serve_corrupt_model_fails_with_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dr_cli.main import main

    (tmp_path / "saved_model.pb").write_bytes(b"garbage" * 20)
    code = main(["serve", "--model-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len([line for line in err if line.startswith("Error:")]) == 1
    assert err[-1].startswith(f"Error: Expected a loadable SavedModel in {str(tmp_path)!r}, got an error:")


def test_serve_bad_limit_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dr_cli.main import main

    code = main(["serve", "--model-dir", str(tmp_path), "--max-batch", "0"])
    assert code == 2
    assert capsys.readouterr().err.strip() == "Error: Expected max_batch to be a positive integer, got 0."


def test_process_start_time_is_before_now() -> None:
    import time

    from serving.process import process_start_time

    started = process_start_time()
    assert time.time() - 24 * 3600 < started <= time.time()


def test_process_start_time_is_exact_to_a_clock_tick() -> None:
    """A child's start time lies between its spawn and its first statement (no whole-second rounding)."""
    import subprocess
    import sys
    import time

    code = "import time; t = time.time(); from serving.process import process_start_time as p; print(p(), t)"
    spawned = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    started, first_statement = (float(value) for value in out.split())
    tick = 0.011  # one clock tick (10 ms) plus rounding
    assert spawned - tick <= started <= first_statement + tick


def test_process_exits_non_zero_for_a_missing_model(tmp_path: Path) -> None:
    process = PredictorProcess(tmp_path / "missing", model_name="x", log_path=tmp_path / "log.txt")
    process.start()
    with pytest.raises(RuntimeError) as info:
        process.wait_ready(timeout=120)
    assert process.returncode == 1
    assert "Error: Expected a model directory at" in str(info.value)
