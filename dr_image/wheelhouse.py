"""Fill a wheelhouse for one target platform, or check that every pinned runtime requirement has a wheel.

``python -m dr_image.wheelhouse --arch amd64`` downloads the wheels of both image flavours into
``build/wheelhouse/linux-amd64`` (the Dockerfile installs them with ``pip install --no-index``); ``python
dr_image/wheelhouse.py --arch arm64 --check`` downloads into a temporary folder only to prove that each
requirement resolves to a manylinux aarch64 (or pure-Python) wheel, prints what it found and removes the
folder.

Requirement files are closures pinned by ``dr_image/requirements.py``, so pip runs with ``--no-deps``. pip
evaluates environment markers against the host, not ``--platform``, so the markers are evaluated here for the
target first.
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement

from serving.metrics import normalise_arch

ROOT = Path(__file__).resolve().parent.parent
# Debian bookworm has glibc 2.36: any manylinux_2_17 .. manylinux_2_36 wheel runs in the image. pip does not
# expand a PEP 600 --platform to older glibc tags itself, so each one is passed.
GLIBC_MINOR = 36
MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}
FLAVOURS = ("full", "lite", "lab")


def requirements_for(flavour: str, arch: str) -> list[str]:
    """The pinned requirement lines of ``flavour`` whose markers hold on ``arch``, markers removed."""
    machine = MACHINE[arch]
    env = {"platform_machine": machine, "sys_platform": "linux", "python_version": "3.11", "extra": ""}
    lines = []
    for raw in (ROOT / "docker" / f"requirements-{flavour}.txt").read_text().splitlines():
        raw = raw.split("#", 1)[0].strip()
        if not raw:
            continue
        req = Requirement(raw)
        if req.marker is None or req.marker.evaluate(env):
            lines.append(f"{req.name}{req.specifier}")
    return lines


def _pip_download(lines: list[str], dest: Path, extra: list[str]) -> subprocess.CompletedProcess[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(lines) + "\n")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "off", "--dest", str(dest)]
    try:
        return subprocess.run([*cmd, *extra, "-r", handle.name], capture_output=True, text=True)
    finally:
        Path(handle.name).unlink()


def download(arch: str, dest: Path, flavours: tuple[str, ...] = FLAVOURS) -> tuple[list[str], list[str]]:
    """Download the wheels of ``flavours`` for linux/``arch`` into ``dest``.

    Returns (every requirement line, those that have no wheel for ``arch`` and were fetched as source instead:
    they are compiled in the image's build stage). Raises ``SystemExit`` if one has neither.
    """
    machine = MACHINE[arch]
    platform = [
        *[arg for m in range(17, GLIBC_MINOR + 1) for arg in ("--platform", f"manylinux_2_{m}_{machine}")],
        "--platform", f"manylinux2014_{machine}", "--only-binary=:all:",
        "--python-version", "3.11", "--implementation", "cp",
        "--abi", "cp311", "--abi", "abi3", "--abi", "none",
    ]  # fmt: skip
    wanted = sorted({line for flavour in flavours for line in requirements_for(flavour, arch)})
    dest.mkdir(parents=True, exist_ok=True)
    remaining, sources = list(wanted), []
    while remaining:
        result = _pip_download(remaining, dest, platform)
        if result.returncode == 0:
            break
        missing = re.search(r"No matching distribution found for (\S+)", result.stderr)
        if not missing or missing.group(1) not in remaining:
            sys.stderr.write(result.stderr)
            raise SystemExit(f"Error: pip download for linux/{arch} failed (exit {result.returncode}).")
        line = missing.group(1)
        if _pip_download([line], dest, ["--no-binary=:all:"]).returncode != 0:
            raise SystemExit(f"Error: {line!r} has neither a linux/{arch} wheel nor a source distribution.")
        sources.append(line)
        remaining.remove(line)
    return wanted, sources


def _platform_tags(dest: Path) -> dict[str, str]:
    tags = {}
    for wheel in sorted(dest.glob("*.whl")):
        parts = wheel.stem.split("-")
        tags[parts[0].lower().replace("_", "-")] = f"{parts[1]}  {parts[-1]}"
    return tags


def main(argv: list[str] | None = None) -> int:
    """Fill ``build/wheelhouse/linux-ARCH`` or, with ``--check``, only prove every wheel exists."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    host = normalise_arch(platform.machine())
    parser.add_argument("--arch", choices=sorted(MACHINE), default=host, help="target (default: host)")
    parser.add_argument("--flavour", choices=FLAVOURS, action="append", help="flavour(s); default all")
    parser.add_argument("--check", action="store_true", help="download into a temporary folder and report")
    parser.add_argument("--dest", type=Path, help="wheelhouse folder (default build/wheelhouse/linux-ARCH)")
    args = parser.parse_args(argv)
    flavours = tuple(args.flavour or FLAVOURS)
    if args.check:
        with tempfile.TemporaryDirectory(prefix=f"wheels-{args.arch}-") as tmp:
            wanted, sources = download(args.arch, Path(tmp), flavours)
            for name, tag in _platform_tags(Path(tmp)).items():
                print(f"  {name:28s} {tag}")
        label = f"{len(wanted)} runtime requirements of {'+'.join(flavours)}"
        if sources:
            print(f">> {label}: no linux/{args.arch} wheel for {', '.join(sources)} (source only:")
            print(
                ">> the build stage compiles it, the runtime stage stays compiler-free); the rest have wheels"
            )
        else:
            print(f">> all {label} have linux/{args.arch} wheels")
        return 0
    dest = args.dest or ROOT / "build" / "wheelhouse" / f"linux-{args.arch}"
    wanted, sources = download(args.arch, dest, flavours)
    note = f" ({', '.join(sources)} as source)" if sources else ""
    print(f">> {len(wanted)} requirements for linux/{args.arch} in {dest}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
