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


def test_body_limit_covers_a_full_base64_batch_up_to_a_small_cap() -> None:
    limits = Limits(max_image_bytes=300, max_batch=2)
    assert limits.max_body_bytes >= 2 * 400
    # The defaults (32 images of 20 MiB) would allow 853 MiB; the cap keeps a JSON body at 32 MiB.
    assert Limits().max_body_bytes == Limits().max_request_bytes == 32 * 1024 * 1024


def test_wire_limits_read_numbers_and_refuse_nonsense() -> None:
    limits = Limits.from_env(
        {"DR_BODY_TIMEOUT_SECONDS": "2.5", "DR_MAX_INFLIGHT": "3"}, header_timeout_seconds=1
    )
    assert (limits.body_timeout_seconds, limits.max_inflight, limits.header_timeout_seconds) == (2.5, 3, 1)
    with pytest.raises(ValueError, match="Expected DR_BODY_TIMEOUT_SECONDS to be a number, got 'soon'"):
        Limits.from_env({"DR_BODY_TIMEOUT_SECONDS": "soon"})
    with pytest.raises(ValueError, match="max_aspect_ratio to be 1 or more"):
        Limits(max_aspect_ratio=0.5)
    with pytest.raises(ValueError, match="header_timeout_seconds to be a positive number"):
        Limits(header_timeout_seconds=0)
