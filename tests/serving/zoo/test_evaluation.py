"""The metrics against values worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from serving.zoo.evaluation import confusion_matrix, evaluate, quadratic_weighted_kappa, roc_auc, roc_curve


def test_quadratic_weighted_kappa() -> None:
    truth = np.array([0, 1, 2, 3, 4])
    assert quadratic_weighted_kappa(truth, truth, classes=5) == pytest.approx(1.0)
    # Two raters, two classes: observed [[1, 1], [0, 2]]; weights [[0, 1], [1, 0]];
    # expected = outer([2, 2], [1, 3]) / 4 = [[0.5, 1.5], [0.5, 1.5]] → κ = 1 − 1 / (1.5 + 0.5) = 0.5.
    assert quadratic_weighted_kappa(
        np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), classes=2
    ) == pytest.approx(0.5)
    # A constant rater agrees with nothing beyond chance.
    assert quadratic_weighted_kappa(truth, np.zeros(5, dtype=int), classes=5) == pytest.approx(0.0)


def test_roc_and_auc() -> None:
    labels = np.array([True, True, False, False, True])
    scores = np.array([0.9, 0.4, 0.4, 0.1, 0.8])
    # Positives 0.9, 0.4, 0.8 against negatives 0.4, 0.1: 5 wins and 1 tie of 6 pairs.
    assert roc_auc(labels, scores) == pytest.approx(5.5 / 6)
    fpr, tpr, thresholds = roc_curve(labels, scores)
    assert fpr.tolist() == pytest.approx([0, 0, 0, 0.5, 1])
    assert tpr.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1, 1])
    assert thresholds[1:].tolist() == [0.9, 0.8, 0.4, 0.1]
    assert math.isnan(roc_auc(np.array([True, True]), np.array([0.1, 0.2])))


def test_evaluate_the_referral_question_and_the_grades(tmp_path: Path) -> None:
    truth = np.array([0, 0, 1, 2, 3, 4])
    probabilities = np.array(
        [
            [0.9, 0.1, 0.0, 0.0, 0.0],
            [0.3, 0.2, 0.5, 0.0, 0.0],  # referable score 0.5: flagged at 0.5 (a false positive)
            [0.1, 0.8, 0.1, 0.0, 0.0],
            [0.1, 0.6, 0.3, 0.0, 0.0],  # referable score 0.3: missed
            [0.0, 0.0, 0.2, 0.7, 0.1],
            [0.0, 0.0, 0.0, 0.1, 0.9],
        ]
    )
    found = evaluate(probabilities, truth, threshold=0.5)
    assert found.photos == 6 and found.accuracy == pytest.approx(4 / 6)
    assert found.sensitivity == pytest.approx(2 / 3) and found.specificity == pytest.approx(2 / 3)
    assert found.confusion == tuple(map(tuple, confusion_matrix(truth, probabilities.argmax(1), classes=5)))
    assert sum(map(sum, found.confusion)) == 6 and found.confusion[1][1] == 1 and found.confusion[0][2] == 1
    assert 0 < found.referable_auc < 1 and found.roc[0] == (0.0, 0.0) and found.roc[-1] == (1.0, 1.0)
    assert "| 6 | " in found.table() and "| 2 | 0 | 1 | 0 | 0 | 0 |" in found.table()
    roc, confusion = found.plot(tmp_path)
    for path in (roc, confusion):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (450, 450)
    with pytest.raises(ValueError, match="shaped \\[N, classes\\]"):
        evaluate(np.zeros((2, 5)), np.zeros(3, dtype=int))
