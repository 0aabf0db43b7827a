"""The ``dr-serving`` root parser: a static registry of the areas' ``commands`` modules, imported lazily.

Each module listed in ``COMMAND_MODULES`` exposes ``register(subparsers)``, which adds its sub-command(s) and
sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code). The registry
is static (no entry points) because the predictor image copies the packages as source, without distribution
metadata. Modules that need an optional extra (TensorFlow, Locust, ...) are imported only here, so the lite
image, which lacks them, still starts and says which extra a missing command needs.

Exit codes: 0 success, 1 runtime failure, 2 bad usage (argparse's own convention), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Callable, Iterator, Sequence

from dr_cli.errors import CliError

__all__ = ["COMMAND_MODULES", "OUR_PACKAGES", "build_parser", "main"]

# (module, sub-command names it registers, extra that provides its dependencies)
COMMAND_MODULES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("serving.zoo.cli", ("model",), "tf"),
    ("serving.commands", ("serve",), "serve"),
    ("serving.bench", ("bench",), "serve,tf"),
    ("serving.coldstart", ("cold-start",), "serve"),
    ("loadtest.commands", ("lab", "demo"), "lab"),
    ("dr_deploy.commands", ("deploy",), "lab"),
)

#: Our top-level packages; one missing entirely is tolerated (the image ships ``serving`` and ``dr_cli``).
OUR_PACKAGES = frozenset({"serving", "loadtest", "dr_deploy", "dr_cli"})


def _missing_extra(
    names: tuple[str, ...], extra: str, exc: ImportError
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise CliError(
            f"'dr-serving {names[0]}' needs the {extra!r} extra, which is not installed ({exc}); "
            f"install it with: pip install 'dr-serving[{extra}]'"
        )

    return run


@contextlib.contextmanager
def _argv_hidden(hide: bool) -> Iterator[None]:
    """Show an imported module an empty command line when ``hide``.

    ``kserve.model_server`` parses ``sys.argv`` when it is imported (kserve 0.21, model_server.py:225) and
    exits on a flag value it does not accept, e.g. ``dr-serving lab run warm-up --protocol sagemaker``
    (KServe's own ``--protocol`` takes v1|v2|grpc-v2). Only the module that owns the command being run
    sees the real command line.
    """
    saved = sys.argv
    if hide:
        sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Build the root parser with every sub-command that this installation can offer.

    ``command`` is the sub-command about to run (``None``: none, e.g. ``--help``); only its module is imported
    and registered with the real ``sys.argv`` visible. A known ``command`` imports no other module: the others
    cost the predictor's cold start 0.1-0.9 s (matplotlib, pyhelm3, Locust; ``dr-serving cold-start``).
    """
    known = any(command in names for _, names, _ in COMMAND_MODULES)
    parser = argparse.ArgumentParser(
        prog="dr-serving",
        description="Serve, deploy and load-test diabetic-retinopathy classifiers on KServe.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name, names, extra in COMMAND_MODULES:
        if known and command not in names:
            continue
        with _argv_hidden(command not in names):
            try:
                # register() may import its dependencies itself (serving.commands imports kserve there).
                importlib.import_module(module_name).register(subparsers)
            except ModuleNotFoundError as exc:
                # Tolerated: a missing third-party dependency, or a whole package of ours left out of this
                # installation (the predictor image ships `serving` only, the lab image no model server). A
                # missing module inside a package that is present is a bug.
                missing = exc.name or ""
                if missing.split(".")[0] in OUR_PACKAGES and missing != module_name.split(".")[0]:
                    raise
                for name in names:
                    # Every word after the command is taken as a positional (no prefix character), so the stub
                    # says which extra is missing whatever flags the command line holds.
                    stub = subparsers.add_parser(
                        name,
                        help=f"(unavailable: needs the {extra!r} extra)",
                        prefix_chars="\0",
                        add_help=False,
                    )
                    stub.add_argument("words", nargs="*")
                    stub.set_defaults(func=_missing_extra(names, extra, exc))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dr-serving``; returns the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(next((word for word in words if not word.startswith("-")), None))
    args = parser.parse_args(words)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
