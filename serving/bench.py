"""``dr-serving bench``: every way to run both models, bare, served and under load, measured in one run here.

For each model (``MODEL_ROOT/<name>``; built when missing, its ``model.tflite`` and guarded
``model.int8.tflite`` converted when missing):

- **bare**, batch 1, the variants called in turn round after round in this process so that all of them see
  the same machine (it is shared: only ratios mean something): ``naive`` — the published server's way, a
  Keras model from ``keras.models.load_model`` called with ``model.predict`` per request (same architecture;
  its weights do not change the time); ``tf-fp32`` — the SavedModel signature; ``tf-bf16`` — the same with
  oneDNN's bfloat16 math mode, in a child process (a process-wide setting); ``litert-fp32`` and
  ``litert-int8`` — the LiteRT files with XNNPACK; each as p50, ratio to ``naive`` and share of the machine's
  measured peak (fp32 variants against the fp32 peak, int8 against the int8 peak), and the process's CPU
  time per call (all threads: how many cores a call keeps busy). Batch 8 is timed too:
  its per-image gain over batch 1 bounds what micro-batching could win under load;
- **served**: the real server (``PredictorProcess`` on 127.0.0.1) for ``tf-fp32``, ``tf-bf16``,
  ``litert-fp32`` and ``litert-int8``: sequential client end-to-end p50 over the V1 raw-bytes route on one
  keep-alive connection, the server's prediction time (``X-DR-Prediction-Ms``), and the speed-up over
  ``naive``, called in this process in blocks in turn with the requests' (as the bare variants are: the
  machine's load moves between the bare measurement and the server's);
- **load**: closed-loop throughput at 1, 4, 16, 64 connections (req/s, p50, p99, errors) against the offline
  batch-1 throughput of the same backend (1000 / its bare mean ms), with the server's CPU per answer, the
  model call's share of it (bare CPU per call ÷ server CPU per answer), the load generator's CPU per answer
  (this process, on the same CPUs) and the CPU ceiling of the served ÷ offline ratio those costs allow
  (``serving.bench_targets.cpu_ceiling``);
- **micro-batching**: in-process callers at 1, 16, 64 at once, served by one inference thread (as the server
  does) or by ``serving.micro_batch.MicroBatcher`` (batches of up to 8, no added wait), the two in turn over
  three rounds, and whether it meets the issue's rule for wiring it (``micro_batching_pays``);
- **peaks**: bf16 — TensorFlow bfloat16 matmul; fp32 — TensorFlow matmul, numpy with
  ``OPENBLAS_CORETYPE=SkylakeX`` (numpy's bundled OpenBLAS runs at half speed on AVX-512 machines without it)
  and a LiteRT fully connected layer; int8 — the same LiteRT layer quantized to int8 (XNNPACK's int8 GEMM).

- **targets**: the speed issue's targets, one row per model and variant, with this run's verdict
  (``serving.bench_targets``: a 16-connection ratio whose CPU ceiling is below 1 is judged against it).

Tables are printed and written as JSON (``--out``, the verdicts under ``verdicts``) with one CSV per table
beside it.
"""

from __future__ import annotations

import argparse
import csv
import gc
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dr_cli.help import DefaultsHelpFormatter
from serving.bench_targets import CEILING_MIN, TARGETS, cpu_ceiling, verdicts
from serving.bench_variants import BARE_VARIANTS, SERVED_VARIANTS, served_base
from serving.client import HEADER_PREDICTION_MS
from serving.closed_loop import closed_loop
from serving.cpu_features import this_cpu
from serving.cpus import schedulable_cpus
from serving.peaks import litert_peak_gops, matmul_peak_gflops
from serving.timing import percentile

__all__ = [
    "BARE_VARIANTS",
    "INT8_REFUSAL_FILENAME",
    "SERVED_VARIANTS",
    "TARGETS",
    "litert_peak_gops",
    "matmul_peak_gflops",
    "micro_batching_pays",
    "percentile",
    "register",
    "run",
]

