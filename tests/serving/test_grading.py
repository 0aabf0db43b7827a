"""Probabilities → grade, label, referable."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from serving.grading import Grading, grade_batch
from serving.metadata import ModelMetadata

METADATA = ModelMetadata()


def test_grades_each_row() -> None:
    probabilities = np.array(
        [[0.7, 0.1, 0.1, 0.05, 0.05], [0.05, 0.05, 0.1, 0.1, 0.7], [0.1, 0.5, 0.2, 0.1, 0.1]],
        dtype=np.float32,
    )
    gradings = grade_batch(probabilities, METADATA)
    assert [g.grade for g in gradings] == [0, 4, 1]
    assert [g.label for g in gradings] == ["No DR", "Proliferative", "Mild"]
    assert [g.referable for g in gradings] == [False, True, False]
    assert gradings[1].probabilities == pytest.approx((0.05, 0.05, 0.1, 0.1, 0.7))


def test_referable_threshold_comes_from_metadata() -> None:
    row = np.array([[0.1, 0.6, 0.1, 0.1, 0.1]], dtype=np.float32)
    assert grade_batch(row, METADATA)[0].referable is False
    strict = dataclasses.replace(METADATA, referable_min_grade=1)
    assert grade_batch(row, strict)[0].referable is True


def test_to_dict_is_the_v1_item() -> None:
    grading = Grading(grade=2, label="Moderate", probabilities=(0.1, 0.1, 0.6, 0.1, 0.1), referable=True)
    assert grading.to_dict() == {
        "grade": 2,
        "label": "Moderate",
        "probabilities": [0.1, 0.1, 0.6, 0.1, 0.1],
        "referable": True,
    }


def test_wrong_number_of_classes() -> None:
    with pytest.raises(ValueError, match=r"Expected probabilities shaped \[N, 5\], got \[1, 3\]"):
        grade_batch(np.zeros((1, 3), dtype=np.float32), METADATA)
