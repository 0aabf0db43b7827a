"""Explanations: Grad-CAM through the SavedModel's ``explain`` signature, over real HTTP on ``:explain``."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from serving.errors import ExplanationUnavailable
from serving.explain import EXPLAIN_SIGNATURE, Explainer, colour_map, overlay, overlay_png
from serving.launcher import PredictorProcess
from serving.zoo.synthetic import encode_image, make_fundus_image

CHECKOUT = Path(__file__).resolve().parents[2]
MODELS = CHECKOUT / "models" / "test"
#: A small MobileNet (96 px) trained for one epoch on synthetic photos: its outputs depend on the photo.
EXPLAINABLE = MODELS / "mobilenet-explain-96"


@pytest.fixture(scope="module")
def explainable_dir() -> Path:
    """Built once per machine (``build_model`` reuses it); exported with the ``explain`` signature."""
    from serving.zoo import build_model

    return build_model("mobilenet", EXPLAINABLE, train_synthetic=60, epochs=1, seed=0, input_size=96)


def _child_env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, (str(CHECKOUT), os.environ.get("PYTHONPATH"))))
    return {"PYTHONPATH": path, **extra}


@pytest.fixture(scope="module")
def explaining(explainable_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A predictor serving the explainable model."""
    log = tmp_path_factory.mktemp("explain") / "predictor.log"
    process = PredictorProcess(explainable_dir, model_name="small", env=_child_env(), log_path=log)
    with process, httpx.Client(base_url=process.url, timeout=120.0, trust_env=False) as http:
        yield http


def test_colour_map_runs_from_blue_to_red() -> None:
    ends = colour_map(np.array([0.0, 0.5, 1.0]))
    assert ends[0].tolist() == [0, 0, 128] and ends[2].tolist() == [128, 0, 0]
    assert ends[1][1] == 255  # the middle is green-ish


def test_overlay_blends_the_heat_map_at_the_photo_size() -> None:
    pixels = np.full((40, 40, 3), 100, dtype=np.uint8)
    heat = np.array([[0.0, 1.0], [0.0, 0.0]], dtype=np.float32)
    blended = overlay(pixels, heat)
    assert blended.shape == (40, 40, 3) and blended.dtype == np.uint8
    assert blended[5, 35, 0] > blended[35, 5, 0]  # red where the heat is
    with Image.open(io.BytesIO(overlay_png(pixels, heat))) as image:
        assert image.format == "PNG" and image.size == (40, 40)


def test_the_exported_signature_explains_the_served_probabilities(explainable_dir: Path) -> None:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(explainable_dir))
    assert sorted(loaded.signatures) == [EXPLAIN_SIGNATURE, "serving_default"]
    batch = np.random.default_rng(0).uniform(-1, 1, (2, 96, 96, 3)).astype(np.float32)
    served = loaded.signatures["serving_default"](image=tf.constant(batch))["probabilities"].numpy()
    probabilities, heat = Explainer(explainable_dir, input_name="image", output_name="probabilities").explain(
        batch
    )
    np.testing.assert_allclose(probabilities, served, atol=1e-5)
    assert heat.shape == (2, 3, 3) and heat.min() >= 0 and heat.max() <= 1 + 1e-6


def test_a_model_without_the_signature_cannot_explain(foreign_savedmodel_dir: Path) -> None:
    explainer = Explainer(foreign_savedmodel_dir, input_name="input_1", output_name="output_0")
    with pytest.raises(
        ExplanationUnavailable, match="'explain' signature to explain, got only \\['serving_default'\\]"
    ):
        explainer.explain(np.zeros((1, 224, 224, 3), dtype=np.float32))


def test_explain_over_http_gives_the_grade_a_heat_map_and_an_overlay(explaining: httpx.Client) -> None:
    photo = encode_image(make_fundus_image(3, size=224, seed=41), "JPEG")
    headers = {"content-type": "image/jpeg"}
    predicted = explaining.post("/v1/models/small:predict", content=photo, headers=headers)
    explained = explaining.post("/v1/models/small:explain", content=photo, headers=headers)
    assert predicted.status_code == 200 and explained.status_code == 200, explained.text
    answer = explained.json()
    assert answer["method"] == "grad-cam" and answer["model"] == "small" and answer["explain_ms"] > 0
    (item,) = answer["explanations"]
    expected = predicted.json()["predictions"][0]
    assert item["grade"] == expected["grade"] and item["label"] == expected["label"]
    np.testing.assert_allclose(item["probabilities"], expected["probabilities"], atol=1e-4)
    heat = np.array(item["heatmap"]["values"])
    assert (item["heatmap"]["height"], item["heatmap"]["width"]) == heat.shape == (3, 3)
    assert heat.min() >= 0 and heat.max() <= 1
    with Image.open(io.BytesIO(base64.b64decode(item["overlay_png_b64"]))) as image:
        assert image.format == "PNG" and image.size == (96, 96)


def test_explain_takes_a_json_batch_and_the_gate_still_applies(explaining: httpx.Client) -> None:
    photos = [encode_image(make_fundus_image(g, size=224, seed=50 + g), "JPEG") for g in (0, 4)]
    body = {"instances": [{"image_b64": base64.b64encode(p).decode()} for p in photos]}
    response = explaining.post("/v1/models/small:explain", json=body)
    assert response.status_code == 200, response.text
    assert len(response.json()["explanations"]) == 2
    noise = np.random.default_rng(1).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    refused = explaining.post(
        "/v1/models/small:explain",
        content=encode_image(Image.fromarray(noise), "JPEG"),
        headers={"content-type": "image/jpeg"},
    )
    assert refused.status_code == 422 and "not a fundus photograph" in refused.json()["error"]


def test_an_older_model_answers_501_with_one_sentence(foreign_savedmodel_dir: Path, tmp_path: Path) -> None:
    process = PredictorProcess(
        foreign_savedmodel_dir, model_name="old", env=_child_env(), log_path=tmp_path / "old.log"
    )
    photo = encode_image(make_fundus_image(1, size=224, seed=3), "JPEG")
    with process, httpx.Client(base_url=process.url, timeout=120.0, trust_env=False) as http:
        response = http.post("/v1/models/old:explain", content=photo, headers={"content-type": "image/jpeg"})
        assert response.status_code == 501
        assert response.json() == {
            "error": "Expected the SavedModel to have an 'explain' signature to explain, got only "
            "['serving_default']; rebuild it with this version's 'dr-serving model build' or 'model train'."
        }
        assert (
            http.post(
                "/v1/models/old:predict", content=photo, headers={"content-type": "image/jpeg"}
            ).status_code
            == 200
        )
