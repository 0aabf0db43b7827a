"""``dr_cli.help``: every sub-command's help shows real defaults and never "(default: None)"."""

from __future__ import annotations

import argparse

import pytest

from dr_cli.help import DefaultsHelpFormatter
from dr_cli.main import main


def test_defaults_are_shown_except_none() -> None:
    parser = argparse.ArgumentParser(prog="x", formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="Length of a run, s.")
    parser.add_argument("--out", help="File to write (default: runs/<UTC>.json).")
    parser.add_argument("--force", action="store_true", help="Rebuild.")
    text = " ".join(parser.format_help().split())
    assert "Length of a run, s. (default: 5.0)" in text
    assert "File to write (default: runs/<UTC>.json)." in text and "None" not in text
    assert "Rebuild. (default: False)" in text


@pytest.mark.parametrize(
    "argv",
    [["serve"], ["bench"], ["bench", "cold-start"], ["model", "build"], ["model", "convert"]],
    ids=["serve", "bench", "cold-start", "model-build", "model-convert"],
)
def test_no_sub_command_help_says_default_none(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "--" in printed and "(default: None)" not in printed
