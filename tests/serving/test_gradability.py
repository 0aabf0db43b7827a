"""The gradability gate on its own: synthetic fundus photos pass, every counter-example is caught."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, ImageFilter
from prometheus_client.parser import text_string_to_metric_families

from serving.gradability import (
    POLICIES,
    REASONS,
    Thresholds,
    assess,
    measure,
    model_input_is_retina,
    policy_from_env,
    retina_pixels,
)
from serving.metadata import InputInfo, ModelMetadata, Preprocessing
from serving.preprocess import prepare_pixels
from serving.zoo.synthetic import encode_image, make_fundus_image
from serving.zoo.ungradable import NON_FUNDUS, SPOILED, jpeg_round_trip
from tests.serving.conftest import second_predictor

#: Sizes of the photos (the server sees photos reduced to no less than twice the model input).
SIZES = (224, 320, 512)


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    """Fifteen synthetic fundus photos, grades 0–4, three sizes, after a JPEG round trip."""
    return [
        jpeg_round_trip(make_fundus_image(index % 5, size=SIZES[index % 3], seed=500 + index))
        for index in range(15)
    ]


def test_synthetic_fundus_photos_are_gradable(photos: list[Image.Image]) -> None:
    verdicts = [assess(photo) for photo in photos]
    assert [v.reason for v in verdicts] == [None] * len(photos)
    assert all(v.gradable and v.sentence() == "gradable" for v in verdicts)


@pytest.mark.parametrize("kind", sorted(NON_FUNDUS), ids=sorted(NON_FUNDUS))
def test_pictures_that_are_not_fundus_photos_are_caught(kind: str) -> None:
    rng = np.random.default_rng(7)
    for size in SIZES:
        verdict = assess(jpeg_round_trip(NON_FUNDUS[kind](size, rng)))
        assert not verdict.gradable
        assert verdict.reason == "not_fundus", verdict


@pytest.mark.parametrize("kind", sorted(SPOILED), ids=sorted(SPOILED))
def test_spoiled_fundus_photos_are_caught_with_their_reason(kind: str, photos: list[Image.Image]) -> None:
    expected, spoil = SPOILED[kind]
    rng = np.random.default_rng(3)
    verdicts = [assess(jpeg_round_trip(spoil(photo, rng))) for photo in photos[:6]]
    assert [v.reason for v in verdicts] == [expected] * 6
    assert all(REASONS[expected] in v.sentence() for v in verdicts)


def test_blur_is_measured_independently_of_the_photo_size() -> None:
    for size in (224, 768):
        photo = make_fundus_image(2, size=size, seed=size)
        sharp = measure(photo).sharpness
        blurred = measure(photo.filter(ImageFilter.GaussianBlur(0.012 * size))).sharpness
        assert sharp >= Thresholds().min_sharpness > blurred


def test_a_retina_clipped_at_top_and_bottom_is_gradable() -> None:
    """Many cameras (and APTOS photos) frame the retina wider than high, cutting its top and bottom."""
    photo = make_fundus_image(1, size=600, seed=9)
    clipped = jpeg_round_trip(photo.crop((0, 80, 600, 520)).resize((720, 528)))
    verdict = assess(clipped)
    assert verdict.gradable, verdict


def test_the_float32_laplacians_match_a_float64_reference_and_their_cache_is_read_only() -> None:
    from serving.gradability import _abs_log, _log_transfer

    green = np.asarray(make_fundus_image(3, size=224, seed=5).getchannel("G"), dtype=np.float32)
    spectrum = np.fft.rfft2(green.astype(np.float64))
    radius2 = np.fft.rfftfreq(224)[None, :] ** 2 + np.fft.fftfreq(224)[:, None] ** 2
    for sigma, got in zip((1.0, 3.0), _abs_log(green, (1.0, 3.0)), strict=True):
        transfer = -4 * np.pi**2 * radius2 * np.exp(-2 * np.pi**2 * sigma**2 * radius2)
        expected = np.abs(np.fft.irfft2(spectrum * transfer, s=green.shape))[1:-1, 1:-1]
        assert got.dtype == np.float32 and got.shape == (222, 222)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * float(expected.max()))
    with pytest.raises(ValueError, match="read-only"):
        _log_transfer((224, 224), (1.0, 3.0))[0, 0, 0] = 0


def test_the_gate_measures_sharpness_on_the_default_models_own_input(photos: list[Image.Image]) -> None:
    """The server hands the gate the pixels it prepared for the model: they are the gate's retina crop."""
    default = ModelMetadata()
    assert model_input_is_retina(default)
    for photo in photos[:6]:
        prepared = prepare_pixels(photo, default)
        np.testing.assert_array_equal(prepared, retina_pixels(photo))
        assert assess(photo, retina=prepared).measures == assess(photo).measures


