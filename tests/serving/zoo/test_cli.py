"""Tests for ``dr-serving model …`` through ``dr_cli.main.main``: exit codes and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dr_cli.main import main
from serving.metadata import METADATA_FILENAME, ModelMetadata

pytestmark = pytest.mark.slow


def test_build_writes_a_model_then_reuses_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mobilenet"
    args = ["model", "build", "--arch", "mobilenet", "--out", str(out), "--input-size", "64", "--seed", "5"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert ">> building mobilenet at 64x64x3 (seed 5)" in first
    assert "3,377,221 parameters" in first
    metadata = ModelMetadata.load(out)
    assert metadata is not None
    assert (metadata.architecture, metadata.input_size, metadata.weights.source) == (
        "mobilenet",
        (64, 64),
        "random-init",
    )
    created = (out / METADATA_FILENAME).read_text()

    assert main(args) == 0
    assert ">> reusing mobilenet" in capsys.readouterr().out
    assert (out / METADATA_FILENAME).read_text() == created

    assert main([*args, "--force"]) == 0
    assert ">> building mobilenet" in capsys.readouterr().out


def test_build_with_other_options_rebuilds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m"
    base = ["model", "build", "--arch", "mobilenet", "--out", str(out), "--input-size", "64"]
    assert main(base) == 0
    assert main([*base[:-1], "96"]) == 0
    assert ">> building" in capsys.readouterr().out.split(">> wrote")[1]
    assert ModelMetadata.load(out).input_size == (96, 96)


def test_build_with_synthetic_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "trained"
    args = ["model", "build", "--arch", "mobilenet", "--out", str(out), "--input-size", "64"]
    assert main([*args, "--train-synthetic", "10", "--epochs", "1"]) == 0
    text = capsys.readouterr().out
    assert ">> training mobilenet for 1 epoch(s)" in text and "held-out" in text
    weights = json.loads((out / METADATA_FILENAME).read_text())["weights"]
    assert weights["source"] == "synthetic" and weights["clinical_use"] is False
    assert weights["trained_on"].startswith("10 synthetic fundus images")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arch", "resnet50"], "invalid choice: 'resnet50'"),
        (["--arch", "mobilenet", "--train-synthetic", "3"], "expected 0 or an integer >= 5, got '3'"),
        (["--arch", "mobilenet", "--input-size", "8"], "expected an input size >= 32, got '8'"),
        (["--arch", "mobilenet", "--epochs", "0"], "expected a positive integer, got '0'"),
    ],
    ids=["bad-arch", "few-images", "tiny-input", "no-epochs"],
)
def test_bad_usage_exits_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["model", "build", "--out", str(tmp_path / "m"), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_build_failure_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = main(["model", "build", "--arch", "mobilenet", "--out", str(blocker / "m"), "--input-size", "64"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: building 'mobilenet' into ") and err.count("\n") == 1


def test_info_shows_metadata_and_signature(mobilenet_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "info", str(mobilenet_dir)]) == 0
    out = capsys.readouterr().out
    assert "signature: serving_default: image float32[?,224,224,3] -> probabilities float32[?,5]" in out
    assert "parameters: 3,377,221" in out
    assert "weights: synthetic (" in out
    assert "clinical use: no (serving and benchmarking only)" in out


def test_info_on_a_foreign_model(foreign_savedmodel_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "info", str(foreign_savedmodel_dir)]) == 0
    out = capsys.readouterr().out
    assert "signature: serving_default: inputs float32[?,224,224,3] -> output_0 float32[?,5]" in out
    assert "metadata: none" in out


def test_info_on_a_299_model(savedmodel_299_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "info", str(savedmodel_299_dir)]) == 0
    assert "input_1 float32[?,299,299,3] -> output_0 float32[?,5]" in capsys.readouterr().out


def test_info_without_a_savedmodel_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "info", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err
        == f"Error: expected a SavedModel (saved_model.pb) in {str(tmp_path)!r}, found none\n"
    )


def test_info_with_corrupt_metadata_exits_1(
    foreign_savedmodel_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    copy = Path(shutil.copytree(foreign_savedmodel_dir, tmp_path / "copy"))
    (copy / METADATA_FILENAME).write_text('{"scaling": "imagenet"}')
    assert main(["model", "info", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "dr_model.json" in err and "'scaling'" in err and err.count("\n") == 1
