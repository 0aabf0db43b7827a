"""Container cold start per flavour and CPU limit, and the Knative cold start it implies.

    python -m dr_image.coldstart [--flavours lite,full] [--cpus 0.5,1,2] [--runs 5] [--bandwidth 100]
                                 [--probe-period 0.05] [--model-dir DIR] [--suffix SUFFIX] [--out FILE]

Each run starts the image as the chart does (``dr_image.containers.Container``: read-only root, uid 10001,
1 GiB, ``--cpus``) with ``DR_STARTUP_REPORT`` on a bind-mounted folder, probes the chart's readiness route
every ``--probe-period`` (50 ms: what queue-proxy does with the chart's ``knative.aggressiveReadiness``; a
faster poll would take CPU from the container being measured) and then sends one raw JPEG to the V1 predict
route. Phases, medians of ``--runs``: ``docker run`` → process start (the container start), → imports done,
→ model loaded, → ready (answering the probe), → first answer. Runs are interleaved over flavours and CPU
limits, and the load average is printed with the figures. One more run per flavour at the lowest CPU limit
with ``PYTHONPROFILEIMPORTTIME=1`` gives the import profile (self time per top-level package, the 15
largest); the floor is ``docker run`` → the image's interpreter running its first line (``python -c``,
nothing imported). Estimated Knative cold start = pull (the layers' gzip size at ``--bandwidth`` MB/s) +
``docker run`` → first answer (which holds the wait for the next readiness probe).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import stat
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from dr_image import images
from dr_image.containers import SMALLEST_PROFILE, USER, Container, docker
from dr_image.layers import layer_sizes
from serving.coldstart import import_profile

__all__ = ["PHASES", "interpreter_floor", "knative_estimate", "main", "measure", "measure_once", "phases"]

#: (name, start mark, end mark); marks are Unix times (the container's clock is the host's).
PHASES = (
    ("container_start", "run", "process_start"),
    ("imports", "process_start", "imports_done"),
    ("model_load", "imports_done", "model_loaded"),
    ("server_start", "model_loaded", "ready"),
    ("first_answer", "ready", "answered"),
    ("total", "run", "answered"),
)
#: CPU seconds of the server process: to imports done (interpreter start included), the model load, the
#: rest (server start, probes, first answer), total at the first answer.
CPU_PHASES = ("imports", "model_load", "rest", "total")
REPORT_DIR = "/report"


def measure_once(
    tag: str,
    flavour: str,
    model_dir: Path,
    jpeg: bytes,
    *,
    cpus: str,
    env: dict[str, str] | None = None,
    probe_period: float = 0.05,
) -> dict[str, Any]:
    """One container cold start: its marks and, with ``env``, the container's log."""
    with tempfile.TemporaryDirectory(prefix="dr-coldstart-") as tmp:
        Path(tmp).chmod(0o777)  # the server writes its report as uid 10001
        container = Container(
            image=tag,
            flavour=flavour,
            model_mount=model_dir,
            env={"DR_STARTUP_REPORT": f"{REPORT_DIR}/startup.json", **(env or {})},
            mounts={Path(tmp): REPORT_DIR},
        )
        container.profile = {**SMALLEST_PROFILE, "cpus": cpus}
        with container, httpx.Client(base_url=container.url, timeout=2.0, trust_env=False) as http:
            marks = {"run": time.time() - (time.monotonic() - container.started_at)}
            deadline = time.monotonic() + 300
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"/v1/models/{container.model_name}").status_code == 200:
                        break
                if time.monotonic() > deadline or not container.running():
                    raise RuntimeError(f"{tag} did not become ready:\n{container.logs()[-2000:]}")
                time.sleep(probe_period)
            marks["ready"] = time.time()
            answer = container.predict(jpeg)
            marks["answered"] = time.time()
            cpu_answered = process_cpu_seconds(container.name)
            if answer.status_code != 200:
                raise RuntimeError(f"Expected a prediction from {tag}, got {answer.status_code}.")
            log = container.logs() if env else ""
        startup = json.loads((Path(tmp) / "startup.json").read_text())
    marks.update({key: startup[key] for key in ("process_start", "imports_done", "model_loaded")})
    # An image built before serve reported its CPU time has only the total.
    at_imports = startup.get("cpu_imports_done", math.nan)
    at_model = startup.get("cpu_model_loaded", math.nan)
    cpu = {
        "imports": at_imports,
        "model_load": at_model - at_imports,
        "rest": cpu_answered - at_model,
        "total": cpu_answered,
    }
    return {"marks": marks, "cpu": cpu, "log": log}


