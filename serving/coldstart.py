"""``dr-serving bench cold-start``: where a predictor's start goes, process spawn → first answer, per backend.

Each run spawns ``dr-serving serve`` on 127.0.0.1 with ``DR_STARTUP_REPORT`` set (``serving.serve`` then
writes its process start, imports-done and model-loaded times and its loaded modules just before it
listens), polls ``/v2/health/ready`` every 10 ms and sends one photo to ``/v1/models/<name>:predict``.
Phases (medians of ``--runs``): spawn → process start (interpreter exec), → imports done, → model loaded,
→ ready (listening and answering ready), → first answer. One more run with ``PYTHONPROFILEIMPORTTIME=1``
(``python -X importtime``) gives the import profile: self time summed per top-level package, the 15
largest. Process level: the container variant (container start, CPU limits, pull, the Knative estimate) is
``python -m dr_image.coldstart`` (``make image-cold-start``; the image does not ship the image tooling).
Also run as ``dr-serving bench cold-start``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dr_cli.help import DefaultsHelpFormatter

__all__ = ["PHASES", "import_profile", "measure_once", "register", "run"]

#: (name, start mark, end mark) of each phase; marks are Unix times.
PHASES = (
    ("spawn_to_process_start", "spawned", "process_start"),
    ("process_start_to_imports_done", "process_start", "imports_done"),
    ("imports_done_to_model_loaded", "imports_done", "model_loaded"),
    ("model_loaded_to_ready", "model_loaded", "ready"),
    ("ready_to_first_answer", "ready", "answered"),
    ("total_spawn_to_first_answer", "spawned", "answered"),
)


def import_profile(text: str, top: int = 15) -> list[tuple[str, float]]:
    """``python -X importtime`` output → the ``top`` top-level packages by summed self time, seconds."""
    totals: dict[str, int] = defaultdict(int)
    for line in text.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line[len("import time:") :].split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header line
        totals[fields[2].strip().split(".")[0]] += int(fields[0])
    ranked = sorted(totals.items(), key=lambda item: item[1], reverse=True)[:top]
    return [(name, micros / 1e6) for name, micros in ranked]


def measure_once(
    model_dir: Path, *, backend: str, model_name: str, photo: bytes, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """One cold start: the marks (Unix times), the loaded modules, the child's log."""
    import httpx

    from serving.launcher import PredictorProcess

    with tempfile.TemporaryDirectory(prefix="dr-coldstart-") as tmp:
        report = Path(tmp) / "startup.json"
        process = PredictorProcess(
            model_dir,
            model_name=model_name,
            env={"DR_STARTUP_REPORT": str(report), **(env or {})},
            extra_args=(f"--backend={backend}",),
            log_path=Path(tmp) / "predictor.log",
        )
        marks: dict[str, float] = {"spawned": time.time()}
        process.start()
        try:
            with httpx.Client(base_url=process.url, timeout=60.0, trust_env=False) as http:
                deadline = time.monotonic() + 300
                while True:
                    if process.returncode is not None:
                        raise RuntimeError(f"Expected the predictor to start, got: {process.last_error()}")
                    try:
                        if http.get("/v2/health/ready", timeout=1.0).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"Expected the predictor to be ready within 300 s ({process.log_path})."
                        )
                    time.sleep(0.01)
                marks["ready"] = time.time()
                answer = http.post(
                    f"/v1/models/{model_name}:predict", content=photo, headers={"Content-Type": "image/jpeg"}
                )
                marks["answered"] = time.time()
                if answer.status_code != 200:
                    raise RuntimeError(
                        f"Expected a prediction, got {answer.status_code}: {answer.text[:200]}"
                    )
            startup = json.loads(report.read_text())
            log = process.log_text()
        finally:
            process.stop()
    marks.update({key: startup[key] for key in ("process_start", "imports_done", "model_loaded")})
    return {"marks": marks, "modules": startup["modules"], "log": log}


def phases(marks: dict[str, float]) -> dict[str, float]:
    """Seconds per phase of ``PHASES`` from one run's marks."""
    return {name: marks[end] - marks[start] for name, start, end in PHASES}


