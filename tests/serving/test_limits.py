"""Input limits: documented defaults, environment overrides, flags over environment."""

from __future__ import annotations

import pytest

from serving.limits import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MIN_IMAGE_SIDE,
    Limits,
)


def test_defaults() -> None:
    limits = Limits.from_env({})
    assert limits == Limits(
        max_image_bytes=DEFAULT_MAX_IMAGE_BYTES,
        max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS,
        min_image_side=DEFAULT_MIN_IMAGE_SIDE,
        max_batch=DEFAULT_MAX_BATCH,
    )
    assert (DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MIN_IMAGE_SIDE, DEFAULT_MAX_BATCH) == (
        20 * 1024 * 1024,
        40_000_000,
        32,
        32,
    )


def test_environment_overrides_defaults_and_flags_override_environment() -> None:
    env = {"DR_MAX_IMAGE_BYTES": "1000", "DR_MAX_BATCH": "4", "DR_MAX_IMAGE_PIXELS": " "}
    limits = Limits.from_env(env, max_batch=2, min_image_side=None)
    assert limits.max_image_bytes == 1000
    assert limits.max_batch == 2
    assert limits.max_image_pixels == DEFAULT_MAX_IMAGE_PIXELS
    assert limits.min_image_side == DEFAULT_MIN_IMAGE_SIDE


def test_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DR_MIN_IMAGE_SIDE", "64")
    assert Limits.from_env().min_image_side == 64


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DR_MAX_BATCH": "many"}, "Expected DR_MAX_BATCH to be an integer, got 'many'."),
        ({"DR_MAX_BATCH": "0"}, "Expected max_batch to be a positive integer, got 0."),
    ],
    ids=["not-an-integer", "zero"],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        Limits.from_env(env)
    assert str(info.value) == message


def test_unknown_override_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="max_images"):
        Limits.from_env({}, max_images=3)


def test_body_limit_covers_a_full_base64_batch() -> None:
    limits = Limits(max_image_bytes=300, max_batch=2)
    assert limits.max_body_bytes >= 2 * 400
