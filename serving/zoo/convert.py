"""LiteRT conversion (owned by the image area; filled in there)."""

from __future__ import annotations

import argparse


def register(model_subparsers: argparse._SubParsersAction) -> None:
    """Add ``dr-serving model convert`` (not yet implemented)."""
