"""Tests for ``serving.metadata``: the ``dr_model.json`` beside a SavedModel."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from serving.metadata import (
    DEFAULT_CLASS_NAMES,
    METADATA_FILENAME,
    SCALINGS,
    InputInfo,
    ModelMetadata,
    WeightsInfo,
)

# The example from docs/architecture.md, verbatim.
DOCUMENTED = {
    "schema_version": 1,
    "name": "mobilenet",
    "architecture": "mobilenet",
    "parameters": 3377221,
    "signature": "serving_default",
    "input": {"name": "image", "height": 224, "width": 224, "channels": 3, "dtype": "float32"},
    "output": {"name": "probabilities"},
    "scaling": "minus_one_to_one",
    "class_names": ["No DR", "Mild", "Moderate", "Severe", "Proliferative"],
    "referable_min_grade": 2,
    "preprocessing": {"crop_fundus": True, "ben_graham": False, "ben_graham_sigma": 10.0},
    "weights": {"source": "synthetic", "trained_on": "...", "clinical_use": False, "notes": "..."},
    "created": "2026-11-23T15:00:00Z",
    "tensorflow_version": "2.21.0",
}


def test_documented_example_round_trips() -> None:
    meta = ModelMetadata.from_dict(DOCUMENTED)
    assert meta.parameters == 3377221
    assert meta.input_size == (224, 224)
    assert meta.class_names == DEFAULT_CLASS_NAMES
    assert meta.weights.source == "synthetic"
    assert meta.to_dict() == DOCUMENTED


def test_missing_keys_take_defaults() -> None:
    meta = ModelMetadata.from_dict({"input": {"height": 299, "width": 299}, "scaling": "zero_one"})
    assert meta.input == InputInfo(name="image", height=299, width=299)
    assert meta.scaling == "zero_one"
    assert meta.output.name == "probabilities"
    assert meta.num_classes == 5
    assert meta.weights == WeightsInfo(source="unknown")
    assert meta.weights.clinical_use is False


def test_save_and_load(tmp_path: Path) -> None:
    meta = replace(ModelMetadata.from_dict(DOCUMENTED), name="vgg19", scaling="caffe")
    path = meta.save(tmp_path)
    assert path == tmp_path / METADATA_FILENAME
    assert json.loads(path.read_text())["scaling"] == "caffe"
    assert ModelMetadata.load(tmp_path) == meta
    assert [p.name for p in tmp_path.iterdir()] == [METADATA_FILENAME]  # no temporary file left behind


def test_missing_file_gives_none(tmp_path: Path) -> None:
    assert ModelMetadata.load(tmp_path) is None


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / METADATA_FILENAME).write_text("{not json")
    with pytest.raises(ValueError, match=r"dr_model\.json.*not valid JSON"):
        ModelMetadata.load(tmp_path)


def test_invalid_file_names_file_and_field(tmp_path: Path) -> None:
    (tmp_path / METADATA_FILENAME).write_text(json.dumps({"scaling": "imagenet"}))
    with pytest.raises(ValueError, match=r"dr_model\.json.*'scaling'.*'imagenet'"):
        ModelMetadata.load(tmp_path)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scaling": "imagenet"}, "scaling"),
        ({"input": {"height": 0}}, "input.height"),
        ({"input": {"width": "224"}}, "input.width"),
        ({"input": {"dtype": "int64"}}, "input.dtype"),
        ({"input": {"name": ""}}, "input.name"),
        ({"output": {"name": 3}}, "output.name"),
        ({"class_names": ["only one"]}, "class_names"),
        ({"class_names": ["a", "a"]}, "class_names"),
        ({"class_names": "No DR"}, "class_names"),
        ({"referable_min_grade": 5}, "referable_min_grade"),
        ({"parameters": -1}, "parameters"),
        ({"parameters": True}, "parameters"),
        ({"weights": {"source": "eyepacs"}}, "weights.source"),
        ({"weights": {"clinical_use": "no"}}, "weights.clinical_use"),
        ({"preprocessing": {"ben_graham_sigma": 0}}, "preprocessing.ben_graham_sigma"),
        ({"preprocessing": {"crop_fundus": 1}}, "preprocessing.crop_fundus"),
        ({"schema_version": 2}, "schema_version"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_values_are_rejected_naming_the_field(change: dict, field: str) -> None:
    with pytest.raises(ValueError, match=rf"field '{field}'"):
        ModelMetadata.from_dict({**DOCUMENTED, **change})


@pytest.mark.parametrize(
    ("data", "where", "key"),
    [({"scalling": "raw"}, "the top level", "scalling"), ({"input": {"size": 224}}, "input", "size")],
    ids=["top-level", "nested"],
)
def test_unknown_keys_are_rejected(data: dict, where: str, key: str) -> None:
    with pytest.raises(ValueError, match=rf"at '{where}' has unknown key '{key}'"):
        ModelMetadata.from_dict(data)


def test_not_an_object_is_rejected() -> None:
    with pytest.raises(ValueError, match="must be a JSON object"):
        ModelMetadata.from_dict(["mobilenet"])


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ValueError, match="'scaling'"):
        ModelMetadata(scaling="imagenet")
    assert ModelMetadata(class_names=["a", "b", "c"]).class_names == ("a", "b", "c")


def test_every_scaling_is_accepted() -> None:
    assert [ModelMetadata.from_dict({"scaling": s}).scaling for s in SCALINGS] == list(SCALINGS)


def test_repr_is_short_and_readable() -> None:
    text = repr(ModelMetadata.from_dict(DOCUMENTED))
    assert text == (
        "ModelMetadata(name='mobilenet', architecture='mobilenet', "
        "input=InputInfo('image', 224x224x3, float32), "
        "output='probabilities', scaling='minus_one_to_one', classes=5, weights='synthetic')"
    )
