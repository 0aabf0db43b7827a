"""The error tree: each class names its HTTP status and metric reason."""

from __future__ import annotations

import pytest

from serving import errors


@pytest.mark.parametrize(
    ("cls", "status", "reason"),
    [
        (errors.InvalidImage, 400, "invalid_image"),
        (errors.InvalidRequest, 400, "invalid_request"),
        (errors.TooLarge, 413, "too_large"),
        (errors.UnsupportedMediaType, 415, "unsupported_media_type"),
        (errors.UnknownModel, 404, "unknown_model"),
        (errors.NotReady, 503, "not_ready"),
    ],
    ids=[
        "invalid-image",
        "invalid-request",
        "too-large",
        "unsupported-media-type",
        "unknown-model",
        "not-ready",
    ],
)
def test_status_and_default_reason(cls: type[errors.DRServingError], status: int, reason: str) -> None:
    exc = cls("Expected a thing, got another.")
    assert exc.status == status
    assert exc.reason == reason
    assert str(exc) == "Expected a thing, got another."
    assert isinstance(exc, errors.DRServingError)


def test_reason_override_keeps_status() -> None:
    exc = errors.TooLarge("Expected fewer pixels, got more.", reason="too_many_pixels")
    assert (exc.status, exc.reason) == (413, "too_many_pixels")


def test_request_errors_share_a_base_and_load_error_does_not() -> None:
    for cls in (errors.InvalidImage, errors.InvalidRequest, errors.TooLarge, errors.UnsupportedMediaType):
        assert issubclass(cls, errors.RequestError)
    assert not issubclass(errors.ModelLoadError, errors.RequestError)


def test_docstring_draws_every_class() -> None:
    tree = errors.__doc__ or ""
    for name in errors.__all__:
        assert name in tree, name
