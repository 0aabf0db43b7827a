"""An image's layers: the Dockerfile step of each, its size on disk and gzip-compressed (what is pulled).

    python -m dr_image.layers TAG [TAG ...]

``docker save`` writes each layer as an uncompressed tar; each is gzip-compressed here at level 6 (the
registries' and ``docker push``'s default), so the sum is what a node pulls on a cold start. Layers are
measured once per image id (cached in ``build/reports/image-layers.json``): the image figures, the cold-start
estimate and the load lab's pull estimate all read the same numbers.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Layer", "compressed_bytes", "layer_sizes", "main"]

#: Layer figures already measured, per image id (content-addressed, so never stale).
CACHE = Path(__file__).resolve().parents[1] / "build" / "reports" / "image-layers.json"


@dataclass(frozen=True)
class Layer:
    """One layer: the step that made it (``created_by``, shortened), tar bytes, gzip bytes."""

    step: str
    size: int
    compressed: int


def _gzip_size(path: Path) -> int:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    total = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            total += len(compressor.compress(chunk))
    return total + len(compressor.flush())


def _step(created_by: str) -> str:
    """``COPY dir:<hash> in /opt/venv`` → ``COPY … /opt/venv``; ``RUN`` lines are kept short."""
    text = created_by.replace("/bin/sh -c #(nop) ", "").strip()
    if text.startswith("COPY") and " in " in text:
        return f"COPY … {text.rsplit(' in ', 1)[1].strip()}"
    return text[:60]


def _image_id(tag: str) -> str:
    result = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", tag], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"docker image inspect {tag} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def layer_sizes(tag: str, *, cache: Path | None = None) -> list[Layer]:
    """The layers of ``tag``, lowest first: from the cache, else measured once and remembered."""
    cache = cache or CACHE
    image_id = _image_id(tag)
    known: dict[str, list[list]] = {}
    with contextlib.suppress(OSError, ValueError):
        known = json.loads(cache.read_text(encoding="utf-8"))
    if image_id in known:
        return [Layer(*entry) for entry in known[image_id]]
    layers = _measure_layers(tag)
    known[image_id] = [[layer.step, layer.size, layer.compressed] for layer in layers]
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known, indent=1) + "\n", encoding="utf-8")
    return layers


def compressed_bytes(tag: str) -> int:
    """What a node pulls for ``tag``: the sum of its layers gzip-compressed."""
    return sum(layer.compressed for layer in layer_sizes(tag))


def _measure_layers(tag: str) -> list[Layer]:
    """``docker save`` ``tag`` into a temporary folder and measure each layer."""
    with tempfile.TemporaryDirectory(prefix="dr-layers-") as tmp:
        folder = Path(tmp)
        with subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE) as save:
            assert save.stdout is not None
            with tarfile.open(fileobj=save.stdout, mode="r|") as archive:
                archive.extractall(folder, filter="data")
        if save.returncode != 0:
            raise RuntimeError(f"docker save {tag} failed (exit {save.returncode}).")
        (manifest,) = json.loads((folder / "manifest.json").read_text())
        config = json.loads((folder / manifest["Config"]).read_text())
        steps = [entry.get("created_by", "") for entry in config["history"] if not entry.get("empty_layer")]
        return [
            Layer(_step(step), (folder / layer).stat().st_size, _gzip_size(folder / layer))
            for layer, step in zip(manifest["Layers"], steps, strict=True)
        ]


def print_layers(tag: str, layers: list[Layer]) -> None:
    """One line per layer and the total, MB."""
    print(f"{tag}: {'on disk':>9s} {'gzip':>9s}")
    for layer in layers:
        print(f"  {layer.step:40s} {layer.size / 1e6:7.1f}MB {layer.compressed / 1e6:7.1f}MB")
    size, packed = sum(x.size for x in layers), sum(x.compressed for x in layers)
    print(f"  {'total':40s} {size / 1e6:7.1f}MB {packed / 1e6:7.1f}MB")


def main(argv: list[str] | None = None) -> int:
    """Print the layer table of each tag."""
    tags = sys.argv[1:] if argv is None else argv
    if not tags:
        print("Usage: python -m dr_image.layers TAG [TAG ...]", file=sys.stderr)
        return 2
    for tag in tags:
        print_layers(tag, layer_sizes(tag))
    return 0


if __name__ == "__main__":
    sys.exit(main())