_MICRO_BATCH = 8
#: Written beside the model when the guarded int8 conversion was refused: later runs do not search again.
INT8_REFUSAL_FILENAME = "model.int8.refused.json"
#: Concurrent callers of the micro-batching measurement, and the issue's rule for wiring it into the server.
MICRO_BATCH_CALLERS = (1, 16, 64)
MICRO_BATCH_MIN_GAIN = 1.2
MICRO_BATCH_MAX_P50_MS = 1.0
#: Blocks the served requests are timed in, each followed by as many naive calls.
_SERVED_BLOCKS = 5
#: Printed columns that hold words, not figures.
_LEFT_COLUMNS = frozenset({"model", "variant", "peak", "target", "measured", "required", "verdict"})


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dr-serving bench``."""
    parser = subparsers.add_parser(
        "bench",
        help="Measure naive/TF/LiteRT fp32/int8 bare, served and under load, against the machine's peak, "
        "and give the speed targets' verdicts.",
        description=__doc__.splitlines()[0],
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--models", default="mobilenet,vgg19", help="Comma-separated architectures.")
    parser.add_argument("--requests", type=int, default=50, help="Timed calls per measurement.")
    parser.add_argument("--warmup", type=int, default=5, help="Untimed calls before each measurement.")
    parser.add_argument(
        "--model-root", default="models", help="Where MODEL_ROOT/<name> lives (built if missing)."
    )
    parser.add_argument(
        "--connections",
        default="1,4,16,64",
        help="Closed-loop connection counts ('' skips the load table).",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="Length of each closed-loop run, s.")
    parser.add_argument(
        "--variants",
        default=",".join(BARE_VARIANTS),
        help=f"Variants to measure, among {','.join(BARE_VARIANTS)}.",
    )
    parser.add_argument(
        "--micro-batch-rounds",
        type=int,
        default=3,
        help="Rounds of the in-process micro-batching measurement (0 skips it; VGG19 takes minutes a round).",
    )
    parser.add_argument(
        "--gradability",
        choices=("reject", "flag", "off"),
        help="Ungradable-photo gate of the served variants (default: the server's, reject); 'off' shows what "
        "the gate costs under load.",
    )
    parser.add_argument(
        "--out",
        help="JSON file to write, with one CSV per table and the plots beside it "
        "(default: runs/bench-<UTC time>.json).",
    )
    parser.set_defaults(func=run)
    # `dr-serving bench cold-start`: the start-up measurement next to the throughput one (serving.coldstart;
    # `dr-serving cold-start` stays its alias). Without a measurement name, bench runs as before.
    from serving import coldstart

    coldstart.register(parser.add_subparsers(dest="measurement", metavar="MEASUREMENT"))


# ------------------------------------------------------------------------------------------------ bare


@dataclass(frozen=True, kw_only=True)
class _Variant:
    """One way to run a model: a batch-1 call, a batch-N call, and the precision of its arithmetic."""

    name: str
    precision: str
    one: Callable[[], Any]
    many: Callable[[], Any]
    #: The backend (``predict(batch)``), for the micro-batching measurement; ``None`` for ``naive``.
    backend: Any = None
    #: One preprocessed image, ``[1, H, W, 3]``.
    image: Any = None
    #: Whether the calls run in this process, so that its CPU time is theirs (``tf-bf16`` runs in a child).
    in_process: bool = True


def _naive(arch: str, input_size: int, workdir: Path) -> Any:
    """The published server's model: a Keras model saved as ``.keras`` and loaded with ``load_model``."""
    import keras

    from serving.zoo.architectures import build_keras_model

    path = workdir / f"{arch}.keras"
    build_keras_model(arch, input_size=input_size, seed=0).save(path)
    return keras.models.load_model(path)


#: A child process holding one SavedModel in bfloat16 (a process-wide TensorFlow setting): it says "ready" and
#: the precision it really runs in, then "one" or "many" on stdin → one call → "done" on stdout. The parent
#: times the round trip (the pipe adds ~0.1 ms).
_BF16_CHILD = """
import sys
import numpy as np
from serving.backends.savedmodel import SavedModelBackend
from serving.metadata import ModelMetadata
directory, size = sys.argv[1], int(sys.argv[2])
metadata = ModelMetadata.load(directory) or ModelMetadata()
backend = SavedModelBackend(directory, metadata=metadata, precision="bf16")
height, width = metadata.input_size
rng = np.random.default_rng(0)
one = rng.uniform(-1, 1, (1, height, width, 3)).astype(np.float32)
many = rng.uniform(-1, 1, (size, height, width, 3)).astype(np.float32)
backend.predict(one)
print("ready", backend.precision, flush=True)
for line in sys.stdin:
    backend.predict(one if line.strip() == "one" else many)
    print("done", flush=True)
"""


