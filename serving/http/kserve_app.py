"""``DRModelServer``: KServe's ``ModelServer`` with our routes, guards and error handlers.

The only module touching KServe's private API. What it relies on, for the pinned ``kserve==0.21.0``, is listed
in ``RELIES_ON`` and checked by :func:`check_kserve` at start-up and by a test, so an upgrade that changes any
of it fails loudly instead of silently serving KServe's defaults:

- ``kserve.model_server.app`` (the module-level FastAPI application) and
  ``kserve.protocol.rest.server.RESTServer`` (its constructor arguments, ``.config`` = a ``uvicorn.Config``,
  ``create_application()`` registering KServe's routes, middleware and handlers on that app);
- ``ModelServer._register_and_check_atleast_one_model_is_ready`` and the attributes ``dataplane``,
  ``model_repository_extension``, ``grace_period``, ``access_log_format``, ``event_loop``,
  ``timeout_keep_alive`` (kserve/model_server.py, ``ModelServer.__init__``);
- the route table of ``create_application`` (kserve/protocol/rest/v1_endpoints.py:141-174,
  v2_endpoints.py:225-305), pruned here to ``SERVED_ROUTES``: the model-repository routes
  (``load``/``unload``: one unauthenticated request would unload the model), the ``versions/{v}``
  variants and anything else the product does not serve answer 404 (``:explain`` is ours: Grad-CAM).

KServe binds 0.0.0.0 unconditionally, installs its handlers last (they log full tracebacks for 4xx) and gives
uvicorn no header limits; ``start`` fixes all three. With ``request_log`` off it logs nothing per request: no
uvicorn access line and no ``TimingMiddleware`` (timing-asgi, added by ``RESTServer._add_middlewares``), whose
two ``kserve.trace`` lines per request carry a "time:cpu" that is the whole process's, not the request's.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import uvicorn
from kserve import model_server
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.model_server import ModelServer
from kserve.protocol.rest.server import RESTServer

from serving.http.errors import install_error_handlers
from serving.http.middleware import ReadinessGate, RequestGuard
from serving.http.routes import install_routes
from serving.http.wire import guarded_protocol
from serving.limits import Limits
from serving.shutdown import DrainingServer, DrainState

__all__ = [
    "METRICS_ROUTE",
    "RELIES_ON",
    "SERVED_ROUTES",
    "DRModelServer",
    "check_kserve",
    "drop_request_logging",
    "prune_routes",
    "served_routes",
]

#: Every route the product serves: (path, methods). Everything else KServe registers is removed (404).
SERVED_ROUTES = {
    ("/", frozenset({"GET"})),
    ("/metrics", frozenset({"GET"})),
    ("/openapi.json", frozenset({"GET", "HEAD"})),
    ("/ping", frozenset({"GET"})),
    ("/invocations", frozenset({"POST"})),
    ("/v1/models", frozenset({"GET"})),
    ("/v1/models/{model_name}", frozenset({"GET"})),
    ("/v1/models/{model_name}:predict", frozenset({"POST"})),
    ("/v1/models/{model_name}/preprocessed", frozenset({"POST"})),
    ("/v1/models/{model_name}:explain", frozenset({"POST"})),
    ("/v2", frozenset({"GET"})),
    ("/v2/health/live", frozenset({"GET"})),
    ("/v2/health/ready", frozenset({"GET"})),
    ("/v2/models", frozenset({"GET"})),
    ("/v2/models/{model_name}", frozenset({"GET"})),
    ("/v2/models/{model_name}/ready", frozenset({"GET"})),
    ("/v2/models/{model_name}/infer", frozenset({"POST"})),
}
#: The metrics route, dropped from the HTTP port when the metrics have a port of their own.
METRICS_ROUTE = ("/metrics", frozenset({"GET"}))
#: What this module uses of KServe beyond its public ``Model``: name → what must hold.
RELIES_ON = {
    "RESTServer.__init__ arguments": (
        "app",
        "data_plane",
        "model_repository_extension",
        "http_port",
        "access_log_format",
        "workers",
        "grace_period",
        "event_loop",
        "timeout_keep_alive",
    ),
    "ModelServer attributes": (
        "dataplane",
        "model_repository_extension",
        "grace_period",
        "access_log_format",
        "event_loop",
        "timeout_keep_alive",
        "http_port",
    ),
    "ModelServer methods": ("_register_and_check_atleast_one_model_is_ready",),
    # timing-asgi's, added by RESTServer._add_middlewares (kserve/protocol/rest/server.py:182-187).
    "KServe middleware dropped without request logs": ("TimingMiddleware",),
    "KServe routes pruned": (
        "/v2/repository/models/{model_name}/load",
        "/v2/repository/models/{model_name}/unload",
        "/v2/models/{model_name}/versions/{model_version}",
        "/v2/models/{model_name}/versions/{model_version}/ready",
        "/v2/models/{model_name}/versions/{model_version}/infer",
    ),
}


def check_kserve(server: ModelServer | None = None) -> None:
    """Raise ``RuntimeError`` naming what changed when the installed KServe no longer offers what we use."""
    problems = []
    if FASTAPI_APP_IMPORT_STRING != "kserve.model_server:app" or not hasattr(model_server, "app"):
        problems.append("kserve.model_server.app is no longer the REST application")
    parameters = inspect.signature(RESTServer.__init__).parameters
    problems += [
        f"RESTServer() lost argument {name!r}"
        for name in RELIES_ON["RESTServer.__init__ arguments"]
        if name not in parameters
    ]
    if not callable(getattr(RESTServer, "create_application", None)):
        problems.append("RESTServer.create_application is gone")
    problems += [
        f"ModelServer.{name} is gone"
        for name in RELIES_ON["ModelServer methods"]
        if not hasattr(ModelServer, name)
    ]
    if server is not None:
        problems += [
            f"ModelServer().{name} is gone"
            for name in RELIES_ON["ModelServer attributes"]
            if not hasattr(server, name)
        ]
    if problems:
        raise RuntimeError(
            "Expected the KServe API dr-serving was built on (kserve 0.21.0), got changes: "
            f"{'; '.join(problems)}."
        )


def prune_routes(app: Any, served: set[tuple[str, frozenset[str]]] | None = None) -> list[str]:
    """Keep only ``served`` (default ``SERVED_ROUTES``; of duplicates the first: ours); return the rest.

    FastAPI 0.165 keeps an included router as one entry (``_IncludedRouter``: ``original_router`` plus
    ``include_context.prefix``) instead of copying its routes; both levels are walked, in serving order.
    """
    served = SERVED_ROUTES if served is None else served
    seen: set[tuple[str, frozenset[str]]] = set()
    removed: list[str] = []

    def walk(router: Any, prefix: str) -> None:
        kept = []
        for route in router.routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner, prefix + route.include_context.prefix)
                kept.append(route)
                continue
            path = prefix + getattr(route, "path", "")
            key = (path, frozenset(getattr(route, "methods", None) or ()))
            if key in served and key not in seen:
                kept.append(route)
                seen.add(key)
            else:
                removed.append(path)
        router.routes[:] = kept
        if hasattr(router, "_routes_version"):
            router._routes_version += 1  # FastAPI caches an included router's routes by this version

    walk(app.router, "")
    return removed


def served_routes(app: Any) -> set[tuple[str, frozenset[str]]]:
    """(path, methods) of every route ``app`` serves, included routers walked."""
    found: set[tuple[str, frozenset[str]]] = set()

    def walk(router: Any, prefix: str) -> None:
        for route in router.routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner, prefix + route.include_context.prefix)
            else:
                found.add(
                    (prefix + getattr(route, "path", ""), frozenset(getattr(route, "methods", None) or ()))
                )

    walk(app.router, "")
    return found


class DRModelServer(ModelServer):
    """KServe's ``ModelServer`` with our routes, guards, handlers and bind address; one worker, no gRPC.

    ``metrics_on_http_port`` False (a metrics port of its own is served elsewhere) prunes ``/metrics`` too.
    """

    def __init__(
        self,
        *,
        host: str,
        limits: Limits,
        drain_seconds: float = 0.0,
        metrics_on_http_port: bool = True,
        request_log: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(enable_grpc=False, workers=1, **kwargs)
        self.metrics_on_http_port = metrics_on_http_port
        self.host = host
        self.limits = limits
        self.drain_seconds = drain_seconds
        self.request_log = request_log
        check_kserve(self)

    def start(self, models: list[Any]) -> None:
        """Register the loaded models; serve HTTP until SIGTERM/SIGINT, letting in-flight requests finish."""
        self._register_and_check_atleast_one_model_is_ready(models)
        model = models[0]
        rest = RESTServer(
            FASTAPI_APP_IMPORT_STRING,
            self.dataplane,
            self.model_repository_extension,
            self.http_port,
            access_log_format=self.access_log_format,
            workers=1,
            grace_period=self.grace_period,
            event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
        )
        config: uvicorn.Config = rest.config
        config.host = self.host
        config.http = guarded_protocol(limits=self.limits, model_name=model.name)
        app = model_server.app
        install_routes(app, model, self.dataplane)  # first: ours win over KServe's duplicates
        rest.create_application()
        if not self.request_log:
            drop_request_logging(app)
        prune_routes(app, SERVED_ROUTES if self.metrics_on_http_port else SERVED_ROUTES - {METRICS_ROUTE})
        install_error_handlers(app, model_name=model.name)  # last: ours replace KServe's
        app.add_middleware(RequestGuard, limits=self.limits, model_name=model.name)
        drain = DrainState()
        app.add_middleware(ReadinessGate, state=drain, ready=lambda: bool(model.ready))
        self._rest_server = rest
        DrainingServer(config, state=drain, drain_seconds=self.drain_seconds).run()


def drop_request_logging(app: Any) -> int:
    """Silence uvicorn's access line and remove KServe's timing middleware from ``app``; return how many went.

    uvicorn writes the access line when the ``uvicorn.access`` logger has handlers as a connection opens
    (``HttpToolsProtocol.__init__``), so emptying it is what ``uvicorn.Config(access_log=False)`` does too.
    """
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
    names = RELIES_ON["KServe middleware dropped without request logs"]
    kept = [entry for entry in app.user_middleware if getattr(entry.cls, "__name__", "") not in names]
    dropped = len(app.user_middleware) - len(kept)
    app.user_middleware[:] = kept
    return dropped