def available_backends(model_dir: Path) -> list[str]:
    """The backends this installation can serve ``model_dir`` with (TensorFlow needs the ``tf`` extra)."""
    import importlib.util

    found = []
    if (model_dir / "saved_model.pb").is_file() and importlib.util.find_spec("tensorflow") is not None:
        found.append("savedmodel")
    if (model_dir / "model.tflite").is_file() and importlib.util.find_spec("ai_edge_litert") is not None:
        found.append("litert")
    return found


def measure(model_dir: Path, *, backends: Iterable[str], runs: int, model_name: str) -> dict[str, Any]:
    """Runs interleaved across backends; medians per phase and the import profile per backend."""
    from serving.zoo.synthetic import encode_image, make_fundus_image

    photo = encode_image(make_fundus_image(2, size=512, seed=7), "JPEG")
    backends = list(backends)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in backends}
    modules: dict[str, list[str]] = {}
    for index in range(runs):
        for backend in backends:
            once = measure_once(model_dir, backend=backend, model_name=model_name, photo=photo)
            samples[backend].append(phases(once["marks"]))
            modules[backend] = once["modules"]
            print(
                f"  run {index + 1}/{runs} {backend}: "
                f"{samples[backend][-1]['total_spawn_to_first_answer']:.2f} s"
            )
    result: dict[str, Any] = {"runs": runs, "model_dir": str(model_dir), "backends": {}}
    for backend in backends:
        profiled = measure_once(
            model_dir,
            backend=backend,
            model_name=model_name,
            photo=photo,
            env={"PYTHONPROFILEIMPORTTIME": "1"},
        )
        result["backends"][backend] = {
            "median_s": {name: statistics.median(s[name] for s in samples[backend]) for name, _, _ in PHASES},
            "import_profile_s": import_profile(profiled["log"]),
            "top_level_packages": sorted({name.split(".")[0] for name in modules[backend]}),
        }
    return result


def print_table(result: dict[str, Any]) -> None:
    """The medians and the import profile as text tables."""
    names = [name for name, _, _ in PHASES]
    backends = list(result["backends"])
    print(f"\nmedian of {result['runs']} runs, seconds   " + "  ".join(f"{b:>10}" for b in backends))
    for name in names:
        cells = "  ".join(f"{result['backends'][b]['median_s'][name]:10.3f}" for b in backends)
        print(f"{name:<38}{cells}")
    for backend in backends:
        print(f"\nimport profile ({backend}, self time per top-level package, python -X importtime):")
        for name, seconds in result["backends"][backend]["import_profile_s"]:
            print(f"  {name:<28}{seconds:7.3f} s")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dr-serving cold-start`` (also ``dr-serving bench cold-start``, see ``serving.bench``)."""
    parser = subparsers.add_parser(
        "cold-start",
        help="Measure a predictor's start (spawn to first answer) per backend, with an import profile.",
        description=__doc__.splitlines()[0],
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model-dir", default="models/mobilenet", help="Model folder (SavedModel and/or tflite)."
    )
    parser.add_argument("--model-name", default="mobilenet", help="Name in the routes.")
    parser.add_argument("--runs", type=int, default=5, help="Cold starts per backend (median reported).")
    parser.add_argument(
        "--backends", default="", help="Comma-separated backends (default: every available one)."
    )
    parser.add_argument("--out", help="JSON file to write the figures to.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Measure, print the tables, write ``--out``."""
    from dr_cli.errors import CliError

    model_dir = Path(args.model_dir)
    backends = [b for b in args.backends.split(",") if b] or available_backends(model_dir)
    if not backends:
        raise CliError(
            f"Expected a SavedModel or model.tflite that this installation can serve in {model_dir}."
        )
    if args.runs < 1:
        raise CliError(f"Expected --runs of 1 or more, got {args.runs}.")
    print(
        f"cold-start: {args.runs} runs x {', '.join(backends)} on {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}"
    )
    result = measure(model_dir, backends=backends, runs=args.runs, model_name=args.model_name)
    print_table(result)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0
