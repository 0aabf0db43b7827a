"""Tests for the ``serving.zoo`` package face: exported names, cheap import, reuse decisions."""

from __future__ import annotations

import io
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import serving.zoo
from serving.zoo import compatible_model, console_verbosity, describe_training, planned_metadata


def test_exported_members_are_sorted_and_present() -> None:
    assert serving.zoo.__all__ == sorted(serving.zoo.__all__)
    assert all(hasattr(serving.zoo, name) for name in serving.zoo.__all__)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_live_on_a_terminal_and_one_line_per_epoch_in_a_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert console_verbosity() == 2
    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert console_verbosity() == 1


def test_importing_the_package_does_not_import_tensorflow() -> None:
    code = "import sys, serving.zoo; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_planned_metadata_describes_the_build() -> None:
    trained = planned_metadata("mobilenet", train_synthetic=300, epochs=2, seed=4, input_size=160)
    assert trained.input_size == (160, 160) and trained.scaling == "minus_one_to_one"
    assert trained.weights.source == "synthetic" and not trained.weights.clinical_use
    assert trained.weights.trained_on == describe_training(300, epochs=2, seed=4)
    assert "300 synthetic fundus images" in trained.weights.trained_on
    assert planned_metadata("vgg19").weights.source == "random-init"
    assert describe_training(0, epochs=3, seed=0) is None
    head = planned_metadata("vgg19", train_synthetic=240, epochs=100, head_only=True)
    assert "dense head only" in (head.weights.trained_on or "")
    full = planned_metadata("vgg19", train_synthetic=240, epochs=100).weights.trained_on or ""
    assert head.weights.trained_on != full
    # VGG19 has no batch norm: trained whole, it trains through a folded batch-norm twin, and says so.
    assert "batch norm after every convolution folded into it" in full
    assert "batch norm" not in (trained.weights.trained_on or "")


def test_compatible_model_needs_the_same_options(mobilenet_dir: Path, tmp_path: Path) -> None:
    same = planned_metadata("mobilenet", train_synthetic=300, epochs=3, seed=0)
    assert compatible_model(mobilenet_dir, same) is not None
    assert (
        compatible_model(mobilenet_dir, planned_metadata("mobilenet", train_synthetic=300, epochs=2)) is None
    )
    assert compatible_model(mobilenet_dir, planned_metadata("vgg19", train_synthetic=300)) is None
    assert compatible_model(mobilenet_dir, replace(same, scaling="zero_one")) is None
    assert compatible_model(tmp_path, same) is None
