"""What the codecs share: JSON reading that never fails with a 5xx, type descriptions that never quote."""

from __future__ import annotations

import pytest

from serving.errors import InvalidRequest
from serving.protocol import CODECS, SAGEMAKER, V1, V2
from serving.protocol.common import describe, parse_json


@pytest.mark.parametrize(
    ("body", "reason", "message"),
    [
        (b"[" * 5000 + b"]" * 5000, "too_deep", "nested at most 1000 deep"),
        (b'{"a": ' * 3000 + b"1" + b"}" * 3000, "too_deep", "nested at most 1000 deep"),
        (b"[" + b"9" * 5000 + b"]", "malformed_json", "Exceeds the limit (4300 digits)"),
        (b"\xff\xfe{", "malformed_json", "malformed JSON"),
    ],
    ids=["deep-lists", "deep-objects", "huge-integer", "not-utf8"],
)
def test_hostile_json_is_a_400_never_a_crash(body: bytes, reason: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_json(body)
    assert info.value.reason == reason and message in str(info.value)


def test_nan_and_infinity_literals_are_read() -> None:
    values = parse_json(b"[NaN, Infinity, -Infinity, 1]")
    assert values[3] == 1 and values[0] != values[0] and values[1] == float("inf")


def test_describe_never_quotes_big_values() -> None:
    assert describe(10**5000) == "a very large integer"
    assert describe("x" * 10**6) == "a string of 1000000 characters"
    assert describe({"k" * 100: 1}) == f"an object with keys {['k' * 40]!r}"


def test_every_protocol_has_one_codec() -> None:
    assert CODECS == {"v1": V1, "v2": V2, "sagemaker": SAGEMAKER}
