"""``dr-serving bench``: bare model time, served time and loopback overhead, measured in one run here.

For each model (``MODEL_ROOT/<name>``, built with random weights when missing):

- **bare**: batch-1 signature call in this process (``Backend.predict``), p50/p95;
- **served**: the real server (``PredictorProcess`` on 127.0.0.1) answering a 224 px JPEG through the
  raw-bytes V1 route and the V2 binary ``BYTES`` route: client end-to-end p50/p95, the server's prediction
  time (``X-DR-Prediction-Ms``) p50, served/bare ratio, and end-to-end minus server prediction p50. The client
  is the standard library's ``http.client`` on one keep-alive connection, so the overhead measured is the
  server's and the loopback's: httpx adds about 0.8 ms per request of its own on this machine;
- **roofline**: the machine's fp32 matmul peak (TensorFlow, and numpy with ``OPENBLAS_CORETYPE=SkylakeX`` in a
  subprocess: numpy's bundled OpenBLAS runs at half speed on AVX-512 machines without it) and each model's
  achieved share of it (FLOPs per image from ``serving.zoo.architectures``).

Targets (2-core machine): served prediction ≤ 1.5× bare; end-to-end minus server prediction ≤ 3 ms p50.
"""

from __future__ import annotations

import argparse
import functools
import gc
import http.client
import json
import os
import platform
import struct
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["TARGET_OVERHEAD_MS", "TARGET_SERVED_RATIO", "matmul_peak_gflops", "percentile", "register", "run"]

TARGET_SERVED_RATIO = 1.5
TARGET_OVERHEAD_MS = 3.0
_MATMUL_SIZE = 2048


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dr-serving bench``."""
    parser = subparsers.add_parser(
        "bench",
        help="Measure bare vs served prediction time, loopback overhead and the matmul roofline.",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--models", default="mobilenet,vgg19", help="Comma-separated architectures.")
    parser.add_argument("--requests", type=int, default=50, help="Timed calls per measurement.")
    parser.add_argument("--warmup", type=int, default=5, help="Untimed calls before each measurement.")
    parser.add_argument(
        "--model-root", default="models", help="Where MODEL_ROOT/<name> lives (built if missing)."
    )
    parser.add_argument("--out", help="JSON file to write (default: runs/bench-<UTC time>.json).")
    parser.set_defaults(func=run)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation."""
    if not values:
        raise ValueError("Expected at least one value, got none.")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def matmul_peak_gflops(*, size: int = _MATMUL_SIZE, repeats: int = 10) -> dict[str, float]:
    """Best fp32 matmul rate, GFLOP/s: TensorFlow in process, numpy in a subprocess with OpenBLAS tuned."""
    import numpy as np
    import tensorflow as tf

    a = tf.random.uniform((size, size), dtype=tf.float32)
    b = tf.random.uniform((size, size), dtype=tf.float32)
    tf.linalg.matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    rates = {"tensorflow": 2 * size**3 / best / 1e9}
    code = "\n".join(
        [
            "import time, numpy as np",
            f"a = np.random.rand({size}, {size}).astype(np.float32); b = a.copy(); a @ b; best = 1e9",
            f"for _ in range({repeats}):",
            "    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)",
            f"print(2 * {size}**3 / best / 1e9)",
        ]
    )
    env = {**os.environ, "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "SkylakeX")}
    try:
        output = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True
        ).stdout
        rates["numpy"] = float(output.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        pass
    del np
    return rates


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table and write the JSON; exit 0 even when a target is missed."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from serving.cli import CliError

    names = [name.strip() for name in args.models.split(",") if name.strip()]
    if args.requests < 3:
        raise CliError(f"Expected --requests of at least 3, got {args.requests}.", code=2)
    from serving.zoo.architectures import ARCHITECTURES

    unknown = [name for name in names if name not in ARCHITECTURES]
    if unknown:
        raise CliError(f"Expected models among {sorted(ARCHITECTURES)!r}, got {unknown!r}.", code=2)
    print(">> measuring the fp32 matmul peak", flush=True)
    peaks = matmul_peak_gflops()
    peak = max(peaks.values())
    results: dict[str, Any] = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"arch": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "matmul_peak_gflops": {key: round(value, 1) for key, value in peaks.items()},
        "requests": args.requests,
        "targets": {"served_over_bare_max": TARGET_SERVED_RATIO, "overhead_ms_p50_max": TARGET_OVERHEAD_MS},
        "models": {},
    }
    for name in names:
        model_dir = _ensure_model(Path(args.model_root) / name, name)
        results["models"][name] = _bench_model(
            name,
            model_dir,
            requests=args.requests,
            warmup=args.warmup,
            gflops=ARCHITECTURES[name].gflops,
            peak=peak,
        )
    _print_table(results)
    out = Path(args.out) if args.out else Path("runs") / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f">> wrote {out}")
    return 0


def _ensure_model(model_dir: Path, arch: str) -> Path:
    if (model_dir / "saved_model.pb").is_file():
        return model_dir
    from serving.zoo import build_model

    print(f">> building {arch} (random weights) into {model_dir}", flush=True)
    return build_model(arch, model_dir)


