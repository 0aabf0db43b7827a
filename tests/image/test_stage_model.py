"""What each flavour bakes of a model folder (``dr_image.images.stage_model``); no engine needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from dr_image import images as images_module

FILES = (
    "saved_model.pb",
    "variables/variables.index",
    "dr_model.json",
    "model.tflite",
    "model.tflite.json",
    "model.int8.tflite",
    "model.int8.tflite.json",
)


@pytest.fixture
def staged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A model folder holding every file a converted and quantized model has, and a private bake folder."""
    images = images_module
    monkeypatch.setattr(images, "BAKE_DIR", tmp_path / "build" / "bake")
    monkeypatch.setattr(images, "ROOT", tmp_path)
    source = tmp_path / "models" / "mobilenet"
    for name in FILES:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(name)

    def stage(flavour: str) -> set[str]:
        target = tmp_path / images.stage_model(source, flavour)
        return {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()}

    return stage


def test_lite_bakes_both_litert_precisions_and_the_metadata(staged) -> None:
    assert staged("lite") == {
        "dr_model.json",
        "model.tflite",
        "model.tflite.json",
        "model.int8.tflite",
        "model.int8.tflite.json",
    }


def test_full_bakes_the_savedmodel_without_any_litert_file(staged) -> None:
    assert staged("full") == {"saved_model.pb", "variables/variables.index", "dr_model.json"}
