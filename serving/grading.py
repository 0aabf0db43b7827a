"""Class probabilities → DR grade, label and referral flag, as the model's metadata defines them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.metadata import ModelMetadata

__all__ = ["Grading", "grade_batch"]


@dataclass(frozen=True, kw_only=True)
class Grading:
    """The answer for one image: the most probable grade, its label, every probability, and referral."""

    grade: int
    label: str
    probabilities: tuple[float, ...]
    referable: bool
    #: The gate's verdict under the ``flag`` policy; ``None`` otherwise (and for pixels sent as a tensor).
    gradable: bool | None = None
    #: Its reason code when not gradable (``serving.gradability.REASONS``).
    ungradable_reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The V1 ``predictions`` item (``gradable`` and ``ungradable_reason`` only when the gate looked)."""
        item: dict[str, object] = {
            "grade": self.grade,
            "label": self.label,
            "probabilities": list(self.probabilities),
            "referable": self.referable,
        }
        if self.gradable is not None:
            item["gradable"] = self.gradable
            if not self.gradable:
                item["ungradable_reason"] = self.ungradable_reason
        return item


def grade_batch(probabilities: np.ndarray, metadata: ModelMetadata) -> list[Grading]:
    """Grade each row of ``probabilities`` (``[N, classes]``, in ``metadata.class_names`` order)."""
    probs = np.asarray(probabilities, dtype=np.float32)
    if probs.ndim != 2 or probs.shape[1] != metadata.num_classes:
        raise ValueError(
            f"Expected probabilities shaped [N, {metadata.num_classes}], got {list(probs.shape)!r}."
        )
    grades = probs.argmax(axis=1)
    rows = probs.tolist()
    return [
        Grading(
            grade=int(grade),
            label=metadata.class_names[int(grade)],
            probabilities=tuple(float(round(p, 6)) for p in row),
            referable=int(grade) >= metadata.referable_min_grade,
        )
        for grade, row in zip(grades, rows, strict=True)
    ]