def _timed(call: Any, *, requests: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    gc.collect()
    gc.disable()
    try:
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        gc.enable()


def _bench_model(
    name: str, model_dir: Path, *, requests: int, warmup: int, gflops: float, peak: float
) -> dict[str, Any]:
    import numpy as np

    from serving.backends import describe_model, load_backend
    from serving.launcher import PredictorProcess
    from serving.metadata import ModelMetadata
    from serving.zoo.synthetic import encode_image, make_fundus_image

    print(f">> {name}: bare signature call", flush=True)
    declared = ModelMetadata.load(model_dir)
    backend = load_backend(model_dir, declared)
    metadata = describe_model(model_dir, declared, backend)
    height, width = metadata.input_size
    batch = np.random.default_rng(0).uniform(-1, 1, size=(1, height, width, 3)).astype(np.float32)
    bare = _timed(functools.partial(backend.predict, batch), requests=requests, warmup=warmup)
    bare_p50 = percentile(bare, 50)
    result: dict[str, Any] = {
        "model_dir": str(model_dir),
        "gflops_per_image": gflops,
        "bare_ms": {"p50": round(bare_p50, 3), "p95": round(percentile(bare, 95), 3)},
        "bare_share_of_peak": round(gflops / (bare_p50 / 1000) / peak, 4),
        "served": {},
    }
    del backend
    gc.collect()
    gc.freeze()
    jpeg = encode_image(make_fundus_image(2, size=224, seed=0), "JPEG")
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "image_bytes",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": len(jpeg) + 4},
                }
            ]
        }
    ).encode()
    routes = {
        "v1_raw": (f"/v1/models/{name}:predict", jpeg, {"content-type": "image/jpeg"}),
        "v2_binary": (
            f"/v2/models/{name}/infer",
            head + struct.pack("<I", len(jpeg)) + jpeg,
            {"inference-header-content-length": str(len(head)), "content-type": "application/octet-stream"},
        ),
    }
    print(f">> {name}: starting the server", flush=True)
    with PredictorProcess(model_dir, model_name=name) as process:
        client = http.client.HTTPConnection(process.host, process.port, timeout=60)
        for route, (path, body, headers) in routes.items():
            print(f">> {name}: {requests} requests on {route}", flush=True)
            result["served"][route] = _measure_route(
                client,
                path,
                body,
                headers,
                requests=requests,
                warmup=warmup,
                bare_p50=bare_p50,
                gflops=gflops,
                peak=peak,
            )
        client.close()
    gc.unfreeze()
    return result


def _measure_route(
    client: http.client.HTTPConnection,
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    requests: int,
    warmup: int,
    bare_p50: float,
    gflops: float,
    peak: float,
) -> dict[str, Any]:
    end_to_end: list[float] = []
    prediction: list[float] = []
    server: list[float] = []

    def call() -> None:
        started = time.perf_counter()
        client.request("POST", path, body=body, headers=headers)
        response = client.getresponse()
        payload = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"Expected 200 from POST {path}, got {response.status}: {payload[:300]!r}.")
        end_to_end.append(elapsed)
        prediction.append(float(response.getheader("x-dr-prediction-ms", "nan")))
        server.append(float(response.getheader("x-dr-server-ms", "nan")))

    _timed(call, requests=requests, warmup=warmup)
    end_to_end, prediction, server = end_to_end[warmup:], prediction[warmup:], server[warmup:]
    overhead = [total - pred for total, pred in zip(end_to_end, prediction, strict=True)]
    served_p50 = percentile(prediction, 50)
    return {
        "end_to_end_ms": {
            "p50": round(percentile(end_to_end, 50), 3),
            "p95": round(percentile(end_to_end, 95), 3),
        },
        "server_ms_p50": round(percentile(server, 50), 3),
        "prediction_ms": {"p50": round(served_p50, 3), "p95": round(percentile(prediction, 95), 3)},
        "served_over_bare": round(served_p50 / bare_p50, 3),
        "end_to_end_minus_prediction_ms_p50": round(percentile(overhead, 50), 3),
        "served_share_of_peak": round(gflops / (served_p50 / 1000) / peak, 4),
    }


def _print_table(results: dict[str, Any]) -> None:
    peaks = results["matmul_peak_gflops"]
    print()
    print("fp32 matmul peak: " + ", ".join(f"{key} {value:.0f} GFLOP/s" for key, value in peaks.items()))
    header = (
        "model",
        "route",
        "bare p50",
        "bare p95",
        "e2e p50",
        "e2e p95",
        "pred p50",
        "served/bare",
        "e2e-pred p50",
        "% peak",
    )
    rows = [header]
    for name, model in results["models"].items():
        for route, served in model["served"].items():
            rows.append(
                (
                    name,
                    route,
                    f"{model['bare_ms']['p50']:.2f} ms",
                    f"{model['bare_ms']['p95']:.2f} ms",
                    f"{served['end_to_end_ms']['p50']:.2f} ms",
                    f"{served['end_to_end_ms']['p95']:.2f} ms",
                    f"{served['prediction_ms']['p50']:.2f} ms",
                    f"{served['served_over_bare']:.2f}x"
                    + (" ok" if served["served_over_bare"] <= TARGET_SERVED_RATIO else " MISS"),
                    f"{served['end_to_end_minus_prediction_ms_p50']:.2f} ms"
                    + (
                        " ok"
                        if served["end_to_end_minus_prediction_ms_p50"] <= TARGET_OVERHEAD_MS
                        else " MISS"
                    ),
                    f"{100 * model['bare_share_of_peak']:.0f}% / {100 * served['served_share_of_peak']:.0f}%",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print(
        f"targets: served/bare <= {TARGET_SERVED_RATIO}x, e2e-pred p50 <= {TARGET_OVERHEAD_MS} ms; "
        "% peak = bare / served share of the matmul peak"
    )