@pytest.mark.parametrize(
    "changed",
    [
        {"preprocessing": Preprocessing(ben_graham=True)},
        {"preprocessing": Preprocessing(crop_fundus=False)},
        {"input": InputInfo(height=299, width=299)},
    ],
    ids=["ben-graham", "no-crop", "299-px"],
)
def test_a_model_input_that_is_not_the_retina_crop_is_not_reused(changed: dict[str, object]) -> None:
    assert not model_input_is_retina(replace(ModelMetadata(), **changed))


def test_a_retina_of_the_wrong_shape_is_refused() -> None:
    photo = make_fundus_image(0, size=224, seed=1)
    with pytest.raises(
        ValueError, match=r"Expected the retina as uint8 \(224, 224, 3\), got uint8 \(299, 299, 3\)"
    ):
        measure(photo, retina=np.zeros((299, 299, 3), dtype=np.uint8))


def test_a_black_image_is_too_dark() -> None:
    verdict = assess(Image.new("RGB", (300, 300)))
    assert (verdict.gradable, verdict.reason) == (False, "too_dark")
    assert verdict.sentence() == "too dark (peak 0 < 40)"


def test_policy_comes_from_the_flag_then_the_environment_then_reject() -> None:
    assert POLICIES == ("reject", "flag", "off")
    assert policy_from_env(None, {}) == "reject"
    assert policy_from_env(None, {"DR_GRADABILITY": " Flag "}) == "flag"
    assert policy_from_env("off", {"DR_GRADABILITY": "flag"}) == "off"
    with pytest.raises(
        ValueError, match=r"DR_GRADABILITY to be one of \['reject', 'flag', 'off'\], got 'maybe'"
    ):
        policy_from_env(None, {"DR_GRADABILITY": "maybe"})


# -- through the real server ---------------------------------------------------------------------------------

MODEL = "mobilenet"
V1 = f"/v1/models/{MODEL}:predict"
V2 = f"/v2/models/{MODEL}/infer"


def _jpeg(image: Image.Image) -> bytes:
    return encode_image(image, "JPEG")


@pytest.fixture(scope="module")
def bad_jpegs() -> dict[str, bytes]:
    """One counter-example per reason, as JPEG: a face, a dark, a blurred and an overexposed photo."""
    rng = np.random.default_rng(11)
    photo = make_fundus_image(2, size=320, seed=77)
    return {
        "not_fundus": _jpeg(NON_FUNDUS["face"](320, rng)),
        "too_dark": _jpeg(SPOILED["dark"][1](photo, rng)),
        "blurred": _jpeg(SPOILED["blurred"][1](photo, rng)),
        "overexposed": _jpeg(SPOILED["overexposed"][1](photo, rng)),
        "small_field": _jpeg(SPOILED["small_field"][1](photo, rng)),
    }


