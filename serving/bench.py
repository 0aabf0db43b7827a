"""``dr-serving bench``: placeholder while the benchmark is written."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dr-serving bench``."""
    parser = subparsers.add_parser("bench", help="Benchmark the models and the server on this machine.")
    parser.set_defaults(func=lambda args: 0)
