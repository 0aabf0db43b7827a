"""Print the image figures: size on disk and compressed, start → first prediction, LiteRT vs SavedModel.

    python -m dr_image.measure [--arch arm64] [--model-dir DIR] [--runs 3] [--cpus 0.5] [--no-compressed]
                               [--cold-start-cpus 0.5,1,2] [--cold-start-runs 5]

Images must exist (``make image``, ``make image-arm64``). Each start is timed from ``docker run`` to the first
200 answer to a raw JPEG, with the chart's arguments, read-only root, uid 10001 and the smallest profile's
limits (median of runs). The LiteRT/SavedModel rows time batch-1 calls of both backends in this process
(median of 50 after warm-up; host arch only). A foreign arch runs under QEMU: its times say so. Host arch
only, then: each image's layers on disk and gzip-compressed (``dr_image.layers``) and the container cold
start per phase and CPU limit with the estimated Knative cold start (``dr_image.coldstart``).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from dr_image import coldstart
from dr_image import images as images_module
from dr_image.containers import SMALLEST_PROFILE, Container
from dr_image.layers import compressed_bytes, layer_sizes, print_layers
from serving.timing import percentile, time_calls

ROOT = images_module.ROOT


def image_sizes(tag: str, *, compressed: bool) -> tuple[int, int | None]:
    """(bytes on disk, bytes a node pulls: ``dr_image.layers.compressed_bytes``) of ``tag``."""
    size = int(subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", tag], check=True,
                              capture_output=True, text=True).stdout)  # fmt: skip
    return size, compressed_bytes(tag) if compressed else None


def first_prediction_seconds(
    tag: str, flavour: str, arch: str, model_dir: Path, jpeg: bytes, *, cpus: str, timeout: float = 120.0
) -> float:
    """Seconds from ``docker run`` to the first successful V1 prediction."""
    container = Container(image=tag, flavour=flavour, arch=arch, model_mount=model_dir)
    container.profile = {**SMALLEST_PROFILE, "cpus": cpus}
    with container:
        return container.first_prediction(jpeg, timeout=timeout)


def backend_latency(model_dir: Path) -> list[tuple[str, float]]:
    """Median batch-1 milliseconds of the SavedModel and LiteRT backends on this machine."""
    from serving.backends.litert import LiteRTBackend
    from serving.backends.savedmodel import SavedModelBackend
    from serving.metadata import ModelMetadata
    from serving.zoo.convert import sample_batch

    metadata = ModelMetadata.load(model_dir)
    batch = sample_batch(metadata or ModelMetadata(), samples=4)
    rows = []
    backends = (SavedModelBackend(model_dir, metadata=metadata), LiteRTBackend(model_dir, metadata=metadata))
    for backend in backends:
        photos = itertools.cycle([batch[i : i + 1] for i in range(4)])
        times = time_calls(lambda b=backend, p=photos: b.predict(next(p)), n=50, warmup=5)
        rows.append((f"{backend.name} batch-1 (threads: {getattr(backend, 'num_threads', 'TF')})",
                     percentile(times, 50)))  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--arch", choices=("amd64", "arm64"), default=None, help="images of ARCH (default host)"
    )
    parser.add_argument("--model-dir", type=Path, default=None, help="MobileNet model dir")
    parser.add_argument("--runs", type=int, default=3, help="container starts per flavour (median)")
    parser.add_argument("--cpus", default=SMALLEST_PROFILE["cpus"], help="CPU limit of each container")
    parser.add_argument("--no-compressed", action="store_true", help="skip the layers' gzip sizes")
    parser.add_argument(
        "--cold-start-cpus", default="0.5,1,2", help="CPU limits of the cold-start section ('' skips it)"
    )
    parser.add_argument("--cold-start-runs", type=int, default=5, help="cold starts per flavour and limit")
    args = parser.parse_args(argv)
    candidates = (ROOT / "models" / "mobilenet", ROOT / "models" / "test" / "mobilenet")
    source = args.model_dir or next((p for p in candidates if p.is_dir()), None)
    if source is None:
        print("Error: no MobileNet model found; run: make model (or pass --model-dir).", file=sys.stderr)
        return 1
    images = images_module
    images.start_engine()
    from serving.zoo.convert import convert_model
    from serving.zoo.synthetic import encode_image, make_fundus_image

    with tempfile.TemporaryDirectory(prefix="dr-measure-") as tmp:
        model_dir = Path(tmp) / "mobilenet"
        shutil.copytree(source, model_dir, ignore=shutil.ignore_patterns("model.tflite*"))
        report = convert_model(model_dir)
        for path in [Path(tmp), model_dir, *model_dir.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0))
        jpeg = encode_image(make_fundus_image(2, size=512, seed=7))
        print(f"model: {source} -> {report.summary()}")
        arch = args.arch or images.host_arch()
        emulated = images.emulated(arch)
        note = f"; {images.EMULATION_NOTE}" if emulated else ""
        print(
            f"{'image':38s} {'on disk':>9s} {'gzip':>9s}  start -> first prediction (cpus={args.cpus}{note})"
        )
        for flavour in ("full", "lite"):
            tag = images.arch_tag(flavour, arch)
            if not images.image_exists(tag):
                print(f"{tag:38s} missing (make image{'-arm64' if emulated else ''})")
                continue
            disk, packed = image_sizes(tag, compressed=not args.no_compressed)
            starts = [
                first_prediction_seconds(
                    tag, flavour, arch, model_dir, jpeg, cpus=args.cpus, timeout=900 if emulated else 120
                )
                for _ in range(args.runs)
            ]
            packed_text = f"{packed / 1e6:7.0f}MB" if packed else "      n/a"
            runs = ", ".join(f"{s:.2f}" for s in starts)
            median = statistics.median(starts)
            print(f"{tag:38s} {disk / 1e6:7.0f}MB {packed_text}  median {median:.2f} s ({runs}){note}")
        if emulated:
            return 0
        for label, ms in backend_latency(model_dir):
            print(f"{label:42s} {ms:7.2f} ms")
        print(f"LiteRT vs SavedModel agreement: max |Δp| {report.max_abs_diff:.2g}, "
              f"grades {report.grade_agreement:.0%} on {report.samples} synthetic photos")  # fmt: skip
    present = [f for f in ("lite", "full") if images.image_exists(images.arch_tag(f, arch))]
    if args.no_compressed or not present:
        return 0
    print()
    for flavour in present:
        tag = images.arch_tag(flavour, arch)
        print_layers(tag, layer_sizes(tag))
    if not args.cold_start_cpus:
        return 0
    cold = ["--flavours", ",".join(present), "--cpus", args.cold_start_cpus]
    return coldstart.main([*cold, "--runs", str(args.cold_start_runs), "--model-dir", str(source)])


if __name__ == "__main__":
    sys.exit(main())
