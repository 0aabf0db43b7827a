"""Argument types shared by every sub-command (argparse ``type=``): each raises ``ArgumentTypeError``."""

from __future__ import annotations

import argparse

__all__ = ["comma_list", "key_value", "non_negative_float", "non_negative_int", "positive_int", "user_counts"]


def _int_at_least(text: str, minimum: int, expected: str) -> int:
    """``text`` as an integer of at least ``minimum``; else "expected <expected>, got '<text>'"."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer of at least 1 (counts of requests, users, images, epochs)."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """An integer of at least 0 (counts where none is allowed, e.g. float layers kept)."""
    return _int_at_least(text, 0, "an integer >= 0")


def non_negative_float(text: str) -> float:
    """A finite-or-infinite number ≥ 0, NaN rejected (seconds, tolerances)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, got {text!r}")
    return value


def user_counts(text: str) -> list[int]:
    """A comma-separated list of positive counts, e.g. ``10,100,200,500``."""
    return [positive_int(part.strip()) for part in text.split(",") if part.strip()] or [positive_int(text)]


def comma_list(text: str) -> list[str]:
    """A comma-separated list of names, empty items dropped, e.g. ``x86-4cpu,graviton-4cpu``."""
    return [part for part in text.split(",") if part]


def key_value(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` (both sides stripped; the key may not be empty)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()
