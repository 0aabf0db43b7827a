"""``dr-serving model convert --quantize int8``: full-integer int8 behind the accuracy guard, or a refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dr_cli.main import main
from serving.backends.litert import LiteRTBackend
from serving.cpu_features import this_cpu
from serving.imaging import decode_image
from serving.limits import Limits
from serving.metadata import ModelMetadata
from serving.preprocess import preprocess_image
from serving.zoo.quantize import (
    PAYS_BELOW,
    Guard,
    QuantizationReport,
    _counts_to_try,
    _debugger,
    _layers,
    _smallest_passing,
    agreement,
    disagreements,
    photos_from_dir,
    synthetic_photos,
)
from serving.zoo.synthetic import encode_image, make_fundus_image


@pytest.fixture(scope="module")
def model_copy(mobilenet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the MobileNet fixture (conversions write beside it)."""
    target = tmp_path_factory.mktemp("quantize") / "mobilenet"
    shutil.copytree(mobilenet_dir, target, ignore=shutil.ignore_patterns("model.tflite*", "model.int8*"))
    return target


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's folder of photos: JPEGs and PNGs of every grade, plus a file that is not a photo."""
    folder = tmp_path_factory.mktemp("photos")
    for index in range(12):
        kind = "JPEG" if index % 2 else "PNG"
        image = make_fundus_image(index % 5, size=300, seed=100 + index)
        (folder / f"eye-{index:02d}.{kind.lower()}").write_bytes(encode_image(image, kind))
    (folder / "notes.txt").write_text("not a photo")
    return folder


def test_the_guard_counts_grades_and_referable_calls() -> None:
    reference = np.array([[0.9, 0.1, 0, 0, 0], [0, 0.6, 0.4, 0, 0], [0, 0, 0.1, 0.9, 0]], dtype=np.float32)
    candidate = np.array([[0.8, 0.2, 0, 0, 0], [0, 0.4, 0.6, 0, 0], [0, 0, 0.2, 0.8, 0]], dtype=np.float32)
    found = agreement(reference, candidate, referable_min_grade=2)
    assert found.grade_agreement == pytest.approx(2 / 3)
    assert found.referable_agreement == pytest.approx(2 / 3)  # grade 1 → 2 crosses the referable line
    assert found.max_abs_diff == pytest.approx(0.2)
    assert not found.meets(Guard())
    assert agreement(reference, reference, referable_min_grade=2).meets(Guard(max_abs_diff=0.0))
    nan = agreement(reference, np.full_like(reference, np.nan), referable_min_grade=2)
    assert nan.grade_agreement == 0.0 and not nan.meets(
        Guard(min_grade_agreement=0.0, min_referable_agreement=0.0)
    )


def test_float_layer_counts_double_up_to_the_limit() -> None:
    assert list(_counts_to_try(0)) == []
    assert list(_counts_to_try(1)) == [1]
    assert list(_counts_to_try(6)) == [1, 2, 4, 6]
    assert list(_counts_to_try(8)) == [1, 2, 4, 8]


def test_the_smallest_passing_size_is_found_by_doubling_then_bisecting() -> None:
    tried: list[int] = []

    def at_least_six(size: int) -> bool:
        tried.append(size)
        return size >= 6

    assert _smallest_passing([0, 1, 2, 4, 8, 16], at_least_six) == 6
    assert tried == [0, 1, 2, 4, 8, 6, 5]
    assert _smallest_passing([1, 2, 4], lambda size: True) == 1
    assert _smallest_passing([0, 1, 2], lambda size: False) is None


def test_disagreements_carry_the_float_models_margin() -> None:
    reference = np.array([[0.5, 0.45, 0.05, 0, 0], [0.1, 0.1, 0.8, 0, 0]], dtype=np.float32)
    candidate = np.array([[0.45, 0.5, 0.05, 0, 0], [0.1, 0.1, 0.8, 0, 0]], dtype=np.float32)
    assert disagreements(reference, candidate) == [
        {"photo": 0, "float_grade": 0, "int8_grade": 1, "float_margin": pytest.approx(0.05, abs=1e-4)}
    ]
    assert disagreements(reference, reference) == []


def test_layers_come_in_graph_order_with_the_classifier_tail(model_copy: Path) -> None:
    metadata = ModelMetadata.load(model_copy)
    assert metadata is not None
    _, debugger = _debugger(model_copy, metadata.signature, synthetic_photos(metadata, samples=2, seed=0))
    layers = _layers(debugger)
    assert "conv1" in layers.order[0] and "conv_dw_1" in layers.order[1]  # the input end first
    # The classifier tail: the global pool, the three dense layers and the softmax, after conv_pw_13.
    assert "conv_pw_13" in layers.order[-len(layers.tail) - 1]
    assert layers.tail == layers.order[-5:]
    assert "global_average_pooling" in layers.tail[0] and "probabilities" in layers.tail[3]
    assert sorted(layers.ranked) == sorted(layers.order)


