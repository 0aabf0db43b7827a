"""The ``dr-serving`` root parser: sub-command registration and how missing pieces are reported."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from dr_cli import main as cli
from dr_cli.errors import CliError


def test_every_listed_command_is_registered() -> None:
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    expected = {name for _, names, _ in cli.COMMAND_MODULES for name in names}
    assert expected == {"model", "serve", "bench", "cold-start", "lab", "demo", "deploy"}
    assert expected <= set(subparsers.choices)


@pytest.mark.parametrize("command", ["serve", "model", "bench", "lab", "deploy", "cold-start"])
def test_a_known_command_imports_only_its_own_module(command: str) -> None:
    """A command being run skips the other commands' modules (the predictor's cold start) and still parses."""
    parser = cli.build_parser(command)
    subparsers = next(a for a in parser._actions if a.dest == "command")
    (owner,) = [names for _, names, _ in cli.COMMAND_MODULES if command in names]
    assert set(subparsers.choices) == set(owner)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([command, "--help"])
    assert exc.value.code == 0


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser under ``parser`` with the words that reach it (``("model", "convert")``)."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, (*path, name))


def test_every_help_text_reads_as_printed() -> None:
    """``--help`` of every command shows no escaped ``%%`` or unfilled ``%(...)s``: argparse fills only the
    arguments' help strings, so a description written with ``%%`` prints both signs."""
    tree = _parsers(cli.build_parser())
    helps = {" ".join(path) or "dr-serving": parser.format_help() for path, parser in tree}
    assert len(helps) > 20  # the whole tree was walked, not only the root
    wrong = {path: text for path, text in helps.items() if "%%" in text or "%(" in text}
    assert not wrong, f"help texts with printf escapes left in: {sorted(wrong)}"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_missing_third_party_dependency_becomes_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "COMMAND_MODULES", (("no_such_dependency_for_dr", ("ghost",), "ghostly"),))
    assert cli.main(["ghost"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: 'dr-serving ghost' needs the 'ghostly' extra")
    assert "pip install 'dr-serving[ghostly]'" in err
    assert len(err.splitlines()) == 1


def test_a_dependency_register_imports_itself_is_reported_the_same_way(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # serving.commands imports kserve inside register(): the lab image, without KServe, must say so.
    def register(subparsers: object) -> None:
        import no_such_model_server_for_dr  # type: ignore[import-not-found]  # noqa: F401

    module = types.ModuleType("dr_test_lazy_command")
    module.register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(cli, "COMMAND_MODULES", ((module.__name__, ("serve",), "serve"),))
    assert cli.main(["serve", "--model-dir=/mnt/models", "--http-port", "8080", "-h"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: 'dr-serving serve' needs the 'serve' extra")
    assert "no_such_model_server_for_dr" in err


def test_a_package_left_out_of_the_installation_is_tolerated(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The predictor image ships `serving` only: there, importing `loadtest` finds no package at all.
    class _NoLoadtest:
        @staticmethod
        def find_spec(name: str, path: object = None, target: object = None) -> None:
            if name == "loadtest":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    for name in [m for m in sys.modules if m == "loadtest" or m.startswith("loadtest.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoLoadtest(), *sys.meta_path])
    monkeypatch.setattr(cli, "COMMAND_MODULES", (("loadtest.commands", ("lab",), "lab"),))
    assert cli.main(["lab"]) == 1
    assert "needs the 'lab' extra" in capsys.readouterr().err


def test_a_missing_module_inside_our_own_package_is_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMAND_MODULES", (("serving.no_such_module", ("ghost",), "serve"),))
    with pytest.raises(ModuleNotFoundError, match=r"serving\.no_such_module"):
        cli.build_parser()


def test_cli_error_sets_the_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(args: argparse.Namespace) -> int:
        raise CliError("Expected a model directory, got 'nowhere'.", code=3)

    module = types.ModuleType("dr_test_failing_command")
    module.register = lambda subparsers: subparsers.add_parser("boom").set_defaults(func=fail)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(cli, "COMMAND_MODULES", ((module.__name__, ("boom",), "serve"),))
    assert cli.main(["boom"]) == 3
    assert capsys.readouterr().err == "Error: Expected a model directory, got 'nowhere'.\n"


def test_a_lab_flag_kserve_also_defines_is_not_parsed_by_kserve(tmp_path: Path) -> None:
    # kserve.model_server parses sys.argv on import; `serve`'s module must not see the lab's --protocol.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "serving",
            "lab",
            "run",
            "warm-up",
            "--url",
            "ftp://127.0.0.1",
            "--protocol",
            "sagemaker",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: Target url must be an absolute http(s) URL, got 'ftp://127.0.0.1'."
    ]
