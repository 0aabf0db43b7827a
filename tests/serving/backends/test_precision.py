"""``--precision fp32|int8|bf16`` (``DR_PRECISION``): the file or the math a model is served with."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.backends import PRECISIONS, choose_kind, load_backend, tflite_filename
from serving.backends.litert import LiteRTBackend
from serving.backends.savedmodel import BF16_PROBE_ERROR, bf16_math_in_effect, relative_error
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


def _served(process: PredictorProcess, jpeg: bytes, precision: str) -> np.ndarray:
    with httpx.Client(base_url=process.url, timeout=60.0, trust_env=False) as http:
        answer = http.post(
            "/v1/models/mobilenet:predict", content=jpeg, headers={"content-type": "image/jpeg"}
        )
    assert answer.status_code == 200, answer.text
    assert (answer.headers["x-dr-backend"], answer.headers["x-dr-precision"]) == ("litert", precision)
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
    for process, expected, precision in (
        (by_flag, int8, "int8"),
        (by_env, int8, "int8"),
        (default, fp32, "fp32"),
    ):
        with process:
            np.testing.assert_allclose(_served(process, jpeg, precision), expected, atol=2e-5)


def _model_info(http: httpx.Client) -> dict[str, str]:
    """The labels of the server's ``dr_model_info`` sample, parsed with prometheus_client."""
    families = text_string_to_metric_families(http.get("/metrics").text)
    (sample,) = next(family for family in families if family.name == "dr_model_info").samples
    return sample.labels


def test_bf16_is_served_over_http_and_says_which_math_it_runs(
    mobilenet_int8_dir: Path, tmp_path: Path
) -> None:
    """--precision bf16 answers in bfloat16 where oneDNN uses it (AMX) and says so; elsewhere it answers
    exactly as fp32 and says fp32. Either way the answer and ``dr_model_info{precision}`` agree."""
    jpeg = encode_image(make_fundus_image(2, size=256, seed=9), "JPEG")
    answers, said = [], []
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
            said.append(_model_info(http)["precision"])
    bf16, fp32 = answers
    assert said[1] == "fp32"
    log = (tmp_path / "bf16.log").read_text()
    if said[0] == "bf16":
        assert 1e-6 < np.abs(bf16 - fp32).max() < 0.2
        assert "keeps fp32 math" not in log
    else:
        assert said[0] == "fp32"
        np.testing.assert_array_equal(bf16, fp32)
        assert "Precision 'bf16' was asked for, but this CPU keeps fp32 math" in log


def test_the_bf16_probe_tells_bfloat16_inputs_from_fp32() -> None:
    """The probe's threshold lies between an fp32 convolution's error and one with bfloat16-rounded inputs."""
    import ml_dtypes
    import tensorflow as tf

    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((1, 28, 28, 64))
    kernel = rng.standard_normal((3, 3, 64, 64))
    exact = tf.nn.conv2d(pixels, kernel, 1, "SAME").numpy()

    def rounded(values: np.ndarray, dtype: object) -> np.ndarray:
        return values.astype(dtype).astype(np.float64)

    fp32 = tf.nn.conv2d(rounded(pixels, np.float32), rounded(kernel, np.float32), 1, "SAME").numpy()
    bf16 = tf.nn.conv2d(rounded(pixels, ml_dtypes.bfloat16), rounded(kernel, ml_dtypes.bfloat16), 1, "SAME")
    assert relative_error(fp32, exact) < BF16_PROBE_ERROR / 10
    assert relative_error(bf16.numpy(), exact) > BF16_PROBE_ERROR * 10


def test_the_probe_finds_fp32_math_in_a_process_without_the_bf16_mode() -> None:
    import tensorflow as tf

    assert os.environ.get("ONEDNN_DEFAULT_FPMATH_MODE") is None
    assert bf16_math_in_effect(tf) is False


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
