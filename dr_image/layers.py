"""An image's layers: the Dockerfile step of each, its size on disk and gzip-compressed (what is pulled).

    python -m dr_image.layers TAG [TAG ...]

``docker save`` writes each layer as an uncompressed tar; each is gzip-compressed here at level 6 (the
registries' and ``docker push``'s default), so the sum is what a node pulls on a cold start.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Layer", "layer_sizes", "main"]


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


def layer_sizes(tag: str) -> list[Layer]:
    """The layers of ``tag``, lowest first (``docker save`` into a temporary folder)."""
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
