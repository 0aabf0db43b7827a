"""Errors the predictor raises, each naming the HTTP status it becomes.

Exception tree::

    DRServingError                  base class; ``status`` is the HTTP status, ``reason`` the metric label
    ├── RequestError                400 — the client sent something we cannot use
    │   ├── InvalidImage            400 — bytes that are not a decodable JPEG/PNG, or an image too small
    │   ├── InvalidRequest          400 — malformed JSON/base64, wrong tensor shape/dtype, NaN/Inf
    │   ├── TooLarge                413 — more bytes, pixels or images than the limits allow
    │   ├── Ungradable              422 — a photo the gradability gate refuses (``DR_GRADABILITY=reject``)
    │   └── UnsupportedMediaType    415 — a content type we do not read
    ├── UnknownModel                404 — no model by that name on this server
    ├── NotReady                    503 — the model has not finished loading
    ├── ExplanationUnavailable      501 — the model cannot explain (no ``explain`` signature, or LiteRT)
    └── ModelLoadError              —   start-up failure (missing, corrupt or incompatible model directory);
                                        ``dr-serving serve`` prints ``Error: ...`` and exits 1

Messages are one sentence that says what was expected and what arrived; they never contain image bytes.
"""

from __future__ import annotations

__all__ = [
    "DRServingError",
    "ExplanationUnavailable",
    "InvalidImage",
    "InvalidRequest",
    "ModelLoadError",
    "NotReady",
    "RequestError",
    "TooLarge",
    "Ungradable",
    "UnknownModel",
    "UnsupportedMediaType",
]


class DRServingError(Exception):
    """Base class of every dr-serving error; ``status`` is the HTTP status it becomes (500 by default)."""

    status: int = 500
    #: Label value for ``dr_rejected_requests_total{reason=...}``.
    default_reason: str = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or self.default_reason


class RequestError(DRServingError):
    """The request cannot be served as sent (HTTP 400)."""

    status = 400
    default_reason = "invalid_request"


class InvalidImage(RequestError):
    """The bytes are not a decodable JPEG/PNG image, or the image is too small (HTTP 400)."""

    default_reason = "invalid_image"


class InvalidRequest(RequestError):
    """The request body is malformed: JSON, base64, tensor shape, dtype, values or batch size (HTTP 400)."""

    default_reason = "invalid_request"


class TooLarge(RequestError):
    """The body or the image exceeds a configured limit in bytes or pixels (HTTP 413)."""

    status = 413
    default_reason = "too_large"


class Ungradable(RequestError):
    """A photo the gradability gate refuses: not a fundus photo, too dark, overexposed, blurred (HTTP 422)."""

    status = 422
    default_reason = "ungradable"


class UnsupportedMediaType(RequestError):
    """The content type is not one the predictor reads (HTTP 415)."""

    status = 415
    default_reason = "unsupported_media_type"


class UnknownModel(DRServingError):
    """No model by that name is served here (HTTP 404)."""

    status = 404
    default_reason = "unknown_model"


class NotReady(DRServingError):
    """The model is still loading (HTTP 503)."""

    status = 503
    default_reason = "not_ready"


class ExplanationUnavailable(DRServingError):
    """The served model has no Grad-CAM signature, or runs on LiteRT (HTTP 501)."""

    status = 501
    default_reason = "explanation_unavailable"


class ModelLoadError(DRServingError):
    """The model directory is missing, corrupt or incompatible; raised at start-up, never per request."""

    status = 500
    default_reason = "model_load"