def _samples(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _delta(before: dict, after: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_reject_policy_answers_422_with_one_sentence_and_counts_it(
    client: httpx.Client, fundus_jpegs: list[bytes], bad_jpegs: dict[str, bytes]
) -> None:
    """The session's predictor runs with the default policy, reject."""
    before = _samples(client)
    for reason, data in bad_jpegs.items():
        response = client.post(V1, content=data, headers={"content-type": "image/jpeg"})
        assert response.status_code == 422, (reason, response.text)
        message = response.json()["error"]
        assert message.startswith("Expected a gradable fundus photograph, got one that is ")
        assert REASONS[reason] in message and message.endswith("; retake the photo.")
        assert message.count(". ") == 0  # one sentence
    good = client.post(V1, content=fundus_jpegs[2], headers={"content-type": "image/jpeg"})
    assert good.status_code == 200
    assert "gradable" not in good.json()["predictions"][0]  # under reject every answer is gradable
    after = _samples(client)
    for reason in bad_jpegs:
        labels = {"model": MODEL, "reason": reason, "policy": "reject"}
        assert _delta(before, after, "dr_ungradable_images_total", **labels) == 1
        rejected = {"model": MODEL, "reason": f"ungradable_{reason}"}
        assert _delta(before, after, "dr_rejected_requests_total", **rejected) == 1


def test_reject_policy_names_the_ungradable_image_of_a_batch(
    client: httpx.Client, fundus_jpegs: list[bytes], bad_jpegs: dict[str, bytes]
) -> None:
    images = [fundus_jpegs[0], fundus_jpegs[1], bad_jpegs["blurred"]]
    body = {
        "inputs": [
            {
                "name": "image_bytes",
                "datatype": "BYTES",
                "shape": [3],
                "data": [base64.b64encode(data).decode() for data in images],
            }
        ]
    }
    response = client.post(V2, json=body)
    assert response.status_code == 422
    assert "got image 3 of 3 that is out of focus (sharpness " in response.json()["error"]


@pytest.fixture(scope="module")
def flagging(mobilenet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A second predictor on the same model with ``DR_GRADABILITY=flag`` (this checkout's code)."""
    workdir = tmp_path_factory.mktemp("flagging")
    with second_predictor(mobilenet_dir, workdir, {"DR_GRADABILITY": "flag"}) as http:
        yield http


def test_flag_policy_grades_every_photo_and_marks_the_ungradable_ones(
    flagging: httpx.Client, fundus_jpegs: list[bytes], bad_jpegs: dict[str, bytes]
) -> None:
    before = _samples(flagging)
    images = [fundus_jpegs[3], bad_jpegs["too_dark"], bad_jpegs["not_fundus"], fundus_jpegs[4]]
    body = {"instances": [{"image_b64": base64.b64encode(data).decode()} for data in images]}
    response = flagging.post(V1, json=body)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [item["gradable"] for item in predictions] == [True, False, False, True]
    assert [item.get("ungradable_reason") for item in predictions] == [None, "too_dark", "not_fundus", None]
    assert all(0 <= item["grade"] <= 4 and len(item["probabilities"]) == 5 for item in predictions)
    assert response.headers["x-dr-ungradable"] == "too_dark,not_fundus"
    after = _samples(flagging)
    for reason in ("too_dark", "not_fundus"):
        labels = {"model": MODEL, "reason": reason, "policy": "flag"}
        assert _delta(before, after, "dr_ungradable_images_total", **labels) == 1
    assert _delta(before, after, "dr_predictions_total", model=MODEL, grade=str(predictions[1]["grade"])) >= 1


def test_flag_policy_adds_two_v2_outputs(flagging: httpx.Client, bad_jpegs: dict[str, bytes]) -> None:
    data = [base64.b64encode(bad_jpegs[name]).decode() for name in ("blurred", "overexposed")]
    body = {"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [2], "data": data}]}
    response = flagging.post(V2, json=body)
    assert response.status_code == 200, response.text
    outputs = {output["name"]: output for output in response.json()["outputs"]}
    assert outputs["gradable"]["data"] == [False, False]
    assert outputs["ungradable_reason"]["data"] == ["blurred", "overexposed"]
    described = {item["name"] for item in flagging.get(f"/v2/models/{MODEL}").json()["outputs"]}
    assert {"gradable", "ungradable_reason"} <= described


def test_serve_reads_the_policy_and_refuses_an_unknown_one(mobilenet_dir: Path) -> None:
    from dr_cli.main import build_parser
    from serving.serve import ConfigError, ServeConfig

    args = build_parser().parse_args(["serve", f"--model-dir={mobilenet_dir}"])
    assert ServeConfig.from_args(args, {}).gradability == "reject"
    assert ServeConfig.from_args(args, {"DR_GRADABILITY": "off"}).gradability == "off"
    flagged = build_parser().parse_args(["serve", f"--model-dir={mobilenet_dir}", "--gradability=flag"])
    assert ServeConfig.from_args(flagged, {"DR_GRADABILITY": "off"}).gradability == "flag"
    with pytest.raises(ConfigError, match="DR_GRADABILITY to be one of"):
        ServeConfig.from_args(args, {"DR_GRADABILITY": "sometimes"})