def _bf16_child(model_dir: Path) -> tuple[subprocess.Popen[str], Callable[[str], None], str]:
    """Start the bf16 child; returns it, a call that runs "one" or "many" in it, and the precision it runs."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    child = subprocess.Popen(
        [sys.executable, "-c", _BF16_CHILD, str(model_dir), str(_MICRO_BATCH)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert child.stdin is not None and child.stdout is not None
    said = child.stdout.readline().split()
    if not said or said[0] != "ready":
        raise RuntimeError(f"Expected the bf16 child for {str(model_dir)!r} to load, but it exited.")

    def call(what: str) -> None:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(what + "\n")
        child.stdin.flush()
        child.stdout.readline()

    return child, call, said[-1]


def _variants(
    model_dir: Path, names: list[str], arch: str, workdir: Path
) -> tuple[list[_Variant], dict[str, str], list[subprocess.Popen[str]]]:
    """The variants to time, the ones skipped (and why), and the child processes to stop afterwards."""
    import numpy as np

    from serving.backends.litert import INT8_TFLITE_FILENAME, TFLITE_FILENAME, LiteRTBackend
    from serving.backends.savedmodel import SavedModelBackend
    from serving.metadata import ModelMetadata

    metadata = ModelMetadata.load(model_dir) or ModelMetadata()
    height, width = metadata.input_size
    rng = np.random.default_rng(0)
    one = rng.uniform(-1, 1, (1, height, width, 3)).astype(np.float32)
    many = rng.uniform(-1, 1, (_MICRO_BATCH, height, width, 3)).astype(np.float32)
    made: list[_Variant] = []
    skipped: dict[str, str] = {}
    children: list[subprocess.Popen[str]] = []
    for name in names:
        if name == "naive":
            keras_model = _naive(arch, height, workdir)
            made.append(
                _Variant(
                    name=name,
                    precision="fp32",
                    one=lambda m=keras_model: m.predict(one, verbose=0),
                    many=lambda m=keras_model: m.predict(many, verbose=0),
                )
            )
            continue
        if name == "tf-bf16":
            child, call, precision = _bf16_child(model_dir)
            children.append(child)
            if precision != "bf16":
                # Timing it would time tf-fp32 twice (see savedmodel.bf16_math_in_effect).
                skipped[name] = "this CPU keeps fp32 math in oneDNN's bf16 mode (bfloat16 needs AMX on x86)"
                continue
            made.append(
                _Variant(
                    name=name,
                    precision="bf16",
                    one=lambda c=call: c("one"),
                    many=lambda c=call: c("many"),
                    in_process=False,
                )
            )
            continue
        if name == "tf-fp32":
            backend: Any = SavedModelBackend(model_dir, metadata=metadata)
        else:
            filename = INT8_TFLITE_FILENAME if name == "litert-int8" else TFLITE_FILENAME
            if not (model_dir / filename).is_file():
                skipped[name] = f"no {filename}"
                continue
            backend = LiteRTBackend(model_dir / filename, metadata=metadata)
        made.append(
            _Variant(
                name=name,
                precision="int8" if name.endswith("int8") else "fp32",
                one=lambda b=backend: b.predict(one),
                many=lambda b=backend: b.predict(many),
                backend=backend,
                image=one,
            )
        )
    return made, skipped, children


def _interleaved(
    variants: list[_Variant], *, requests: int, warmup: int
) -> dict[str, dict[str, list[float]]]:
    """Batch-1 and batch-N times (ms) of every variant, called in turn, round after round, and the process's
    CPU time (ms, all threads) of each batch-1 call of the variants that run in this process."""
    for variant in variants:
        for _ in range(warmup):
            variant.one()
        variant.many()
    times: dict[str, dict[str, list[float]]] = {v.name: {"one": [], "many": [], "cpu": []} for v in variants}
    rounds = max(3, requests // 5)
    per_round = max(1, requests // rounds)
    gc.collect()
    gc.disable()
    try:
        for round_index in range(rounds):
            for variant in variants:
                for _ in range(per_round):
                    cpu_started, started = time.process_time(), time.perf_counter()
                    variant.one()
                    times[variant.name]["one"].append((time.perf_counter() - started) * 1000)
                    if variant.in_process:
                        times[variant.name]["cpu"].append((time.process_time() - cpu_started) * 1000)
                if round_index % 2 == 0:
                    started = time.perf_counter()
                    variant.many()
                    times[variant.name]["many"].append((time.perf_counter() - started) * 1000)
    finally:
        gc.enable()
    return times


# ------------------------------------------------------------------------------------- micro-batching


def _callers(predict: Callable[[Any], Any], image: Any, *, callers: int, calls: int) -> tuple[float, float]:
    """``callers`` threads each calling ``predict(image)`` ``calls`` times: (calls per second, p50 ms)."""
    latencies: list[float] = []
    lock = threading.Lock()

    def caller() -> None:
        mine = []
        for _ in range(calls):
            started = time.perf_counter()
            predict(image)
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies) / (time.perf_counter() - started), percentile(latencies, 50)


def _micro_batching(variant: _Variant, *, images: int, rounds: int = 3) -> list[dict[str, Any]]:
    """Calls/s and p50 at 1, 16 and 64 callers, one inference thread (as served) and micro-batched, in turn.

    The batcher never waits (``max_wait_s=0``: a batch is what queued during the previous call), so a lone
    caller pays only the hand-over. Each figure is the median over ``rounds`` rounds; within a round the two
    ways alternate which goes first.
    """
    from serving.micro_batch import MicroBatcher

    lock = threading.Lock()

    def serialized(image: Any) -> Any:  # the server's single inference thread
        with lock:
            return variant.backend.predict(image)

    batcher = MicroBatcher(variant.backend, max_batch=_MICRO_BATCH, max_wait_s=0)
    ways: dict[str, Callable[[Any], Any]] = {"direct": serialized, "batched": batcher.predict}
    measured: dict[tuple[int, str], list[tuple[float, float]]] = {}
    try:
        for round_index in range(rounds):
            for callers in MICRO_BATCH_CALLERS:
                calls = max(2, images // callers)
                order = list(ways) if round_index % 2 == 0 else list(reversed(ways))
                for way in order:
                    figures = _callers(ways[way], variant.image, callers=callers, calls=calls)
                    measured.setdefault((callers, way), []).append(figures)
    finally:
        batcher.close()
    rows = []
    for callers in MICRO_BATCH_CALLERS:
        direct, batched = measured[(callers, "direct")], measured[(callers, "batched")]
        direct_rate = statistics.median(rate for rate, _ in direct)
        batched_rate = statistics.median(rate for rate, _ in batched)
        direct_p50 = statistics.median(p50 for _, p50 in direct)
        batched_p50 = statistics.median(p50 for _, p50 in batched)
        rows.append(
            {
                "callers": callers,
                "direct_per_s": round(direct_rate, 2),
                "batched_per_s": round(batched_rate, 2),
                "gain": round(batched_rate / direct_rate, 3),
                "direct_p50_ms": round(direct_p50, 3),
                "batched_p50_ms": round(batched_p50, 3),
            }
        )
    return rows


def micro_batching_pays(rows: list[dict[str, Any]]) -> bool:
    """The issue's rule: ≥ 20 % more calls/s at 16 and at 64 callers, p50 at 1 caller ≤ 1 ms worse."""
    by_callers = {row["callers"]: row for row in rows}
    one = by_callers[1]
    return (
        all(by_callers[callers]["gain"] >= MICRO_BATCH_MIN_GAIN for callers in (16, 64))
        and one["batched_p50_ms"] - one["direct_p50_ms"] <= MICRO_BATCH_MAX_P50_MS
    )


