"""``dr-serving serve``: build the DR model, load it, add our routes, and run KServe's model server.

Our flags are added to KServe's own ``model_server.parser`` (used as a parent), so every KServe flag still
works. On top of KServe's routes we add ``GET /ping`` and ``POST /invocations`` (the SageMaker contract),
``POST /v1/models/{name}/preprocessed`` (the model input as PNG), and our own ``POST /v2/models/{name}/infer``
in front of KServe's, because KServe 0.21 decodes binary ``BYTES`` inputs as UTF-8 text and so cannot take
JPEG bytes through the binary tensor extension. Every error becomes ``{"error": "<one sentence>"}`` with its
status, logged as one line (no traceback, no image bytes), and counted in ``dr_rejected_requests_total``.
One worker process, bound to ``--host`` (default 0.0.0.0 in a pod; the launcher passes 127.0.0.1).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from kserve import ModelServer

from serving.shutdown import DrainingServer, DrainState, ReadinessGate

__all__ = [
    "DRModelServer",
    "RequestGuard",
    "json_response",
    "process_start_time",
    "register",
    "run",
    "tune_gc",
]

logger = logging.getLogger(__name__)

#: Wall-clock time this module was first imported: the fallback for the process start time.
_IMPORTED_AT = time.time()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dr-serving serve`` to the root parser."""
    from kserve import model_server

    from serving.backends import BACKEND_KINDS

    parser = subparsers.add_parser(
        "serve",
        parents=[model_server.parser],
        help="Serve a DR model with KServe (V1, V2, SageMaker routes) on one HTTP port.",
        description="Serve a DR classifier with the KServe model server; KServe's own flags work too.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    group = parser.add_argument_group("dr-serving")
    group.add_argument(
        "--model-dir", required=True, help="Directory holding the SavedModel (and dr_model.json)."
    )
    group.add_argument(
        "--model-name",
        dest="model_name",
        help="Name in the routes (default: the metadata's name, else the directory name).",
    )
    group.add_argument("--http-port", dest="http_port", type=int, help="Alias of --http_port.")
    group.add_argument("--host", default="0.0.0.0", help="Address to bind (use 127.0.0.1 for local runs).")
    group.add_argument("--backend", default="auto", choices=BACKEND_KINDS, help="Inference backend.")
    group.add_argument(
        "--drain-seconds",
        type=float,
        default=argparse.SUPPRESS,
        help="On SIGTERM, answer 503 on readiness routes but keep serving this long before shutting down "
        "(default: $DR_DRAIN_SECONDS, else 0; the chart sets it for Kubernetes).",
    )
    from serving import limits

    for flag, variable, default, meaning in (
        (
            "--max-image-bytes",
            "DR_MAX_IMAGE_BYTES",
            limits.DEFAULT_MAX_IMAGE_BYTES,
            "Largest encoded image, bytes",
        ),
        ("--max-image-pixels", "DR_MAX_IMAGE_PIXELS", limits.DEFAULT_MAX_IMAGE_PIXELS, "Most decoded pixels"),
        ("--min-image-side", "DR_MIN_IMAGE_SIDE", limits.DEFAULT_MIN_IMAGE_SIDE, "Smallest image side, px"),
        ("--max-batch", "DR_MAX_BATCH", limits.DEFAULT_MAX_BATCH, "Most images per request"),
    ):
        group.add_argument(
            flag,
            type=int,
            default=argparse.SUPPRESS,
            help=f"{meaning} (default: ${variable}, else {default}).",
        )
    # Our defaults for KServe's flags: the name comes from the model; one HTTP port, no gRPC.
    parser.set_defaults(func=run, model_name=None, enable_grpc=False, http_port=8080)


def run(args: argparse.Namespace) -> int:
    """Load the model and serve it until SIGTERM/SIGINT; ``CliError`` for a bad model directory or flag."""
    from serving.cli import CliError

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # KServe 0.21's app uses FastAPI's deprecated ORJSONResponse; the notice is not ours to act on.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    started = process_start_time()
    _configure_logging()
    if getattr(args, "enable_grpc", False):
        raise CliError(
            "dr-serving serves HTTP only; drop --enable_grpc (the contract has one port, 8080).", code=2
        )
    if getattr(args, "workers", 1) != 1:
        raise CliError(
            f"Expected --workers 1 (one registry per pod, kserve#2979), got {args.workers}.", code=2
        )

    from serving.errors import ModelLoadError
    from serving.limits import Limits
    from serving.metadata import ModelMetadata
    from serving.metrics import STARTUP_SECONDS
    from serving.predictor import DRModel

    try:
        limits = Limits.from_env(
            max_image_bytes=getattr(args, "max_image_bytes", None),
            max_image_pixels=getattr(args, "max_image_pixels", None),
            min_image_side=getattr(args, "min_image_side", None),
            max_batch=getattr(args, "max_batch", None),
        )
    except ValueError as exc:
        raise CliError(str(exc), code=2) from exc
    model_dir = Path(args.model_dir)
    if not model_dir.is_dir():
        raise CliError(f"Expected a model directory at {str(model_dir)!r}, but it does not exist.")
    try:
        declared = ModelMetadata.load(model_dir)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    name = args.model_name or (declared.name if declared is not None else model_dir.resolve().name)
    model = DRModel(name, model_dir=model_dir, backend=args.backend, limits=limits)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        model.load()
    except ModelLoadError as exc:
        raise CliError(str(exc)) from exc
    startup = time.time() - started
    assert model.backend is not None
    STARTUP_SECONDS.labels(model=name, backend=model.backend.name).set(startup)
    logger.info(
        "Model %r ready %.2f s after process start; serving on %s:%d.",
        name,
        startup,
        args.host,
        args.http_port,
    )
    tune_gc()
    drain = getattr(args, "drain_seconds", None)
    if drain is None:
        raw = os.environ.get("DR_DRAIN_SECONDS", "0")
        try:
            drain = float(raw)
        except ValueError as exc:
            message = f"Expected DR_DRAIN_SECONDS to be a number of seconds, got {raw!r}."
            raise CliError(message, code=2) from exc
    if drain < 0:
        raise CliError(f"Expected a drain period of 0 s or more, got {drain!r}.", code=2)
    server = DRModelServer(
        host=args.host,
        drain_seconds=drain,
        http_port=args.http_port,
        access_log_format=args.access_log_format,
        event_loop=args.event_loop,
        timeout_keep_alive=args.timeout_keep_alive,
        enable_latency_logging=args.enable_latency_logging,
    )
    try:
        server.start([model])
    finally:
        model.stop()
    return 0


def tune_gc() -> None:
    """Move everything loaded so far out of the collector's way and collect rarely (TF makes GC costly)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def process_start_time() -> float:
    """Wall-clock time this process started (Linux ``/proc``, to a tick), else when this module was imported.

    The process's start is read in ticks since boot and compared with ``CLOCK_BOOTTIME`` now; ``/proc/stat``'s
    ``btime`` would only give whole seconds.
    """
    try:
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age
    except (OSError, ValueError, IndexError, AttributeError):
        return _IMPORTED_AT


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _configure_logging() -> None:
    package_logger = logging.getLogger("serving")
    if not package_logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s.%(msecs)03d %(process)d %(name)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"
            )
        )
        package_logger.addHandler(handler)
        package_logger.setLevel(logging.INFO)
        package_logger.propagate = False


class RequestGuard:
    """ASGI middleware: stamps each request's arrival time and refuses bodies over the size limit with 413."""

    def __init__(self, app: Any, *, max_body_bytes: int, model_name: str) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.model_name = model_name

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from serving.predictor import ARRIVAL_HEADER

        arrival = str(time.perf_counter_ns()).encode()
        name = ARRIVAL_HEADER.encode()
        headers = [(key, value) for key, value in scope["headers"] if key != name]
        headers.append((name, arrival))
        length = next((value for key, value in headers if key == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await self._reject(scope, send, int(length))
            return
        await self.app(dict(scope, headers=headers), receive, send)

    async def _reject(self, scope: dict[str, Any], send: Any, length: int) -> None:
        from serving.metrics import REJECTED_REQUESTS

        message = f"Expected a request body of at most {self.max_body_bytes} bytes, got {length} bytes."
        REJECTED_REQUESTS.labels(model=self.model_name, reason="too_many_bytes").inc()
        logger.warning("Rejected %s %s with 413: %s", scope.get("method"), scope.get("path"), message)
        body = orjson.dumps({"error": message})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def json_response(content: Any, *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson (FastAPI deprecates its ORJSONResponse)."""
    return Response(
        orjson.dumps(content), status_code=status_code, headers=headers, media_type="application/json"
    )


def _install_routes(app: Any, model: Any, dataplane: Any) -> None:
    """Add /ping, /invocations, /v1/models/{name}/preprocessed and our V2 infer (before KServe's routes)."""
    from serving import protocol
    from serving.errors import NotReady

    async def ping() -> Response:
        if not model.ready:
            raise NotReady(f"Expected model {model.name!r} to be ready, but it is still loading.")
        return json_response({"status": "up"})

    async def invocations(request: Request) -> Response:
        batch = protocol.parse_raw_image(
            await request.body(), content_type=request.headers.get("content-type"), protocol="sagemaker"
        )
        headers = dict(request.headers)
        response, response_headers = await dataplane.infer(
            model_name=model.name, request=batch, headers=headers
        )
        return json_response(response, headers=response_headers)

    async def preprocessed(model_name: str, request: Request) -> Response:
        await _require_ready(dataplane, model_name)
        body = await request.body()
        png = await model.preprocessed_png(body, content_type=request.headers.get("content-type"))
        return Response(png, media_type="image/png", headers={"X-DR-Model": model.name})

    async def v2_infer(model_name: str, request: Request) -> Response:
        await _require_ready(dataplane, model_name)
        headers = dict(request.headers)
        parsed = protocol.parse_v2_body(await request.body(), headers=headers)
        response, response_headers = await dataplane.infer(
            model_name=model_name, request=parsed, headers=headers
        )
        return json_response(response, headers=response_headers)

    app.add_api_route("/ping", ping, methods=["GET"], response_model=None)
    app.add_api_route("/invocations", invocations, methods=["POST"], response_model=None)
    app.add_api_route(
        "/v1/models/{model_name}/preprocessed", preprocessed, methods=["POST"], response_model=None
    )
    app.add_api_route("/v2/models/{model_name}/infer", v2_infer, methods=["POST"], response_model=None)


async def _require_ready(dataplane: Any, model_name: str) -> None:
    from kserve.errors import ModelNotReady

    if not await dataplane.model_ready(model_name, True):  # raises ModelNotFound for an unknown name
        raise ModelNotReady(model_name)


def _install_error_handlers(app: Any, *, model_name: str) -> None:
    """Answer each expected failure with ``{"error": ...}`` and its status, logged as one line and counted."""
    from fastapi.exceptions import RequestValidationError
    from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady

    from serving.errors import DRServingError
    from serving.metrics import REJECTED_REQUESTS

    def answer(request: Request, status: int, reason: str, message: str) -> Response:
        REJECTED_REQUESTS.labels(model=model_name, reason=reason).inc()
        logger.warning(
            "Rejected %s %s with %d (%s): %s", request.method, request.url.path, status, reason, message
        )
        return json_response({"error": message}, status_code=status)

    async def ours(request: Request, exc: DRServingError) -> Response:
        return answer(request, exc.status, exc.reason, str(exc))

    async def invalid_input(request: Request, exc: InvalidInput) -> Response:
        message = str(exc)
        if message.startswith("Unrecognized request format: "):
            detail = message.removeprefix("Unrecognized request format: ")
            return answer(
                request, 400, "malformed_json", f"Expected a JSON body, got malformed JSON ({detail})."
            )
        return answer(request, 400, "invalid_request", message)

    async def not_found(request: Request, exc: ModelNotFound) -> Response:
        served = model_name
        name = request.path_params.get("model_name", "")
        message = f"Expected a model named {served!r}, got {name[:100]!r}."
        return answer(request, 404, "unknown_model", message)

    async def not_ready(request: Request, exc: ModelNotReady) -> Response:
        return answer(request, 503, "not_ready", str(exc))

    async def validation(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', '')}"
            for error in exc.errors()[:3]
        )
        return answer(request, 400, "invalid_request", f"Expected a valid request, got: {problems}.")

    app.add_exception_handler(DRServingError, ours)
    app.add_exception_handler(InvalidInput, invalid_input)
    app.add_exception_handler(ModelNotFound, not_found)
    app.add_exception_handler(ModelNotReady, not_ready)
    app.add_exception_handler(RequestValidationError, validation)


class DRModelServer(ModelServer):
    """KServe's ``ModelServer`` with our routes, error handlers and bind address; one REST worker, no gRPC.

    ``start`` builds KServe's REST application exactly as KServe does, then adds what KServe has no hook for
    (it binds 0.0.0.0 unconditionally and installs its handlers last, which log full tracebacks for 4xx).
    """

    def __init__(self, *, host: str = "0.0.0.0", drain_seconds: float = 0.0, **kwargs: Any) -> None:
        super().__init__(enable_grpc=False, workers=1, **kwargs)
        self.host = host
        self.drain_seconds = drain_seconds

    def start(self, models: list[Any]) -> None:
        """Register the loaded models; serve HTTP until SIGTERM/SIGINT, letting in-flight requests finish."""
        from kserve import model_server
        from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
        from kserve.protocol.rest.server import RESTServer

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
        rest.config.host = self.host
        app = model_server.app
        _install_routes(app, model, self.dataplane)  # first: ours win over KServe's V2 infer
        rest.create_application()
        _install_error_handlers(app, model_name=model.name)  # last: ours replace KServe's
        app.add_middleware(RequestGuard, max_body_bytes=model.limits.max_body_bytes, model_name=model.name)
        drain = DrainState()
        app.add_middleware(ReadinessGate, state=drain)
        self._rest_server = rest
        DrainingServer(rest.config, state=drain, drain_seconds=self.drain_seconds).run()