def process_cpu_seconds(container: str) -> float:
    """CPU seconds (user + system, all threads) the container's main process has used so far (host /proc)."""
    pid = docker("inspect", "-f", "{{.State.Pid}}", container).stdout.strip()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def interpreter_floor(tag: str, *, cpus: str) -> float:
    """Seconds from ``docker run`` to the image's interpreter running its first line (nothing imported)."""
    started = time.time()
    options = ["--rm", "--read-only", "--user", USER, "--cpus", cpus, "--entrypoint", "python"]
    printed = docker("run", *options, tag, "-c", "import time; print(repr(time.time()))").stdout
    return float(printed.strip()) - started


def phases(marks: dict[str, float]) -> dict[str, float]:
    """Seconds per phase of ``PHASES``."""
    return {name: marks[end] - marks[start] for name, start, end in PHASES}


def knative_estimate(total_s: float, compressed_bytes: int, *, bandwidth_mb_s: float) -> float:
    """Pull at ``bandwidth_mb_s`` + container start → first answer (probe waits included), seconds."""
    return compressed_bytes / (bandwidth_mb_s * 1e6) + total_s


def measure(
    tags: dict[str, str],
    model_dir: Path,
    jpeg: bytes,
    *,
    cpus: list[str],
    runs: int,
    probe_period: float = 0.05,
) -> dict[str, Any]:
    """Interleaved runs over flavours × CPU limits; medians per phase; import profiles at the lowest limit."""
    samples: dict[tuple[str, str], list[dict[str, float]]] = {(f, c): [] for f in tags for c in cpus}
    cpu: dict[tuple[str, str], list[dict[str, float]]] = {(f, c): [] for f in tags for c in cpus}
    floors: dict[str, list[float]] = {c: [] for c in cpus}
    load_before = os.getloadavg()
    for index in range(runs):
        for limit in cpus:
            floors[limit].append(interpreter_floor(next(iter(tags.values())), cpus=limit))
            for flavour, tag in tags.items():
                once = measure_once(tag, flavour, model_dir, jpeg, cpus=limit, probe_period=probe_period)
                samples[(flavour, limit)].append(phases(once["marks"]))
                cpu[(flavour, limit)].append(once["cpu"])
                total = samples[(flavour, limit)][-1]["total"]
                print(f"  run {index + 1}/{runs} {flavour} {limit} CPU: {total:.2f} s")
    load_after = os.getloadavg()
    lowest = min(cpus, key=float)
    profiled = {"PYTHONPROFILEIMPORTTIME": "1"}
    profiles = {
        flavour: import_profile(measure_once(tag, flavour, model_dir, jpeg, cpus=lowest, env=profiled)["log"])
        for flavour, tag in tags.items()
    }
    rows = [
        {
            "flavour": flavour,
            "cpus": limit,
            "median_s": {name: statistics.median(s[name] for s in runs_) for name, _, _ in PHASES},
            "totals_s": [s["total"] for s in runs_],
            "median_cpu_s": {
                name: statistics.median(s[name] for s in cpu[(flavour, limit)]) for name in CPU_PHASES
            },
        }
        for (flavour, limit), runs_ in samples.items()
    ]
    return {
        "runs": runs,
        "probe_period_s": probe_period,
        "interpreter_floor_s": {limit: statistics.median(values) for limit, values in floors.items()},
        "load_average_before": load_before,
        "load_average_after": load_after,
        "rows": rows,
        "import_profile_cpus": lowest,
        "import_profiles_s": profiles,
    }


