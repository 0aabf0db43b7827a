"""``ServeConfig`` (everything ``dr-serving serve`` needs, from flags and the environment) and ``serve``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from serving.backends import PRECISIONS
from serving.cpus import MAX_THREADS
from serving.gradability import DEFAULT_POLICY, policy_from_env
from serving.limits import ENVIRONMENT, Limits, env_number
from serving.metadata import ModelMetadata

__all__ = [
    "REQUEST_LOG_ENV",
    "STARTUP_REPORT_ENV",
    "ConfigError",
    "ServeConfig",
    "serve",
    "write_startup_report",
]

logger = logging.getLogger(__name__)

#: Debug switch: a path where ``serve`` writes its start-up times and loaded modules just before it listens.
STARTUP_REPORT_ENV = "DR_STARTUP_REPORT"
#: CPU threads per backend call (``--threads``); unset or 0 follows the CPU limit.
THREADS_ENV = "DR_THREADS"
#: On or off: the per-request log lines (``--request-log``).
REQUEST_LOG_ENV = "DR_REQUEST_LOG"


class ConfigError(ValueError):
    """A flag or environment variable of ``serve`` is wrong; ``code``: exit code (2 usage, 1 runtime)."""

    def __init__(self, message: str, *, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    """What ``serve`` runs: the model, where to listen, the limits, the drain period and KServe's settings."""

    model_dir: Path
    model_name: str
    limits: Limits
    backend: str = "auto"
    #: ``fp32``, ``int8`` (``model.int8.tflite``) or ``bf16`` (SavedModel, oneDNN bfloat16 math):
    #: ``--precision``, else ``$DR_PRECISION``, else fp32.
    precision: str = "fp32"
    #: Ungradable photos: ``reject`` (422), ``flag`` or ``off``: ``--gradability``, else ``$DR_GRADABILITY``.
    gradability: str = DEFAULT_POLICY
    #: Images per backend call gathered from waiting requests (``--micro-batch``, else ``$DR_MICRO_BATCH``);
    #: 0 or 1: one call per request.
    micro_batch: int = 0
    #: Wait for more after the first image, s (``--micro-batch-wait-ms``, else ``$DR_MICRO_BATCH_WAIT_MS``).
    micro_batch_wait_s: float = 0.0
    #: CPU threads per backend call (``--threads``, else ``$DR_THREADS``); 0: follow the CPU limit
    #: (``serving.cpus.available_cpus``).
    threads: int = 0
    host: str = "0.0.0.0"
    http_port: int = 8080
    #: Port of the Prometheus metrics (``--metrics-port``, else ``$DR_METRICS_PORT``); 0: ``/metrics`` on the
    #: HTTP port instead (local runs). The chart sets one, so a NetworkPolicy can admit only Prometheus to it.
    metrics_port: int = 0
    drain_seconds: float = 0.0
    access_log_format: str | None = None
    event_loop: str = "auto"
    timeout_keep_alive: int = 65
    enable_latency_logging: bool = False
    #: Per-request log lines (``--request-log on|off``, else ``$DR_REQUEST_LOG``, else on): off writes no
    #: access, timing or latency line and drops KServe's timing middleware.
    request_log: bool = True

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ServeConfig:
        """Resolve flags over ``env`` (default ``os.environ``) over defaults; ``ConfigError`` if wrong."""
        env = os.environ if env is None else env
        if getattr(args, "enable_grpc", False):
            raise ConfigError(
                "dr-serving serves HTTP only; drop --enable_grpc (the contract has one port, 8080)."
            )
        if getattr(args, "workers", 1) != 1:
            raise ConfigError(
                f"Expected --workers 1 (one registry per pod, kserve#2979), got {args.workers}."
            )
        try:
            limits = Limits.from_env(env, **{name: getattr(args, name, None) for name in ENVIRONMENT})
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        drain = getattr(args, "drain_seconds", None)
        if drain is None:
            raw = env.get("DR_DRAIN_SECONDS", "0") or "0"
            try:
                drain = float(raw)
            except ValueError:
                raise ConfigError(
                    f"Expected DR_DRAIN_SECONDS to be a number of seconds, got {raw!r}."
                ) from None
        if not drain >= 0:
            raise ConfigError(f"Expected a drain period of 0 s or more, got {drain!r}.")
        metrics_port = _metrics_port(getattr(args, "metrics_port", None), env, http_port=args.http_port)
        model_dir = Path(args.model_dir)
        if not model_dir.is_dir():
            raise ConfigError(
                f"Expected a model directory at {str(model_dir)!r}, but it does not exist.", code=1
            )
        try:
            declared = ModelMetadata.load(model_dir)
        except ValueError as exc:
            raise ConfigError(str(exc), code=1) from exc
        name = args.model_name or (declared.name if declared is not None else model_dir.resolve().name)
        precision = _choice(getattr(args, "precision", None), env, "DR_PRECISION", PRECISIONS, "fp32")
        try:
            gradability = policy_from_env(getattr(args, "gradability", None), env)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        micro_batch = _number(getattr(args, "micro_batch", None), env, "DR_MICRO_BATCH", 0, 256, integer=True)
        wait_ms = _number(getattr(args, "micro_batch_wait_ms", None), env, "DR_MICRO_BATCH_WAIT_MS", 0, 1000)
        threads = _number(getattr(args, "threads", None), env, THREADS_ENV, 0, MAX_THREADS, integer=True)
        request_log = _choice(getattr(args, "request_log", None), env, REQUEST_LOG_ENV, ("on", "off"), "on")
        return cls(
            model_dir=model_dir,
            gradability=gradability,
            micro_batch=int(micro_batch),
            micro_batch_wait_s=wait_ms / 1000,
            threads=int(threads),
            model_name=name,
            limits=limits,
            backend=args.backend,
            precision=precision,
            host=args.host,
            http_port=args.http_port,
            metrics_port=metrics_port,
            drain_seconds=drain,
            access_log_format=getattr(args, "access_log_format", None),
            event_loop=getattr(args, "event_loop", "auto"),
            timeout_keep_alive=getattr(args, "timeout_keep_alive", 65),
            enable_latency_logging=getattr(args, "enable_latency_logging", False) and request_log == "on",
            request_log=request_log == "on",
        )


