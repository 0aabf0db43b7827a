"""Our routes, installed before KServe's so that ours win: each reads the body and hands it, with its codec,
to ``dataplane.infer`` (the model decodes it in ``preprocess``).

- ``GET /ping``: SageMaker health (200 once the model is ready, 503 before).
- ``POST /invocations``: SageMaker, one raw image.
- ``POST /v1/models/{name}:predict``: KServe V1, raw image or ``instances`` JSON.
- ``POST /v1/models/{name}/preprocessed``: the model input for one image, as PNG.
- ``POST /v1/models/{name}:explain``: KServe's explain verb: grades with Grad-CAM heat maps (numbers + PNG).
- ``POST /v2/models/{name}/infer``: V2, JSON or binary. KServe 0.21's own route decodes binary ``BYTES``
  inputs as UTF-8 text and so cannot take JPEG bytes through the binary tensor extension.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from kserve.errors import ModelNotReady

from serving.client import HEADER_MODEL
from serving.errors import NotReady
from serving.http.errors import json_response
from serving.protocol import SAGEMAKER, V1, V2, Codec, Encoded

__all__ = ["ROUTES", "install_routes"]

#: (path, method) of every route this module installs.
ROUTES = (
    ("/ping", "GET"),
    ("/invocations", "POST"),
    ("/v1/models/{model_name}:predict", "POST"),
    ("/v1/models/{model_name}/preprocessed", "POST"),
    ("/v1/models/{model_name}:explain", "POST"),
    ("/v2/models/{model_name}/infer", "POST"),
)


def install_routes(app: Any, model: Any, dataplane: Any) -> None:
    """Add our routes to ``app`` (call before KServe registers its own)."""

    async def infer(model_name: str, codec: Codec, request: Request) -> Response:
        await _require_ready(dataplane, model_name)
        headers = dict(request.headers)
        payload = Encoded(body=await request.body(), codec=codec)
        response, response_headers = await dataplane.infer(
            model_name=model_name, request=payload, headers=headers
        )
        return json_response(response, headers=response_headers)

    async def ping() -> Response:
        if not model.ready:
            raise NotReady(f"Expected model {model.name!r} to be ready, but it is not.")
        return json_response({"status": "up"})

    async def invocations(request: Request) -> Response:
        return await infer(model.name, SAGEMAKER, request)

    async def v1_predict(model_name: str, request: Request) -> Response:
        return await infer(model_name, V1, request)

    async def v2_infer(model_name: str, request: Request) -> Response:
        return await infer(model_name, V2, request)

    async def preprocessed(model_name: str, request: Request) -> Response:
        await _require_ready(dataplane, model_name)
        png = await model.preprocessed_png(await request.body(), headers=dict(request.headers))
        return Response(png, media_type="image/png", headers={HEADER_MODEL: model.name})

    async def explain(model_name: str, request: Request) -> Response:
        await _require_ready(dataplane, model_name)
        answer = await model.explain_images(await request.body(), headers=dict(request.headers))
        return json_response(answer, headers={HEADER_MODEL: model.name})

    handlers = {
        "/ping": ping,
        "/invocations": invocations,
        "/v1/models/{model_name}:predict": v1_predict,
        "/v1/models/{model_name}/preprocessed": preprocessed,
        "/v1/models/{model_name}:explain": explain,
        "/v2/models/{model_name}/infer": v2_infer,
    }
    for path, method in ROUTES:
        app.add_api_route(path, handlers[path], methods=[method], response_model=None)


async def _require_ready(dataplane: Any, model_name: str) -> None:
    if not await dataplane.model_ready(model_name, True):  # raises ModelNotFound for an unknown name
        raise ModelNotReady(model_name)