# ---------------------------------------------------------------------------------------------- served


def _jpeg() -> bytes:
    from serving.zoo.synthetic import encode_image, make_fundus_image

    return encode_image(make_fundus_image(2, size=224, seed=0), "JPEG")


def _served(
    name: str,
    model_dir: Path,
    flags: tuple[str, ...],
    *,
    requests: int,
    warmup: int,
    connections: list[int],
    seconds: float,
    naive: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Serve ``model_dir`` with ``flags``: sequential requests (in blocks, in turn with ``naive`` calls when
    given), then the closed loop at each connection count."""
    import psutil

    from serving.client import HEADER_DECODE_MS, HEADER_QUEUE_MS
    from serving.launcher import PredictorProcess

    phases = {"decode": HEADER_DECODE_MS, "queue": HEADER_QUEUE_MS, "prediction": HEADER_PREDICTION_MS}
    jpeg = _jpeg()
    path, headers = f"/v1/models/{name}:predict", {"content-type": "image/jpeg"}
    with PredictorProcess(model_dir, model_name=name, extra_args=flags) as process:
        client = http.client.HTTPConnection(process.host, process.port, timeout=120)
        end_to_end: list[float] = []
        prediction: list[float] = []
        naive_ms: list[float] = []

        def post() -> tuple[float, float]:
            """One request: (end-to-end ms, the server's prediction ms)."""
            started = time.perf_counter()
            client.request("POST", path, body=jpeg, headers=headers)
            response = client.getresponse()
            payload = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise RuntimeError(
                    f"Expected 200 from POST {path}, got {response.status}: {payload[:300]!r}."
                )
            return elapsed, float(response.getheader(HEADER_PREDICTION_MS, "nan"))

        for _ in range(warmup):
            post()
        # Blocks of requests and of naive calls in turn, as the bare variants are timed: a naive call
        # evicts the server's caches, so alternating one by one would time a cold server.
        per_block = max(1, requests // _SERVED_BLOCKS)
        while len(end_to_end) < requests:
            block = min(per_block, requests - len(end_to_end))
            for _ in range(block):
                elapsed, predicted = post()
                end_to_end.append(elapsed)
                prediction.append(predicted)
            if naive is None:
                continue
            for _ in range(block):
                started = time.perf_counter()
                naive()
                naive_ms.append((time.perf_counter() - started) * 1000)
        client.close()
        load = []
        server = psutil.Process(process.pid)
        for count in connections:
            print(f">> {name}: {count} connection(s) for {seconds:g} s", flush=True)
            cpu_before, load_cpu_before = sum(server.cpu_times()[:2]), time.process_time()
            result = closed_loop(
                *(process.host, process.port, path, jpeg, headers),
                connections=count,
                seconds=seconds,
                phases=tuple(phases.values()),
            )
            # The server's CPU time (all threads) over the whole run, per answer of the run.
            cpu_ms = (sum(server.cpu_times()[:2]) - cpu_before) * 1000
            # The load generator's (this process's threads) on the same CPUs, which offline calls do not pay.
            load_cpu_ms = (time.process_time() - load_cpu_before) * 1000
            answered = result.answered_in_run
            load.append(
                {
                    "connections": count,
                    "per_second": round(result.per_second, 2),
                    "p50_ms": round(result.p50_ms, 2),
                    "p99_ms": round(result.p99_ms, 2),
                    "requests": result.requests,
                    "errors": result.errors,
                    "server_cpu_ms_per_request": round(cpu_ms / answered, 2) if answered else None,
                    "load_cpu_ms_per_request": round(load_cpu_ms / answered, 2) if answered else None,
                    **{f"{phase}_ms": round(result.phases_ms[header], 2) for phase, header in phases.items()},
                }
            )
    return {
        "end_to_end_ms": {
            "p50": round(percentile(end_to_end, 50), 3),
            "p95": round(percentile(end_to_end, 95), 3),
        },
        "prediction_ms_p50": round(percentile(prediction, 50), 3),
        # The naive baseline's p50 over its calls in turn with the requests.
        "naive_ms_p50": round(percentile(naive_ms, 50), 3) if naive_ms else None,
        "load": load,
    }


# ------------------------------------------------------------------------------------------------ run


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the tables and write JSON + CSV; exit 0 even when a target is missed."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from dr_cli.errors import CliError
    from serving.zoo.architectures import ARCHITECTURES

    names = [name.strip() for name in args.models.split(",") if name.strip()]
    variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    if args.requests < 3:
        raise CliError(f"Expected --requests of at least 3, got {args.requests}.", code=2)
    if args.micro_batch_rounds < 0:
        raise CliError(f"Expected --micro-batch-rounds of 0 or more, got {args.micro_batch_rounds}.", code=2)
    unknown = [name for name in names if name not in ARCHITECTURES]
    if unknown:
        raise CliError(f"Expected models among {sorted(ARCHITECTURES)!r}, got {unknown!r}.", code=2)
    unknown = [name for name in variants if name not in BARE_VARIANTS]
    if unknown:
        raise CliError(f"Expected variants among {list(BARE_VARIANTS)!r}, got {unknown!r}.", code=2)
    try:
        connections = [int(part) for part in args.connections.split(",") if part.strip()]
    except ValueError:
        raise CliError(f"Expected --connections like 1,4,16,64, got {args.connections!r}.", code=2) from None
    if any(count < 1 for count in connections):
        raise CliError(f"Expected positive connection counts, got {args.connections!r}.", code=2)

    print(">> measuring the machine's peaks (fp32 matmul; LiteRT fp32/int8 fully connected)", flush=True)
    matmul = matmul_peak_gflops()
    lite = litert_peak_gops()
    peaks = {
        "fp32": max(matmul.get("tensorflow", 0), matmul.get("numpy", 0), lite["fp32"]),
        "bf16": matmul.get("tensorflow_bf16", 0) or float("nan"),
        "int8": lite["int8"],
    }
    results: dict[str, Any] = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "arch": platform.machine(),
            "cpus": os.cpu_count(),
            # What the CPU ceiling of the load table counts: the CPUs this process (and the server) may use.
            "schedulable_cpus": schedulable_cpus(),
            "python": platform.python_version(),
            "cpu": {"summary": this_cpu().summary(), **this_cpu().as_dict()},
            "load_average": [round(value, 2) for value in os.getloadavg()],
        },
        "peaks_gops": {
            "fp32": round(peaks["fp32"], 1),
            "int8": round(peaks["int8"], 1),
            "bf16": round(peaks["bf16"], 1),
            "tensorflow_matmul_fp32": round(matmul["tensorflow"], 1),
            **({"numpy_matmul_fp32": round(matmul["numpy"], 1)} if "numpy" in matmul else {}),
            "tensorflow_matmul_bf16": round(matmul["tensorflow_bf16"], 1),
            "litert_fc_fp32": round(lite["fp32"], 1),
            "litert_fc_int8": round(lite["int8"], 1),
        },
        "requests": args.requests,
        "gradability": args.gradability or "reject (server default)",
        "targets": TARGETS,
        "models": {},
    }
    with tempfile.TemporaryDirectory(prefix="dr-bench-") as workdir:
        for name in names:
            model_dir = _ensure_model(Path(args.model_root) / name, name, int8="litert-int8" in variants)
            results["models"][name] = _bench_model(
                name,
                model_dir,
                variants=variants,
                requests=args.requests,
                warmup=args.warmup,
                connections=connections,
                seconds=args.seconds,
                gflops=ARCHITECTURES[name].gflops,
                peaks=peaks,
                workdir=Path(workdir),
                gradability=args.gradability,
                micro_batch_rounds=args.micro_batch_rounds,
            )
    results["machine"]["load_average_after"] = [round(value, 2) for value in os.getloadavg()]
    out = Path(args.out) if args.out else Path("runs") / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tables = _tables(results)
    results["verdicts"] = tables["targets"]
    out.write_text(json.dumps(results, indent=2) + "\n")
    for title, rows in tables.items():
        with out.with_name(f"{out.stem}-{title}.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["empty"])
            writer.writeheader()
            writer.writerows(rows)
    from serving.bench_plots import plot_bench

    plots = plot_bench(tables, out.with_suffix(""))
    _print(results, tables)
    written = [f"{out.stem}-{title}.csv" for title in tables] + [plot.name for plot in plots]
    print(f">> wrote {out} and {', '.join(written)}")
    return 0


def _ensure_model(model_dir: Path, arch: str, *, int8: bool = True) -> Path:
    """Build the SavedModel if missing; convert ``model.tflite`` (and ``model.int8.tflite``) if missing."""
    from serving.backends.litert import INT8_TFLITE_FILENAME, TFLITE_FILENAME
    from serving.zoo.convert import AgreementError, convert_model

    if not (model_dir / "saved_model.pb").is_file():
        from serving.zoo import build_model

        print(f">> building {arch} (random weights) into {model_dir}", flush=True)
        build_model(arch, model_dir)
    if not (model_dir / TFLITE_FILENAME).is_file():
        print(f">> converting {model_dir} to {TFLITE_FILENAME}", flush=True)
        try:
            convert_model(model_dir)
        except AgreementError as exc:
            print(f">> {arch}: no {TFLITE_FILENAME} ({exc})", flush=True)
    refusal = model_dir / INT8_REFUSAL_FILENAME
    if not int8 or (model_dir / INT8_TFLITE_FILENAME).is_file():
        return model_dir
    if refusal.is_file():
        reason = json.loads(refusal.read_text()).get("refused", "")
        print(f">> {arch}: no {INT8_TFLITE_FILENAME} (refused before: {reason} Delete {refusal} to retry.)")
    else:
        from serving.metadata import ModelMetadata
        from serving.zoo import quantize

        print(f">> quantizing {model_dir} to {INT8_TFLITE_FILENAME} (guarded)", flush=True)
        metadata = ModelMetadata.load(model_dir) or ModelMetadata()
        count, check = quantize.DEFAULT_CALIBRATION_SAMPLES, quantize.DEFAULT_CHECK_SAMPLES
        try:
            quantize.quantize_int8(
                model_dir,
                calibration=quantize.synthetic_photos(metadata, samples=count, seed=0),
                calibration_label=f"{count} synthetic photos, seed 0",
                check=quantize.synthetic_photos(metadata, samples=check, seed=quantize.check_seed(0)),
                check_label=f"{check} held-out synthetic photos, seed {quantize.check_seed(0)}",
                log=lambda message: print(f">> {message}", flush=True),
            )
        except quantize.GuardError as exc:
            print(f">> {arch}: no {INT8_TFLITE_FILENAME} ({exc})", flush=True)
            # The search takes minutes (VGG19: tens); the next run skips it until this file is deleted.
            record = {
                "refused": str(exc),
                "check_samples": check,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            refusal.write_text(json.dumps(record) + "\n")
    return model_dir


def _bench_model(
    name: str,
    model_dir: Path,
    *,
    variants: list[str],
    requests: int,
    warmup: int,
    connections: list[int],
    seconds: float,
    gflops: float,
    peaks: dict[str, float],
    workdir: Path,
    gradability: str | None = None,
    micro_batch_rounds: int = 3,
) -> dict[str, Any]:
    print(f">> {name}: bare batch-1 calls, {', '.join(variants)} in turn", flush=True)
    made, skipped, children = _variants(model_dir, variants, name, workdir)
    try:
        times = _interleaved(made, requests=requests, warmup=warmup)
    finally:
        for child in children:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.close()
            child.wait(timeout=60)
            child.stdout.close()
    bare: dict[str, Any] = {}
    for variant in made:
        one, many, cpu = (times[variant.name][key] for key in ("one", "many", "cpu"))
        p50 = percentile(one, 50)
        bare[variant.name] = {
            "precision": variant.precision,
            "p50_ms": round(p50, 3),
            "p95_ms": round(percentile(one, 95), 3),
            "mean_ms": round(statistics.fmean(one), 3),
            # CPU time of a batch-1 call, all threads (how many cores it keeps busy: cpu ÷ time).
            "cpu_ms_per_call": round(statistics.fmean(cpu), 3) if cpu else None,
            "share_of_peak": round(gflops / (p50 / 1000) / peaks[variant.precision], 4),
            f"batch{_MICRO_BATCH}_ms_per_image": round(statistics.median(many) / _MICRO_BATCH, 3),
        }
    micro: dict[str, list[dict[str, Any]]] = {}
    for variant in made:
        if variant.backend is not None and micro_batch_rounds > 0:
            print(f">> {name}: micro-batching {variant.name} (1, 16, 64 callers)", flush=True)
            micro[variant.name] = _micro_batching(
                variant, images=max(16, requests), rounds=micro_batch_rounds
            )
            verdict = "pays" if micro_batching_pays(micro[variant.name]) else "does not pay"
            print(f">> {name}: micro-batching {variant.name} {verdict} (≥ 1.2× at 16 and 64, ≤ +1 ms at 1)")
    # The naive baseline stays loaded: it is called in turn with the served requests.
    naive = next((variant.one for variant in made if variant.name == "naive"), None)
    del made
    gc.collect()
    result: dict[str, Any] = {
        "model_dir": str(model_dir),
        "gflops_per_image": gflops,
        "bare": bare,
        "skipped": skipped,
        "micro_batching": micro,
        "micro_batching_pays": {variant: micro_batching_pays(rows) for variant, rows in micro.items()},
        "served": {},
    }
    for variant, flags in SERVED_VARIANTS.items():
        if served_base(variant) not in bare:
            continue
        print(f">> {name}: serving {variant}", flush=True)
        result["served"][variant] = _served(
            name,
            model_dir,
            (*flags, *(("--gradability", gradability) if gradability else ())),
            requests=requests,
            warmup=warmup,
            connections=connections,
            seconds=seconds,
            naive=naive,
        )
    int8_json = model_dir / "model.int8.tflite.json"
    if int8_json.is_file():
        report = json.loads(int8_json.read_text())
        result["int8_guard"] = {
            key: report.get(key)
            for key in (
                "check_samples",
                "grade_agreement",
                "referable_agreement",
                "max_abs_diff",
                "float_layers",
                "search",
                "head_float_layers",
                "tail_float_layers",
                "speed_ratio",
            )
        }
    return result


# ---------------------------------------------------------------------------------------------- tables


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 3)


def _tables(results: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Rows of the bare, served and load tables (what the CSV files hold)."""
    bare_rows, served_rows, load_rows, micro_rows = [], [], [], []
    cores = results["machine"].get("schedulable_cpus") or results["machine"]["cpus"]
    for name, model in results["models"].items():
        bare = model["bare"]
        naive = bare.get("naive", {}).get("p50_ms")
        fp32_lite = bare.get("litert-fp32", {}).get("p50_ms")
        for variant, figures in bare.items():
            bare_rows.append(
                {
                    "model": name,
                    "variant": variant,
                    "p50_ms": figures["p50_ms"],
                    "p95_ms": figures["p95_ms"],
                    "over_naive": _ratio(figures["p50_ms"], naive),
                    "over_litert_fp32": _ratio(figures["p50_ms"], fp32_lite),
                    "share_of_peak": figures["share_of_peak"],
                    "peak": figures["precision"],
                    "cpu_ms": figures.get("cpu_ms_per_call"),
                    f"batch{_MICRO_BATCH}_gain": _ratio(
                        figures["p50_ms"], figures[f"batch{_MICRO_BATCH}_ms_per_image"]
                    ),
                }
            )
        for variant, rows in model.get("micro_batching", {}).items():
            micro_rows.extend({"model": name, "variant": variant, **row} for row in rows)
        for variant, served in model["served"].items():
            end_to_end = served["end_to_end_ms"]["p50"]
            offline_ms = bare[served_base(variant)]["mean_ms"]
            offline = 1000 / offline_ms
            model_cpu = bare[served_base(variant)].get("cpu_ms_per_call")
            # The baseline timed in turn with these requests (None when naive is not among the variants).
            in_turn = served["naive_ms_p50"]
            served_rows.append(
                {
                    "model": name,
                    "variant": variant,
                    "e2e_p50_ms": end_to_end,
                    "e2e_p95_ms": served["end_to_end_ms"]["p95"],
                    "prediction_p50_ms": served["prediction_ms_p50"],
                    "naive_p50_ms": in_turn,
                    "naive_over_e2e": _ratio(in_turn, end_to_end),
                    "offline_batch1_per_s": round(offline, 2),
                }
            )
            for row in served["load"]:
                load_rows.append(
                    {
                        "model": name,
                        "variant": variant,
                        "connections": row["connections"],
                        "per_second": row["per_second"],
                        "p50_ms": row["p50_ms"],
                        "p99_ms": row["p99_ms"],
                        "errors": row["errors"],
                        "offline_batch1_per_s": round(offline, 2),
                        "over_offline": _ratio(row["per_second"], offline),
                        "server_cpu_ms": row.get("server_cpu_ms_per_request"),
                        # The model call's share of the server's CPU per answer: when offline calls keep
                        # every CPU busy, over_offline cannot exceed it.
                        "model_cpu_share": _ratio(model_cpu, row.get("server_cpu_ms_per_request")),
                        "load_cpu_ms": row.get("load_cpu_ms_per_request"),
                        # The highest over_offline these CPUs allow at this CPU cost per answer.
                        "cpu_ceiling": cpu_ceiling(
                            cores=cores,
                            offline_ms=offline_ms,
                            server_cpu_ms=row.get("server_cpu_ms_per_request"),
                            load_cpu_ms=row.get("load_cpu_ms_per_request"),
                        ),
                        "decode_ms": row.get("decode_ms"),
                        "queue_ms": row.get("queue_ms"),
                        "prediction_ms": row.get("prediction_ms"),
                    }
                )
    tables = {
        "bare": bare_rows,
        "micro_batching": micro_rows,
        "served": served_rows,
        "load": load_rows,
        "served_batching": _served_batching_rows(load_rows),
    }
    tables["targets"] = verdicts(results, tables)
    return tables


def _served_batching_rows(load_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``<bare>+batch`` against ``<bare>`` over HTTP per connection count (run one after the other)."""
    by_key = {(row["model"], row["variant"], row["connections"]): row for row in load_rows}
    rows = []
    for (model, variant, connections), batched in by_key.items():
        direct = by_key.get((model, served_base(variant), connections))
        if served_base(variant) == variant or direct is None:
            continue
        rows.append(
            {
                "model": model,
                "variant": variant,
                "connections": connections,
                "direct_per_s": direct["per_second"],
                "batched_per_s": batched["per_second"],
                "gain": _ratio(batched["per_second"], direct["per_second"]),
                "direct_p50_ms": direct["p50_ms"],
                "batched_p50_ms": batched["p50_ms"],
            }
        )
    return rows


def _print(results: dict[str, Any], tables: dict[str, list[dict[str, Any]]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 200)
    peaks = results["peaks_gops"]
    console.print(
        f"peaks: fp32 {peaks['fp32']:.0f} GFLOP/s (TF matmul {peaks['tensorflow_matmul_fp32']:.0f}, "
        f"LiteRT FC {peaks['litert_fc_fp32']:.0f}), bf16 {peaks['bf16']:.0f} (TF matmul), "
        f"int8 {peaks['int8']:.0f} GOP/s (LiteRT FC); "
        f"load average {results['machine']['load_average']} (shared machine: compare ratios only)"
    )
    cpu = results["machine"]["cpu"]
    console.print(f"cpu: {cpu['summary']}")
    titles = {
        "bare": "bare batch-1, variants interleaved in one process",
        "micro_batching": (
            f"in-process callers: one inference thread vs batches of <= {_MICRO_BATCH} (no wait), interleaved"
        ),
        "served": "served (V1 raw JPEG, one keep-alive connection; naive called in turn with the requests)",
        "load": (
            "closed loop, V1 raw JPEG (server and load generator CPU per answer, the CPU ceiling of "
            "over_offline; mean decode+gate, queue, prediction ms)"
        ),
        "served_batching": (
            f"served --micro-batch {_MICRO_BATCH} vs one call per request (closed loop above, run in turn)"
        ),
        "targets": "the speed issue's targets in this run",
    }
    for key, rows in tables.items():
        if not rows:
            continue
        table = Table(title=titles[key])
        for column in rows[0]:
            table.add_column(column, justify="left" if column in _LEFT_COLUMNS else "right")
        for row in rows:
            table.add_row(*("—" if value is None else _cell(column, value) for column, value in row.items()))
        console.print(table)
    for model, figures in results["models"].items():
        for variant, why in figures.get("skipped", {}).items():
            console.print(f"{model}: {variant} not measured: {why}")
    if any(row["verdict"] == "met against its CPU ceiling" for row in tables["targets"]):
        console.print(
            "met against its CPU ceiling: the ratio as written is out of reach on these CPUs (the server's "
            "CPU per answer, with the load generator's, caps it at cpu_ceiling) and served reaches "
            f"≥ {CEILING_MIN} of that cap (serving.bench_targets)"
        )
    if not cpu["int8_dot"]:
        console.print(
            "this CPU has no int8 dot-product instructions (AVX512-VNNI, AVX-VNNI, AMX, Arm dot product): "
            "int8 is not expected to beat fp32 here"
        )


def _cell(column: str, value: Any) -> str:
    if isinstance(value, float):
        if column == "share_of_peak":
            return f"{100 * value:.0f}%"
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)