def _choice(
    flag: str | None, env: Mapping[str, str], variable: str, choices: Sequence[str], default: str
) -> str:
    """A flag over ``$variable`` over ``default``; ``ConfigError`` unless one of ``choices``."""
    value = flag or env.get(variable, "").strip() or default
    if value not in choices:
        raise ConfigError(f"Expected {variable} to be one of {list(choices)!r}, got {value!r}.")
    return value


def _number(
    flag: float | None,
    env: Mapping[str, str],
    variable: str,
    low: float,
    high: float,
    *,
    integer: bool = False,
) -> float:
    """A flag over ``$variable`` over 0, in [low, high]; ``ConfigError`` if not."""
    value = flag
    if value is None:
        try:
            value = env_number(variable, env.get(variable, "").strip() or "0", integer=integer)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if not low <= value <= high:
        raise ConfigError(f"Expected {variable} (or its flag) between {low:g} and {high:g}, got {value!r}.")
    return value


def _metrics_port(flag: int | None, env: Mapping[str, str], *, http_port: int) -> int:
    """``--metrics-port`` over ``$DR_METRICS_PORT`` over 0 (off); ``ConfigError`` for a wrong port."""
    if flag is None:
        raw = env.get("DR_METRICS_PORT", "0").strip() or "0"
        try:
            flag = int(raw)
        except ValueError:
            raise ConfigError(f"Expected DR_METRICS_PORT to be a port number, got {raw!r}.") from None
    if not 0 <= flag <= 65535:
        raise ConfigError(f"Expected a metrics port between 0 (off) and 65535, got {flag}.")
    if flag and flag == http_port:
        raise ConfigError(f"Expected a metrics port other than the HTTP port {http_port}, got {flag}.")
    return flag


def write_startup_report(
    path: Path, *, started: float, imports_done: float, model_loaded: float, imports_cpu: float = 0.0
) -> None:
    """Write the start-up times (Unix seconds), CPU seconds and every module loaded so far, as JSON.

    ``cpu_imports_done`` and ``cpu_model_loaded`` are this process's CPU time (all threads) at those marks:
    what a start needs whatever else the machine runs (``cold-start``).
    """
    import json
    import sys

    payload = {
        "process_start": started,
        "imports_done": imports_done,
        "model_loaded": model_loaded,
        "cpu_imports_done": imports_cpu,
        "cpu_model_loaded": time.process_time(),
        "modules": sorted(sys.modules),
    }
    path.write_text(json.dumps(payload))


def serve(config: ServeConfig) -> None:
    """Load the model and serve it until SIGTERM/SIGINT; ``ModelLoadError`` for a model that does not load."""
    from serving.http.kserve_app import DRModelServer
    from serving.metrics import STARTUP_SECONDS, start_metrics_server
    from serving.predictor import DRModel
    from serving.process import configure_logging, exit_cleanly, process_start_time, tune_gc

    imports_done, imports_cpu = time.time(), time.process_time()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # KServe 0.21's app uses FastAPI's deprecated ORJSONResponse; the notice is not ours to act on.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    started = process_start_time()
    configure_logging()
    model = DRModel(
        config.model_name,
        model_dir=config.model_dir,
        backend=config.backend,
        precision=config.precision,
        limits=config.limits,
        gradability=config.gradability,
        micro_batch=config.micro_batch,
        micro_batch_wait_s=config.micro_batch_wait_s,
        threads=config.threads,
    )
    signal.signal(signal.SIGTERM, exit_cleanly)
    if config.metrics_port:
        start_metrics_server(config.host, config.metrics_port)
    model.load()
    startup = time.time() - started
    assert model.backend is not None
    STARTUP_SECONDS.labels(model=config.model_name, backend=model.backend.name).set(startup)
    logger.info(
        "Model %r ready %.2f s after process start; serving on %s:%d.",
        config.model_name,
        startup,
        config.host,
        config.http_port,
    )
    tune_gc()
    report = os.environ.get(STARTUP_REPORT_ENV)
    if report:
        write_startup_report(
            Path(report),
            started=started,
            imports_done=imports_done,
            model_loaded=time.time(),
            imports_cpu=imports_cpu,
        )
    server = DRModelServer(
        host=config.host,
        limits=config.limits,
        drain_seconds=config.drain_seconds,
        http_port=config.http_port,
        metrics_on_http_port=not config.metrics_port,
        access_log_format=config.access_log_format,
        event_loop=config.event_loop,
        timeout_keep_alive=config.timeout_keep_alive,
        enable_latency_logging=config.enable_latency_logging,
        request_log=config.request_log,
    )
    try:
        server.start([model])
    finally:
        model.stop()
