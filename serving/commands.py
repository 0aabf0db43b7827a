"""``dr-serving serve``: the sub-command's flags (KServe's own parser as a parent) and its entry point."""

from __future__ import annotations

import argparse
from dataclasses import fields

from dr_cli.help import DefaultsHelpFormatter

__all__ = ["register", "run"]

#: Help for each limit flag (the flag is the field name with dashes; the variable is ``limits.ENVIRONMENT``).
_LIMIT_HELP = {
    "max_image_bytes": "Largest encoded image, bytes (also the body limit of raw-image routes)",
    "max_image_pixels": "Most decoded pixels",
    "max_decoded_bytes": "Most bytes one image may decode to (mode and bit depth considered)",
    "max_aspect_ratio": "Largest longer/shorter side ratio",
    "min_image_side": "Smallest image side, px",
    "max_batch": "Most images per request",
    "max_request_bytes": "Cap of the JSON/V2 body limit, bytes",
    "decode_slots": "Images decoded at once",
    "max_inflight": "Prediction requests served at once (503 beyond)",
    "max_header_bytes": "Largest request header block, bytes (431 beyond)",
    "header_timeout_seconds": "Time for the request headers to arrive, s (408 beyond)",
    "body_timeout_seconds": "Time for the request body to arrive, s (408 beyond)",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dr-serving serve`` to the root parser; every KServe flag still works."""
    from kserve import model_server

    from serving.backends import BACKEND_KINDS, PRECISIONS
    from serving.gradability import DEFAULT_POLICY, POLICIES
    from serving.gradability import ENVIRONMENT as GRADABILITY_ENV
    from serving.limits import ENVIRONMENT, Limits

    parser = subparsers.add_parser(
        "serve",
        parents=[model_server.parser],
        help="Serve a DR model with KServe (V1, V2, SageMaker routes) on one HTTP port.",
        description="Serve a DR classifier with the KServe model server; KServe's own flags work too.",
        formatter_class=DefaultsHelpFormatter,
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
        "--precision",
        choices=PRECISIONS,
        default=argparse.SUPPRESS,
        help="fp32 serves model.tflite or the SavedModel; int8 serves model.int8.tflite with LiteRT; bf16 "
        "serves the SavedModel with oneDNN's bfloat16 math mode (default: $DR_PRECISION, else fp32).",
    )
    group.add_argument(
        "--gradability",
        choices=POLICIES,
        default=argparse.SUPPRESS,
        help="Photos that cannot be graded (not a fundus photo, dark, overexposed, blurred, small field): "
        "reject answers 422, flag grades them with gradable=false, off does not look "
        f"(default: ${GRADABILITY_ENV}, else {DEFAULT_POLICY}).",
    )
    group.add_argument(
        "--micro-batch",
        type=int,
        default=argparse.SUPPRESS,
        metavar="IMAGES",
        help="Run up to this many waiting images (several requests') through the backend in one call; "
        "0 or 1: one call per request. Pays for the TensorFlow backends under concurrency, not for LiteRT "
        "(README, Benchmark) (default: $DR_MICRO_BATCH, else 0).",
    )
    group.add_argument(
        "--micro-batch-wait-ms",
        type=float,
        default=argparse.SUPPRESS,
        metavar="MS",
        help="With --micro-batch, wait this long after the first image for others; 0 takes only what is "
        "already waiting, so a lone request is not delayed (default: $DR_MICRO_BATCH_WAIT_MS, else 0).",
    )
    group.add_argument(
        "--threads",
        type=int,
        default=argparse.SUPPRESS,
        metavar="N",
        help="CPU threads per model call; 0 follows the CPU limit (the affinity mask capped by the cgroup "
        "quota, rounded up). One thread can be faster for a small model under a fractional limit "
        "(README, Threads) (default: $DR_THREADS, else 0).",
    )
    group.add_argument(
        "--request-log",
        choices=("on", "off"),
        default=argparse.SUPPRESS,
        help="Log lines per request: on writes uvicorn's access line and KServe's timing and latency lines "
        "(four per request); off writes none and drops KServe's timing middleware, for busy pods whose "
        "requests Knative's queue-proxy or the metrics already count (default: $DR_REQUEST_LOG, else on).",
    )
    group.add_argument(
        "--metrics-port",
        type=int,
        default=argparse.SUPPRESS,
        help="Serve the Prometheus metrics on this port only (the HTTP port then answers 404 on /metrics); "
        "0 serves /metrics on the HTTP port (default: $DR_METRICS_PORT, else 0; the chart sets 9102).",
    )
    group.add_argument(
        "--drain-seconds",
        type=float,
        default=argparse.SUPPRESS,
        help="On SIGTERM, answer 503 on readiness routes but keep serving this long before shutting down "
        "(default: $DR_DRAIN_SECONDS, else 0; the chart sets it for Kubernetes).",
    )
    defaults = Limits()
    for field in fields(Limits):
        variable = ENVIRONMENT[field.name]
        group.add_argument(
            "--" + field.name.replace("_", "-"),
            type=float if field.type == "float" else int,
            default=argparse.SUPPRESS,
            help=f"{_LIMIT_HELP[field.name]} (default: ${variable}, else {getattr(defaults, field.name)}).",
        )
    # Our defaults for KServe's flags: the name comes from the model; one HTTP port, no gRPC.
    parser.set_defaults(func=run, model_name=None, enable_grpc=False, http_port=8080)


def run(args: argparse.Namespace) -> int:
    """Resolve the configuration, load the model, serve until SIGTERM/SIGINT; ``CliError`` on failure."""
    from dr_cli.errors import CliError
    from serving.errors import ModelLoadError
    from serving.metrics import MetricsPortError
    from serving.serve import ConfigError, ServeConfig, serve

    try:
        config = ServeConfig.from_args(args)
    except ConfigError as exc:
        raise CliError(str(exc), code=exc.code) from exc
    try:
        serve(config)
    except (ModelLoadError, MetricsPortError) as exc:
        raise CliError(str(exc)) from exc
    return 0
