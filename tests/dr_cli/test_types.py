"""The shared argument types: what each accepts, and the one-sentence error for what it refuses."""

from __future__ import annotations

import argparse

import pytest

from dr_cli.types import (
    comma_list,
    key_value,
    non_negative_float,
    non_negative_int,
    positive_int,
    user_counts,
)


@pytest.mark.parametrize(
    "text", ["0", "-3", "two", "1.5", ""], ids=["zero", "negative", "word", "fraction", "empty"]
)
def test_positive_int_rejects_what_is_not_a_count(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=f"expected a positive integer, got {text!r}"):
        positive_int(text)


@pytest.mark.parametrize("text", ["-1", "2.5", "many"], ids=["negative", "fraction", "word"])
def test_non_negative_int_rejects_what_is_not_a_count_from_zero(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=f"expected an integer >= 0, got '{text}'"):
        non_negative_int(text)


def test_non_negative_int_accepts_zero_and_counts() -> None:
    assert [non_negative_int(text) for text in ("0", "4", "32")] == [0, 4, 32]


def test_positive_int_accepts_counts() -> None:
    assert [positive_int(text) for text in ("1", "25", "500")] == [1, 25, 500]


@pytest.mark.parametrize("text", ["-0.5", "nan", "soon", ""], ids=["negative", "nan", "word", "empty"])
def test_non_negative_float_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected a number ≥ 0, got"):
        non_negative_float(text)


def test_non_negative_float_accepts_zero_fractions_and_infinity() -> None:
    assert [non_negative_float(t) for t in ("0", "0.2", "300", "inf")] == [0.0, 0.2, 300.0, float("inf")]


def test_user_counts() -> None:
    assert user_counts("10, 100,,500") == [10, 100, 500]
    assert user_counts("7") == [7]
    with pytest.raises(argparse.ArgumentTypeError, match="got '0'"):
        user_counts("10,0")


def test_comma_list_drops_empty_items() -> None:
    assert comma_list("x86-4cpu,,graviton-4cpu,") == ["x86-4cpu", "graviton-4cpu"]


def test_key_value() -> None:
    assert key_value(" steps = 2,4 ") == ("steps", "2,4")
    assert key_value("empty=") == ("empty", "")
    for bad in ("steps", "=2"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected KEY=VALUE"):
            key_value(bad)
