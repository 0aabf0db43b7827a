"""Exception handlers: each expected failure becomes ``{"error": ...}``, its status, one log line, a count.

``reject`` is the one place a refusal is logged and counted (``dr_rejected_requests_total{reason}``); the
middleware uses it too. Messages never quote image bytes; tracebacks are never logged for a refusal.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
from starlette.exceptions import HTTPException

from serving.errors import DRServingError
from serving.metrics import REJECTED_REQUESTS

__all__ = ["install_error_handlers", "json_response", "reject"]

logger = logging.getLogger("serving.http")


def json_response(content: Any, *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson (FastAPI deprecates its ORJSONResponse)."""
    return Response(
        orjson.dumps(content), status_code=status_code, headers=headers, media_type="application/json"
    )


def reject(*, model: str, method: str, path: str, status: int, reason: str, message: str) -> None:
    """Count a refusal under ``reason`` and log it as one line (a client that left is logged at INFO)."""
    REJECTED_REQUESTS.labels(model=model, reason=reason).inc()
    level = logging.INFO if status == 499 else logging.WARNING
    logger.log(level, "Rejected %s %s with %d (%s): %s", method, path[:200], status, reason, message)


def install_error_handlers(app: Any, *, model_name: str) -> None:
    """Answer each expected failure with ``{"error": ...}`` and its status, logged as one line and counted."""

    def answer(request: Request, status: int, reason: str, message: str) -> Response:
        reject(
            model=model_name,
            method=request.method,
            path=request.url.path,
            status=status,
            reason=reason,
            message=message,
        )
        return json_response({"error": message}, status_code=status)

    async def ours(request: Request, exc: DRServingError) -> Response:
        return answer(request, exc.status, exc.reason, str(exc))

    async def invalid_input(request: Request, exc: InvalidInput) -> Response:
        return answer(request, 400, "invalid_request", str(exc)[:300])

    async def not_found(request: Request, exc: ModelNotFound) -> Response:
        name = request.path_params.get("model_name", "")
        return answer(
            request, 404, "unknown_model", f"Expected a model named {model_name!r}, got {name[:100]!r}."
        )

    async def not_ready(request: Request, exc: ModelNotReady) -> Response:
        return answer(request, 503, "not_ready", str(exc)[:300])

    async def versioned(request: Request, exc: NotImplementedError) -> Response:
        message = f"Expected no model version (this server serves one unversioned model {model_name!r})."
        return answer(request, 404, "unknown_version", message)

    async def validation(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', '')}"
            for error in exc.errors()[:3]
        )
        return answer(request, 400, "invalid_request", f"Expected a valid request, got: {problems[:300]}.")

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            message = f"Expected a route this server serves, got {request.url.path[:100]!r}."
            return answer(request, 404, "unknown_route", message)
        if exc.status_code == 405:
            message = f"Expected another method on {request.url.path[:100]!r}, got {request.method[:20]}."
            return answer(request, 405, "method_not_allowed", message)
        return answer(request, exc.status_code, "http_error", str(exc.detail)[:300])

    app.add_exception_handler(DRServingError, ours)
    app.add_exception_handler(InvalidInput, invalid_input)
    app.add_exception_handler(ModelNotFound, not_found)
    app.add_exception_handler(ModelNotReady, not_ready)
    app.add_exception_handler(NotImplementedError, versioned)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(HTTPException, http_error)
