"""Labelled photos on disk: both layouts found, mistakes named, the split stratified and seeded."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from labelled_photos import write_aptos, write_folders

from serving.zoo.datasets import load_dataset, stratified_split


def test_aptos_layout(tmp_path: Path) -> None:
    dataset = load_dataset(write_aptos(tmp_path / "aptos", per_grade=3, size=64))
    assert dataset.layout == "aptos"
    assert dataset.counts() == [3, 3, 3, 3, 3]
    assert all(example.path.suffix == ".png" for example in dataset.examples)
    assert dataset.describe().startswith("APTOS layout in ") and dataset.describe().endswith(
        "[3, 3, 3, 3, 3]"
    )
    assert len(dataset.fingerprint()) == 16


def test_folder_layout_and_its_fingerprint_follows_the_files(tmp_path: Path) -> None:
    root = write_folders(tmp_path / "folders", per_grade=2, size=64)
    dataset = load_dataset(root)
    assert dataset.layout == "folders" and dataset.counts() == [2, 2, 2, 2, 2]
    before = dataset.fingerprint()
    (root / "4" / "photo-0004.jpg").rename(root / "3" / "photo-0004.jpg")
    moved = load_dataset(root)
    assert moved.counts() == [2, 2, 2, 3, 1] and moved.fingerprint() != before


def test_mistakes_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape("train.csv + train_images/ (APTOS) or folders 0/")):
        load_dataset(tmp_path)
    root = write_aptos(tmp_path / "a", per_grade=2, size=64)
    csv = root / "train.csv"
    csv.write_text(csv.read_text() + "missing01,2\n")
    with pytest.raises(ValueError, match=re.escape("image for id_code 'missing01' (train.csv line 12)")):
        load_dataset(root)
    csv.write_text("id_code,diagnosis\n000000ab,7\n")
    with pytest.raises(ValueError, match="line 2 to have a diagnosis 0–4, got '7'"):
        load_dataset(root)


def test_stratified_split_keeps_every_grade_in_both_parts() -> None:
    grades = np.repeat(np.arange(5), [40, 10, 20, 4, 6])
    train, held = stratified_split(grades, validation=0.3, seed=1)
    assert set(train) | set(held) == set(range(len(grades))) and not set(train) & set(held)
    assert np.bincount(grades[held], minlength=5).tolist() == [12, 3, 6, 1, 2]
    again = stratified_split(grades, validation=0.3, seed=1)
    other = stratified_split(grades, validation=0.3, seed=2)
    assert np.array_equal(held, again[1]) and not np.array_equal(held, other[1])
    with pytest.raises(ValueError, match="between 0 and 1"):
        stratified_split(grades, validation=1.0)
