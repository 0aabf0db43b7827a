"""The KServe adapter: what it relies on in the pinned kserve, and the routes it leaves (only ours)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI
from kserve import model_server
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.rest.server import RESTServer
from kserve.protocol.rest.v1_endpoints import register_v1_endpoints
from kserve.protocol.rest.v2_endpoints import register_v2_endpoints

from serving.http.kserve_app import RELIES_ON, SERVED_ROUTES, check_kserve, prune_routes, served_routes
from serving.http.routes import ROUTES, install_routes

#: Every route KServe 0.21's V1 and V2 endpoint registration adds. A kserve upgrade that adds, removes or
#: renames one fails here: decide then whether the product serves it (SERVED_ROUTES) or prunes it.
KSERVE_ROUTES = {
    "/v1/models",
    "/v1/models/{model_name}",
    "/v1/models/{model_name}:predict",
    "/v1/models/{model_name}:explain",
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models",
    "/v2/models/{model_name}",
    "/v2/models/{model_name}/ready",
    "/v2/models/{model_name}/infer",
    "/v2/models/{model_name}/versions/{model_version}",
    "/v2/models/{model_name}/versions/{model_version}/ready",
    "/v2/models/{model_name}/versions/{model_version}/infer",
    "/v2/repository/models/{model_name}/load",
    "/v2/repository/models/{model_name}/unload",
}


def _kserve_app() -> FastAPI:
    app = FastAPI()
    register_v1_endpoints(app, None, None)
    register_v2_endpoints(app, None, None)
    return app


def test_the_pinned_kserve_offers_what_the_adapter_uses() -> None:
    check_kserve()
    rest = RESTServer(FASTAPI_APP_IMPORT_STRING, None, None, 0, grace_period=1, timeout_keep_alive=5)
    assert isinstance(rest.config, uvicorn.Config) and callable(rest.create_application)
    assert isinstance(model_server.app, FastAPI)


def test_kserve_registers_exactly_the_routes_we_decided_about() -> None:
    paths = {path for path, _ in served_routes(_kserve_app())}
    assert paths - {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"} == KSERVE_ROUTES


def test_pruning_leaves_only_the_served_routes_and_ours_first() -> None:
    class Model:
        name, ready = "m", True

    app = FastAPI(docs_url=None, redoc_url=None)
    install_routes(app, Model(), None)
    register_v1_endpoints(app, None, None)
    register_v2_endpoints(app, None, None)
    removed = prune_routes(app)
    kept = served_routes(app)
    assert kept <= SERVED_ROUTES
    assert set(RELIES_ON["KServe routes pruned"]) <= set(removed)
    ours = {(path, frozenset({method})) for path, method in ROUTES}
    assert ours <= kept
    # Our V1 predict and V2 infer come first, so KServe's same-path routes were the ones removed.
    first = next(
        route for route in app.router.routes if getattr(route, "path", "") == "/v2/models/{model_name}/infer"
    )
    assert first.endpoint.__module__ == "serving.http.routes"