def print_report(result: dict[str, Any], sizes: dict[str, int], *, bandwidth: float) -> None:
    """The phase table with the Knative estimate, then the import profiles."""
    before = " ".join(f"{x:.1f}" for x in result["load_average_before"])
    after = " ".join(f"{x:.1f}" for x in result["load_average_after"])
    print(
        f"\ncontainer cold start, median of {result['runs']} runs (load average {before} before, "
        f"{after} after), seconds; Knative = pull at {bandwidth:g} MB/s + total (readiness probed every "
        f"{result['probe_period_s']:g} s)"
    )
    names = [name for name, _, _ in PHASES]
    print(f"{'flavour':8s}{'cpus':>5s}" + "".join(f"{name:>16s}" for name in names) + f"{'knative':>10s}")
    for row in result["rows"]:
        median = row["median_s"]
        estimate = knative_estimate(median["total"], sizes[row["flavour"]], bandwidth_mb_s=bandwidth)
        row["knative_estimate_s"] = estimate
        cells = "".join(f"{median[name]:16.3f}" for name in names)
        print(f"{row['flavour']:8s}{row['cpus']:>5s}{cells}{estimate:10.2f}")
    print("\nCPU seconds of the server process (all threads: what a start needs, however busy the machine):")
    print(f"{'flavour':8s}{'cpus':>5s}" + "".join(f"{name:>16s}" for name in CPU_PHASES))
    for row in result["rows"]:
        cells = "".join(f"{row['median_cpu_s'][name]:16.3f}" for name in CPU_PHASES)
        print(f"{row['flavour']:8s}{row['cpus']:>5s}{cells}")
    floors = ", ".join(
        f"{seconds:.3f} s at {limit} CPU" for limit, seconds in result["interpreter_floor_s"].items()
    )
    print(f"floor: docker run → the interpreter's first line (python -c, no imports): {floors}")
    for flavour, profile in result["import_profiles_s"].items():
        print(f"\nimport profile ({flavour}, {result['import_profile_cpus']} CPU, self time per package):")
        for name, seconds in profile:
            print(f"  {name:<28}{seconds:7.3f} s")


def served_copy(source: Path, target: Path) -> Path:
    """``source``'s model files (with ``model.tflite``) in ``target``, readable by uid 10001."""
    from serving.zoo.convert import convert_model

    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*"))
    if not (target / "model.tflite").is_file():
        convert_model(target)
    for path in [target.parent, target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0))
    return target


def main(argv: list[str] | None = None) -> int:
    """Measure, print, write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavours", default="lite,full", help="comma-separated flavours")
    parser.add_argument("--cpus", default="0.5,1,2", help="comma-separated CPU limits (docker run --cpus)")
    parser.add_argument("--runs", type=int, default=5, help="cold starts per flavour and limit (median)")
    parser.add_argument("--bandwidth", type=float, default=100.0, help="registry pull bandwidth, MB/s")
    parser.add_argument("--probe-period", type=float, default=0.05, help="readiness probe period, s")
    parser.add_argument("--model-dir", type=Path, default=images.ROOT / "models" / "mobilenet")
    parser.add_argument("--suffix", default="", help="tag: …:VERSION-FLAVOUR-SUFFIX")
    parser.add_argument("--out", type=Path, default=images.ROOT / "build" / "reports" / "cold-start.json")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"expected --runs of 1 or more, got {args.runs}")
    images.start_engine()
    tags = {flavour: images.tag_for(flavour, suffix=args.suffix) for flavour in args.flavours.split(",")}
    missing = [tag for tag in tags.values() if not images.image_exists(tag)]
    if missing:
        print(f"Error: missing image(s) {', '.join(missing)}; run: make image", file=sys.stderr)
        return 1
    if not args.model_dir.is_dir():
        print(f"Error: no model at {args.model_dir}; run: make model (or pass --model-dir).", file=sys.stderr)
        return 1
    from serving.zoo.synthetic import encode_image, make_fundus_image

    jpeg = encode_image(make_fundus_image(2, size=512, seed=7), "JPEG")
    sizes = {flavour: sum(layer.compressed for layer in layer_sizes(tag)) for flavour, tag in tags.items()}
    cpus = args.cpus.split(",")
    print(f"cold start: {', '.join(tags.values())} x {', '.join(cpus)} CPU x {args.runs} runs")
    with tempfile.TemporaryDirectory(prefix="dr-coldstart-model-") as tmp:
        model_dir = served_copy(args.model_dir, Path(tmp) / "mobilenet")
        result = measure(tags, model_dir, jpeg, cpus=cpus, runs=args.runs, probe_period=args.probe_period)
    print_report(result, sizes, bandwidth=args.bandwidth)
    result.update(tags=tags, compressed_bytes=sizes, bandwidth_mb_s=args.bandwidth)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\n>> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
