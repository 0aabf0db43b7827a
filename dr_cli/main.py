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
import importlib
import sys
from collections.abc import Callable, Sequence

from dr_cli.errors import CliError

__all__ = ["COMMAND_MODULES", "OUR_PACKAGES", "build_parser", "main"]

# (module, sub-command names it registers, extra that provides its dependencies)
COMMAND_MODULES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("serving.zoo.cli", ("model",), "tf"),
    ("serving.commands", ("serve",), "serve"),
    ("serving.bench", ("bench",), "serve,tf"),
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


def build_parser() -> argparse.ArgumentParser:
    """Build the root parser with every sub-command that this installation can offer."""
    parser = argparse.ArgumentParser(
        prog="dr-serving",
        description="Serve, deploy and load-test diabetic-retinopathy classifiers on KServe.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name, names, extra in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Tolerated: a missing third-party dependency, or a whole package of ours left out of this
            # installation (the predictor image ships `serving` only). A missing module inside a package
            # that is present is a bug.
            missing = exc.name or ""
            if missing.split(".")[0] in OUR_PACKAGES and missing != module_name.split(".")[0]:
                raise
            for name in names:
                stub = subparsers.add_parser(name, help=f"(unavailable: needs the {extra!r} extra)")
                stub.set_defaults(func=_missing_extra(names, extra, exc))
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dr-serving``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
