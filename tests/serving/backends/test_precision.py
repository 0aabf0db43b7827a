"""``--precision fp32|int8`` / ``DR_PRECISION``: which file of a model folder is served (over HTTP too)."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from serving.backends import PRECISIONS, choose_kind, load_backend, tflite_filename
from serving.backends.litert import LiteRTBackend
from serving.errors import ModelLoadError
from serving.imaging import decode_image
from serving.launcher import PredictorProcess
from serving.limits import Limits
from serving.metadata import ModelMetadata
from serving.preprocess import preprocess_image
from serving.zoo.synthetic import encode_image, make_fundus_image


def test_precisions_name_their_files() -> None:
    assert PRECISIONS == ("fp32", "int8", "bf16")
    assert tflite_filename("fp32") == "model.tflite"
    assert tflite_filename("int8") == "model.int8.tflite"
    with pytest.raises(ValueError, match="precision"):
        tflite_filename("fp16")


def test_int8_resolves_to_litert_and_refuses_the_savedmodel(mobilenet_int8_dir: Path) -> None:
    assert choose_kind(mobilenet_int8_dir, precision="int8") == "litert"
    assert choose_kind(mobilenet_int8_dir, kind="litert", precision="int8") == "litert"
    assert choose_kind(mobilenet_int8_dir) == "savedmodel"  # fp32 with TensorFlow installed
    with pytest.raises(ModelLoadError, match="'litert' or 'auto' for precision 'int8'"):
        load_backend(mobilenet_int8_dir, None, kind="savedmodel", precision="int8")


def test_bf16_resolves_to_the_savedmodel_and_refuses_litert(mobilenet_int8_dir: Path) -> None:
    assert choose_kind(mobilenet_int8_dir, precision="bf16") == "savedmodel"
    with pytest.raises(ModelLoadError, match="'savedmodel' or 'auto' for precision 'bf16'"):
        load_backend(mobilenet_int8_dir, None, kind="litert", precision="bf16")


def test_load_backend_serves_the_file_of_the_precision(mobilenet_int8_dir: Path) -> None:
    metadata = ModelMetadata.load(mobilenet_int8_dir)
    int8 = load_backend(mobilenet_int8_dir, metadata, precision="int8")
    fp32 = load_backend(mobilenet_int8_dir, metadata, kind="litert")
    assert isinstance(int8, LiteRTBackend) and isinstance(fp32, LiteRTBackend)
    assert int8.model_path.name == "model.int8.tflite" and int8.precision == "int8"
    assert fp32.model_path.name == "model.tflite" and fp32.precision == "fp32"


def test_a_missing_int8_file_is_a_clear_load_error(mobilenet_int8_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "fp32-only"
    shutil.copytree(mobilenet_int8_dir, folder, ignore=shutil.ignore_patterns("model.int8*"))
    with pytest.raises(ModelLoadError, match=r"Expected model\.int8\.tflite in .* --quantize int8"):
        load_backend(folder, None, precision="int8")


def _served(process: PredictorProcess, jpeg: bytes) -> np.ndarray:
    with httpx.Client(base_url=process.url, timeout=60.0, trust_env=False) as http:
        answer = http.post(
            "/v1/models/mobilenet:predict", content=jpeg, headers={"content-type": "image/jpeg"}
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-dr-backend"] == "litert"
    return np.array(answer.json()["predictions"][0]["probabilities"], dtype=np.float32)


def test_int8_is_served_over_http_when_asked(mobilenet_int8_dir: Path, tmp_path: Path) -> None:
    """The answer is the int8 file's own, not the fp32 one's; the flag and DR_PRECISION both select it."""
    jpeg = encode_image(make_fundus_image(3, size=256, seed=7), "JPEG")
    metadata = ModelMetadata.load(mobilenet_int8_dir)
    assert metadata is not None
    batch = preprocess_image(decode_image(jpeg, limits=Limits(), downscale_to=metadata.input_size), metadata)[
        None
    ]
    int8 = LiteRTBackend(mobilenet_int8_dir / "model.int8.tflite", metadata=metadata).predict(batch)[0]
    fp32 = LiteRTBackend(mobilenet_int8_dir / "model.tflite", metadata=metadata).predict(batch)[0]
    assert np.abs(int8 - fp32).max() > 1e-4  # the two files answer measurably differently

    by_flag = PredictorProcess(
        mobilenet_int8_dir, extra_args=("--precision", "int8"), log_path=tmp_path / "flag.log"
    )
    by_env = PredictorProcess(
        mobilenet_int8_dir, env={"DR_PRECISION": "int8"}, extra_args=("--backend", "litert")
    )
    default = PredictorProcess(mobilenet_int8_dir, extra_args=("--backend", "litert"))
    for process, expected in ((by_flag, int8), (by_env, int8), (default, fp32)):
        with process:
            np.testing.assert_allclose(_served(process, jpeg), expected, atol=2e-5)


def test_bf16_is_served_over_http_and_answers_in_bfloat16(mobilenet_int8_dir: Path, tmp_path: Path) -> None:
    """A fresh server with --precision bf16 answers close to fp32, but not bit for bit (bf16 is on)."""
    jpeg = encode_image(make_fundus_image(2, size=256, seed=9), "JPEG")
    answers = []
    for precision in ("bf16", "fp32"):
        process = PredictorProcess(
            mobilenet_int8_dir,
            extra_args=("--precision", precision, "--backend", "savedmodel"),
            log_path=tmp_path / f"{precision}.log",
        )
        with process, httpx.Client(base_url=process.url, timeout=60.0, trust_env=False) as http:
            answer = http.post(
                "/v1/models/mobilenet:predict", content=jpeg, headers={"content-type": "image/jpeg"}
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-dr-backend"] == "savedmodel"
            answers.append(np.array(answer.json()["predictions"][0]["probabilities"], dtype=np.float32))
    bf16, fp32 = answers
    assert 1e-6 < np.abs(bf16 - fp32).max() < 0.2


def test_serving_int8_without_the_file_fails_with_one_clear_line(
    mobilenet_int8_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "fp32-only"
    shutil.copytree(mobilenet_int8_dir, folder, ignore=shutil.ignore_patterns("model.int8*"))
    for variable, code, message in (
        ("int8", 1, r"Expected model\.int8\.tflite"),
        ("int4", 2, "DR_PRECISION"),
    ):
        process = PredictorProcess(
            folder, env={"DR_PRECISION": variable}, log_path=tmp_path / f"{variable}.log"
        )
        with pytest.raises(RuntimeError, match=rf"exited with code {code}: Error: .*{message}"), process:
            pass
