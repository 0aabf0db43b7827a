"""The KServe adapter: what it relies on in the pinned kserve, the routes it leaves, its request logs."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from kserve import model_server
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.rest.server import RESTServer
from kserve.protocol.rest.v1_endpoints import register_v1_endpoints
from kserve.protocol.rest.v2_endpoints import register_v2_endpoints

from serving.http.kserve_app import (
    RELIES_ON,
    SERVED_ROUTES,
    check_kserve,
    drop_request_logging,
    prune_routes,
    served_routes,
)
from serving.http.routes import ROUTES, install_routes
from serving.launcher import PredictorProcess
from serving.zoo.synthetic import encode_image, make_fundus_image

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


def test_without_request_logs_kserves_timing_middleware_and_the_access_logger_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    access = logging.getLogger("uvicorn.access")
    monkeypatch.setattr(access, "handlers", [logging.NullHandler()])
    monkeypatch.setattr(access, "propagate", True)
    rest = RESTServer(FASTAPI_APP_IMPORT_STRING, None, None, 0, grace_period=1, timeout_keep_alive=5)
    app = FastAPI()
    rest._add_middlewares(app)  # what create_application adds to KServe's app
    names = [entry.cls.__name__ for entry in app.user_middleware]
    assert names == list(RELIES_ON["KServe middleware dropped without request logs"])
    assert drop_request_logging(app) == 1
    assert app.user_middleware == []
    assert not access.hasHandlers()  # uvicorn then writes no access line (HttpToolsProtocol.__init__)


@pytest.mark.parametrize(("setting", "lines_per_request"), [("on", 4), ("off", 0)])
def test_request_log_on_writes_four_lines_per_request_and_off_none(
    mobilenet_dir: Path, tmp_path: Path, setting: str, lines_per_request: int
) -> None:
    """Access, two timing lines and KServe's latency line per request; off writes none of them."""
    log = tmp_path / "predictor.log"
    process = PredictorProcess(mobilenet_dir, env={"DR_REQUEST_LOG": setting}, log_path=log)
    jpeg = encode_image(make_fundus_image(1, size=224, seed=3), "JPEG")
    with process, httpx.Client(base_url=process.url, timeout=60.0, trust_env=False) as http:
        before = len(log.read_text().splitlines())
        for _ in range(3):
            answer = http.post(
                "/v1/models/mobilenet:predict", content=jpeg, headers={"content-type": "image/jpeg"}
            )
            assert answer.status_code == 200, answer.text
        http.get("/v2/health/ready")  # written after the answers: their lines are in the log by now
        lines = log.read_text().splitlines()[before:]
    # The access line names mobilenet%3Apredict, the timing lines v1_predict, the latency line predict_ms.
    per_request = [line for line in lines if "predict" in line]
    assert len(per_request) == 3 * lines_per_request, "\n".join(lines)