def test_calibration_photos_are_prepared_as_the_server_prepares_them(
    model_copy: Path, photo_dir: Path, tmp_path: Path
) -> None:
    metadata = ModelMetadata.load(model_copy)
    assert metadata is not None
    photos = photos_from_dir(photo_dir, metadata)
    assert photos.shape == (12, 224, 224, 3) and photos.dtype == np.float32
    first = preprocess_image(
        decode_image(
            (photo_dir / "eye-00.png").read_bytes(), limits=Limits(), downscale_to=metadata.input_size
        ),
        metadata,
    )
    np.testing.assert_array_equal(photos[0], first)
    with pytest.raises(ValueError, match="found none"):
        photos_from_dir(tmp_path, metadata)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        photos_from_dir(tmp_path / "absent", metadata)


def test_int8_from_user_photos_meets_the_guard_and_is_recorded(
    model_copy: Path, photo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            *("model", "convert", str(model_copy), "--quantize", "int8"),
            *("--calibration", str(photo_dir), "--check-samples", "40"),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "model.int8.tflite" in printed and "int8" in printed
    tflite = model_copy / "model.int8.tflite"
    report = json.loads((model_copy / "model.int8.tflite.json").read_text())
    assert report["tflite"] == "model.int8.tflite" and report["quantize"] == "int8"
    assert report["calibration_samples"] == 12 and str(photo_dir) in report["calibration"]
    assert report["check_samples"] == 40
    assert report["grade_agreement"] >= 0.99 and report["referable_agreement"] >= 0.995
    assert 0 < report["max_abs_diff"] < 1
    assert report["passed"]
    kept = len(report["float_layers"])
    assert any(a["passed"] and a["float_layers"] == kept for a in report["attempts"])
    assert len(report["float_layers"]) <= report["ranked_layers"]
    assert report["search"] in ("int8", "islands", "ranked")
    if report["search"] == "islands":
        assert kept == report["head_float_layers"] + report["tail_float_layers"]
    assert len(report["disagreements"]) == round((1 - report["grade_agreement"]) * 40)
    assert all(
        0 <= d["float_margin"] <= 1 and d["float_grade"] != d["int8_grade"] for d in report["disagreements"]
    )
    assert report["int8_ms"] > 0 and report["fp32_ms"] > 0
    assert report["speed_ratio"] == pytest.approx(report["int8_ms"] / report["fp32_ms"], rel=0.01)
    # The times are recorded with the CPU they were taken on, and a ratio that does not pay is said so.
    assert report["cpu"] == this_cpu().as_dict()
    assert ("note: int8 is" in printed) == (report["speed_ratio"] > PAYS_BELOW)
    assert tflite.stat().st_size == report["tflite_bytes"] < 0.5 * report["fp32_tflite_bytes"]
    backend = LiteRTBackend(tflite, metadata=ModelMetadata.load(model_copy))
    assert backend.precision == "int8"
    assert backend.input_spec.dtype == "float32"  # float in, float out
    out = backend.predict(
        photos_from_dir(photo_dir, ModelMetadata.load(model_copy) or ModelMetadata(), limit=3)
    )
    assert out.shape == (3, 5) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=0.02)


def _report(speed_ratio: float, cpu: dict[str, object]) -> QuantizationReport:
    return QuantizationReport(
        **dict(tflite="model.int8.tflite", source="m", calibration="c", calibration_samples=1, check="k"),
        **dict(check_samples=1, guard={}, grade_agreement=1.0, referable_agreement=1.0, max_abs_diff=0.0),
        **dict(tflite_bytes=4_100_000, fp32_tflite_bytes=13_400_000, int8_ms=8.0 * speed_ratio, fp32_ms=8.0),
        **dict(speed_ratio=speed_ratio, cpu=cpu, convert_seconds=1.0, created="now", tensorflow_version="2"),
    )


def test_the_speed_note_names_the_cpu_when_int8_does_not_pay() -> None:
    zen3 = {"brand": "AMD EPYC", "vector": "AVX2", "int8_dot": []}
    note = _report(0.93, zen3).speed_note()
    assert note is not None
    assert "0.93× fp32's time" in note and "AMD EPYC, AVX2, int8 dot product: none" in note
    assert "4.1 vs 13.4 MB" in note and "AVX512-VNNI" in note
    zen4 = {"brand": "AMD EPYC", "vector": "AVX-512", "int8_dot": ["AVX512-VNNI"]}
    assert _report(0.41, zen4).speed_note() is None
    assert _report(PAYS_BELOW, zen3).speed_note() is None


def test_no_mix_meeting_the_guard_is_refused_in_one_sentence(
    model_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "refused.int8.tflite"
    code = main(
        [
            *("model", "convert", str(model_copy), "--quantize", "int8", "--out", str(out)),
            *("--calibration-synthetic", "8", "--check-samples", "10"),
            *("--max-float-layers", "0", "--max-delta", "1e-9"),
        ]
    )
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("Error: No mix of int8 and float layers meets the accuracy guard")
    assert "max |Δp| ≤ 1e-09" in error
    assert error.count(". ") == 0 and error.endswith(").")  # one sentence
    assert not out.exists() and not out.with_name(out.name + ".json").exists()
    assert not list(tmp_path.glob(".quantize.*"))  # no staging left behind


def test_int8_only_flags_are_refused_without_int8(
    model_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "convert", str(model_copy), "--calibration-synthetic", "4"]) == 2
    assert "--calibration-synthetic apply to --quantize int8 only" in capsys.readouterr().err


def test_help_says_when_dynamic_range_is_worth_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["model", "convert", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--quantize dynamic" in text and "slower than fp32 for MobileNet" in text
