"""How good a DR classifier is on held-out photos: the APTOS metric and the referral question, in numpy.

- quadratic weighted kappa (Cohen's κ with weights (i − j)² / (k − 1)², the APTOS 2019 metric);
- accuracy over the five grades and the confusion matrix (rows: true grade, columns: predicted);
- referable DR (grade ≥ ``referable_min_grade``): the score is the summed probability of the referable grades;
  ROC curve and its area (the Mann–Whitney statistic, ties counted half), sensitivity and specificity at the
  chosen threshold.

``Evaluation.plot`` writes the ROC curve and the confusion matrix as PNG (matplotlib, Agg backend).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = ["Evaluation", "confusion_matrix", "evaluate", "quadratic_weighted_kappa", "roc_auc", "roc_curve"]


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, *, classes: int) -> np.ndarray:
    """Counts shaped (classes, classes): rows the true grade, columns the predicted one."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(truth, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix


def quadratic_weighted_kappa(truth: np.ndarray, predicted: np.ndarray, *, classes: int) -> float:
    """Cohen's kappa with quadratic weights; 1 is perfect agreement, 0 chance (``nan`` if undefined)."""
    observed = confusion_matrix(truth, predicted, classes=classes).astype(np.float64)
    total = observed.sum()
    if total == 0:
        return math.nan
    index = np.arange(classes)
    weights = (index[:, None] - index[None, :]) ** 2 / (classes - 1) ** 2
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / total
    denominator = float((weights * expected).sum())
    if denominator == 0:
        return math.nan
    return 1.0 - float((weights * observed).sum()) / denominator


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct score (descending), and those thresholds."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    distinct = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    true_positives = np.cumsum(sorted_labels)[distinct]
    false_positives = (distinct + 1) - true_positives
    positives, negatives = labels.sum(), (~labels).sum()
    tpr = np.r_[0.0, true_positives / positives] if positives else np.full(len(distinct) + 1, math.nan)
    fpr = np.r_[0.0, false_positives / negatives] if negatives else np.full(len(distinct) + 1, math.nan)
    return fpr, tpr, np.r_[np.inf, sorted_scores[distinct]]


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counted half."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives, negatives = scores[labels], scores[~labels]
    if positives.size == 0 or negatives.size == 0:
        return math.nan
    greater = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return float((greater + 0.5 * ties) / (positives.size * negatives.size))


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """The figures of one evaluation (``nan`` where a figure is undefined, e.g. no referable photo)."""

    photos: int
    quadratic_weighted_kappa: float
    accuracy: float
    referable_auc: float
    threshold: float
    sensitivity: float
    specificity: float
    referable_min_grade: int
    confusion: tuple[tuple[int, ...], ...]
    roc: tuple[tuple[float, float], ...]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (``nan`` becomes ``None``)."""
        data = asdict(self)
        return {
            key: (None if isinstance(value, float) and math.isnan(value) else value)
            for key, value in data.items()
        }

    def table(self) -> str:
        """The figures as a Markdown table, then the confusion matrix."""

        def show(value: float, percent: bool = False) -> str:
            if math.isnan(value):
                return "n/a"
            return f"{value:.1%}" if percent else f"{value:.3f}"

        classes = len(self.confusion)
        lines = [
            "| held-out photos | quadratic weighted κ | accuracy | referable AUC | threshold | sensitivity "
            "| specificity |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            f"| {self.photos} | {show(self.quadratic_weighted_kappa)} | {show(self.accuracy, True)} | "
            f"{show(self.referable_auc)} | {self.threshold:g} | {show(self.sensitivity, True)} | "
            f"{show(self.specificity, True)} |",
            "",
            "| true \\ predicted | " + " | ".join(str(grade) for grade in range(classes)) + " |",
            "| --- |" + " --- |" * classes,
        ]
        lines += [
            f"| {grade} | " + " | ".join(str(n) for n in row) + " |"
            for grade, row in enumerate(self.confusion)
        ]
        return "\n".join(lines)

    def plot(self, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``roc.png`` and ``confusion.png`` into ``directory``; returns their paths."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        figure, axes = plt.subplots(figsize=(4.5, 4.5), dpi=100)
        fpr, tpr = zip(*self.roc, strict=True) if self.roc else ((), ())
        axes.plot(fpr, tpr, color="tab:red", label=f"AUC {self.referable_auc:.3f}")
        axes.plot([0, 1], [0, 1], color="gray", linestyle=":", label="chance")
        axes.set(
            xlabel="1 − specificity",
            ylabel="sensitivity",
            title=f"Referable DR (grade ≥ {self.referable_min_grade}), {self.photos} photos",
            xlim=(0, 1),
            ylim=(0, 1.01),
        )
        axes.legend(loc="lower right")
        roc_path = out / "roc.png"
        figure.tight_layout()
        figure.savefig(roc_path)
        plt.close(figure)
        figure, axes = plt.subplots(figsize=(4.5, 4.5), dpi=100)
        matrix = np.array(self.confusion)
        axes.imshow(matrix, cmap="Blues")
        for (row, col), count in np.ndenumerate(matrix):
            axes.text(col, row, str(count), ha="center", va="center", color="black")
        axes.set(
            xlabel="predicted grade", ylabel="true grade", title=f"κ = {self.quadratic_weighted_kappa:.3f}"
        )
        confusion_path = out / "confusion.png"
        figure.tight_layout()
        figure.savefig(confusion_path)
        plt.close(figure)
        return roc_path, confusion_path


def evaluate(
    probabilities: np.ndarray, truth: np.ndarray, *, referable_min_grade: int = 2, threshold: float = 0.5
) -> Evaluation:
    """Evaluate ``[N, classes]`` probabilities against true grades."""
    probs = np.asarray(probabilities, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.int64)
    if probs.ndim != 2 or probs.shape[0] != truth.shape[0] or probs.shape[0] == 0:
        raise ValueError(
            f"Expected probabilities shaped [N, classes] for N = {truth.shape[0]} > 0 grades, "
            f"got {list(probs.shape)!r}."
        )
    classes = probs.shape[1]
    predicted = probs.argmax(axis=1)
    referable = truth >= referable_min_grade
    score = probs[:, referable_min_grade:].sum(axis=1)
    flagged = score >= threshold
    fpr, tpr, _ = roc_curve(referable, score)
    positives, negatives = int(referable.sum()), int((~referable).sum())
    return Evaluation(
        photos=int(truth.shape[0]),
        quadratic_weighted_kappa=quadratic_weighted_kappa(truth, predicted, classes=classes),
        accuracy=float((predicted == truth).mean()),
        referable_auc=roc_auc(referable, score),
        threshold=float(threshold),
        sensitivity=float((flagged & referable).sum() / positives) if positives else math.nan,
        specificity=float((~flagged & ~referable).sum() / negatives) if negatives else math.nan,
        referable_min_grade=referable_min_grade,
        confusion=tuple(
            tuple(int(n) for n in row) for row in confusion_matrix(truth, predicted, classes=classes)
        ),
        roc=tuple((float(x), float(y)) for x, y in zip(fpr, tpr, strict=True)),
    )
