"""The lab's adapter over ``serving.client`` (the wire contract): requests from ``Image``s, answers from
response objects (``requests``/Locust responses with ``status_code``, ``headers`` and ``content``)."""

from __future__ import annotations

from typing import Any

from loadtest.images import Image
from serving.client import PreparedRequest, ServerAnswer
from serving.client import build_request as _build
from serving.client import read_answer as _read

__all__ = ["PROTOCOLS", "PreparedRequest", "ServerAnswer", "build_request", "read_answer"]

#: The protocols ``dr-serving lab run --protocol`` offers (every one ``serving.client`` builds).
PROTOCOLS = ("v1", "v2", "v2-binary", "sagemaker")


def build_request(protocol: str, model: str, image: Image, *, host: str | None = None) -> PreparedRequest:
    """Build the request that sends ``image`` to ``model`` over ``protocol`` (one of ``PROTOCOLS``)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"Protocol must be one of {PROTOCOLS!r}, got {protocol!r}.")
    return _build(protocol, model, image.data, content_type=image.content_type, host=host)


def read_answer(response: Any) -> ServerAnswer:
    """Read timings and labels from a response object with ``status_code``, ``headers`` and ``content``."""
    if response is None:
        return ServerAnswer(problem="no response")
    status = int(getattr(response, "status_code", 0) or 0)
    return _read(status, getattr(response, "headers", None), getattr(response, "content", None))
