"""Moved: the root command line is ``dr_cli.main``; ``CliError`` and ``positive_int`` live in ``dr_cli``.

Kept only so that modules not yet switched keep importing ``serving.cli.CliError`` / ``positive_int``; it
imports the two leaves, never ``dr_cli.main``, so no import circle runs through it. New code imports
``dr_cli.errors`` and ``dr_cli.types``.
"""

from __future__ import annotations

from dr_cli.errors import CliError
from dr_cli.types import positive_int

__all__ = ["CliError", "positive_int"]
