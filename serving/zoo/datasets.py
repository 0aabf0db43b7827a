"""Labelled fundus photos on disk: the APTOS 2019 layout or a folder per grade, and a stratified split.

- APTOS: ``DIR/train.csv`` with columns ``id_code,diagnosis`` and ``DIR/train_images/<id_code>.png`` (``.jpg``
  and ``.jpeg`` are found too);
- folders: ``DIR/0/ … DIR/4/`` holding ``.png``/``.jpg``/``.jpeg`` files, the folder name being the grade.

``stratified_split`` keeps each grade's share in both parts (the published recipe: 70 / 30, seeded).
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "Dataset", "Example", "load_dataset", "stratified_split"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True, kw_only=True)
class Example:
    """One labelled photo."""

    path: Path
    grade: int


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """The labelled photos of one directory and the layout they were found in."""

    root: Path
    layout: str
    examples: tuple[Example, ...]

    @property
    def grades(self) -> np.ndarray:
        """Every example's grade, int64."""
        return np.array([example.grade for example in self.examples], dtype=np.int64)

    def counts(self, classes: int = 5) -> list[int]:
        """Examples per grade."""
        return np.bincount(self.grades, minlength=classes).tolist()

    def fingerprint(self) -> str:
        """A short hash of the file names, sizes and grades (a changed dataset has another one)."""
        digest = hashlib.sha256()
        for example in self.examples:
            size = example.path.stat().st_size
            digest.update(f"{example.path.relative_to(self.root)}\0{size}\0{example.grade}\n".encode())
        return digest.hexdigest()[:16]

    def describe(self) -> str:
        """One line, e.g. ``APTOS layout in /data: 3662 photos, per grade [1805, 370, 999, 193, 295]``."""
        name = "APTOS" if self.layout == "aptos" else "folder-per-grade"
        return f"{name} layout in {self.root}: {len(self.examples)} photos, per grade {self.counts()}"


def load_dataset(directory: str | os.PathLike[str], *, classes: int = 5) -> Dataset:
    """The labelled photos under ``directory`` (APTOS or folder per grade); ``ValueError`` if none."""
    root = Path(directory)
    if not root.is_dir():
        raise ValueError(f"Expected a data directory at {str(root)!r}, but there is none.")
    if (root / "train.csv").is_file():
        examples = _aptos(root, classes=classes)
        layout = "aptos"
    elif any((root / str(grade)).is_dir() for grade in range(classes)):
        examples = _folders(root, classes=classes)
        layout = "folders"
    else:
        raise ValueError(
            f"Expected {str(root)!r} to hold train.csv + train_images/ (APTOS) or folders 0/ … "
            f"{classes - 1}/, found neither."
        )
    if len(examples) < 2 * classes:
        raise ValueError(
            f"Expected at least {2 * classes} labelled photos in {str(root)!r}, got {len(examples)}."
        )
    return Dataset(root=root, layout=layout, examples=tuple(examples))


def _aptos(root: Path, *, classes: int) -> list[Example]:
    images = root / "train_images"
    if not images.is_dir():
        raise ValueError(f"Expected the APTOS images in {str(images)!r}, but that folder does not exist.")
    available = {path.stem: path for path in images.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES}
    examples = []
    with open(root / "train.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"id_code", "diagnosis"} <= set(reader.fieldnames):
            raise ValueError(
                f"Expected train.csv to have columns id_code,diagnosis, got {reader.fieldnames!r}."
            )
        for line, row in enumerate(reader, start=2):
            grade_text = (row["diagnosis"] or "").strip()
            if not grade_text.isdigit() or int(grade_text) >= classes:
                raise ValueError(
                    f"Expected train.csv line {line} to have a diagnosis 0–{classes - 1}, got {grade_text!r}."
                )
            path = available.get((row["id_code"] or "").strip())
            if path is None:
                raise ValueError(
                    f"Expected an image for id_code {row['id_code']!r} (train.csv line {line}) in "
                    f"{str(images)!r}, found none."
                )
            examples.append(Example(path=path, grade=int(grade_text)))
    return examples


def _folders(root: Path, *, classes: int) -> list[Example]:
    examples = []
    for grade in range(classes):
        folder = root / str(grade)
        if folder.is_dir():
            examples += [
                Example(path=path, grade=grade)
                for path in sorted(folder.iterdir())
                if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
            ]
    return examples


def stratified_split(
    grades: np.ndarray, *, validation: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation parts, each grade split ``1 − validation`` / ``validation``.

    A grade with two or more photos puts at least one in each part; a grade with one photo trains.
    """
    if not 0 < validation < 1:
        raise ValueError(f"Expected a validation share between 0 and 1, got {validation!r}.")
    rng = np.random.default_rng(seed)
    train: list[int] = []
    held: list[int] = []
    for grade in np.unique(grades):
        members = rng.permutation(np.flatnonzero(grades == grade))
        count = len(members)
        take = 0 if count < 2 else min(count - 1, max(1, round(count * validation)))
        held += members[:take].tolist()
        train += members[take:].tolist()
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(held), dtype=np.int64)
