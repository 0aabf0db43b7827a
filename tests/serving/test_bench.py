"""``dr-serving bench``: its statistics and argument checks (the full run is ``make bench``, not a test)."""

from __future__ import annotations

import pytest

from serving.bench import percentile
from serving.cli import main


def test_percentile_interpolates() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 100) == 4.0
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


def test_percentile_of_nothing() -> None:
    with pytest.raises(ValueError, match="got none"):
        percentile([], 50)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--requests", "2"], "Error: Expected --requests of at least 3, got 2."),
        (
            ["bench", "--models", "mobilenet,resnet"],
            "Error: Expected models among ['mobilenet', 'vgg19'], got ['resnet'].",
        ),
    ],
    ids=["too-few-requests", "unknown-model"],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == message
