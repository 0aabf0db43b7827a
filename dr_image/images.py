"""Build the images offline: start the Docker engine, make the base image and wheelhouse, build.

    python -m dr_image.images engine                       # start dockerd unless an engine answers
    python -m dr_image.images prepare                      # engine + debootstrap base image + host wheelhouse
    python -m dr_image.images prepare --arch arm64         # the same for linux/arm64 (QEMU: make qemu)
    python -m dr_image.images build --flavour lite [--arch arm64] [--model DIR] [--tag TAG] [--base IMG]
                                  [--no-wheelhouse]
    python -m dr_image.images build --flavour lab       # the load lab: dr-serving/loadtest:<version>-lab

Used by make/image.mk and the image tests, so both build exactly the same way. Nothing is pulled from a
registry when the base is the local ``dr-serving/base:bookworm`` (``…:bookworm-arm64`` for a foreign arch);
wheels come from ``build/wheelhouse/linux-ARCH``. A foreign arch is built with ``docker build --platform``
under QEMU user emulation; its tag ends in the arch (``dr-serving/predictor:0.1.0-lite-arm64``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from serving.metrics import normalise_arch

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "dr-serving/predictor"
LOCAL_BASE = "dr-serving/base:bookworm"
OFFICIAL_BASE = "python:3.11-slim-bookworm"
#: The predictor flavours (model servers; ``make image``, multi-arch indexes, measurements).
PREDICTOR_FLAVOURS = ("full", "lite")
#: Every flavour of the Dockerfile: the predictors and ``lab``, the Locust load lab of the load-test pods.
FLAVOURS = (*PREDICTOR_FLAVOURS, "lab")
#: Repository of the lab flavour (the chart's ``loadtest.image.repository``).
LAB_REPOSITORY = "dr-serving/loadtest"
ARCHES = ("amd64", "arm64")
#: Said wherever a time measured on an emulated arm64 image is shown.
EMULATION_NOTE = "QEMU emulation, not Graviton performance"
BAKE_DIR = ROOT / "build" / "bake"
DOCKERD_LOG = ROOT / "build" / "dockerd.log"
# dockerd options to try in order: the defaults, then what works in a container-like sandbox.
DOCKERD_ATTEMPTS: tuple[tuple[str, ...], ...] = (
    (),
    ("--iptables=false", "--bridge=none"),
    ("--storage-driver=vfs", "--iptables=false", "--bridge=none"),
)


class ImageError(RuntimeError):
    """A build step failed; the message says which and where its log is."""


def version() -> str:
    """The project version from pyproject.toml (the image tag's prefix)."""
    import tomllib

    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def tag_for(flavour: str, *, suffix: str = "") -> str:
    """``dr-serving/predictor:<version>-<flavour>`` (the chart's tag), plus ``-<suffix>`` when given.

    The lab flavour is ``dr-serving/loadtest:<version>-lab``, the chart's default ``loadtest.image``.
    """
    repository = LAB_REPOSITORY if flavour == "lab" else REPOSITORY
    return f"{repository}:{version()}-{flavour}{f'-{suffix}' if suffix else ''}"


def host_arch() -> str:
    """The host's architecture in Docker's words (``amd64`` / ``arm64``)."""
    return normalise_arch(platform.machine())


def emulated(arch: str) -> bool:
    """Whether images of ``arch`` run under QEMU on this host."""
    return arch != host_arch()


#: The CPU QEMU emulates for arm64 (Graviton2's core) and what /proc/cpuinfo says about it there.
QEMU_CPU = "neoverse-n1"
NEOVERSE_N1_CPUINFO = (
    "processor\t: {n}\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics"
    " fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
    "CPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n"
)


def emulation_run_options(arch: str) -> list[str]:
    """``docker run`` options for an ``arch`` container on this host: none when native.

    Under QEMU user emulation ``/proc/cpuinfo`` is the host's x86 text, on which the cpuinfo library inside
    LiteRT/XNNPACK crashes (SIGSEGV reading its ARM fields). Emulated containers therefore get an aarch64
    ``/proc/cpuinfo`` (runc allows this one bind mount into /proc, as for lxcfs) that matches the CPU
    QEMU emulates (``QEMU_CPU``, read by the binfmt interpreter). Real arm64 nodes need neither.
    """
    if not emulated(arch):
        return []
    if arch != "arm64":
        raise ImageError(f"No emulation settings for {arch!r}.")
    cpuinfo = ROOT / "build" / "emulation" / f"cpuinfo-{QEMU_CPU}-{os.cpu_count() or 1}"
    if not cpuinfo.is_file():
        cpuinfo.parent.mkdir(parents=True, exist_ok=True)
        cpuinfo.write_text("".join(NEOVERSE_N1_CPUINFO.format(n=n) for n in range(os.cpu_count() or 1)))
        cpuinfo.chmod(0o644)
    return [
        "--platform", f"linux/{arch}", "--env", f"QEMU_CPU={QEMU_CPU}",
        "--volume", f"{cpuinfo}:/proc/cpuinfo:ro",
    ]  # fmt: skip


def base_tag(arch: str | None = None) -> str:
    """The debootstrap base of ``arch``: ``dr-serving/base:bookworm`` on the host's, else ``…-<arch>``."""
    return LOCAL_BASE if not arch or arch == host_arch() else f"{LOCAL_BASE}-{arch}"


def arch_tag(flavour: str, arch: str | None = None, *, suffix: str = "") -> str:
    """The predictor tag of ``flavour`` for ``arch``: the plain tag on the host's, ``…-<arch>`` otherwise."""
    parts = [p for p in (arch if arch and emulated(arch) else "", suffix) if p]
    return tag_for(flavour, suffix="-".join(parts))


def image_platform(image: str) -> str:
    """``os/architecture`` from the image's config (``linux/arm64``)."""
    result = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", image],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ImageError(f"No image {image!r}: {result.stderr.strip()}")
    return result.stdout.strip()


def engine_running() -> bool:
    """Whether a Docker engine answers ``docker info``."""
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def start_engine(*, timeout: float = 60.0) -> str:
    """Start ``dockerd`` unless an engine already answers; returns how (``"running"`` or the options used)."""
    if engine_running():
        return "running"
    if shutil.which("docker") is None:
        raise ImageError("The docker client is missing; install Debian's docker.io (make system-deps).")
    dockerd = shutil.which("dockerd") or next(
        (p for p in ("/usr/sbin/dockerd", "/usr/bin/dockerd") if Path(p).exists()), None
    )
    if dockerd is None:
        raise ImageError("No Docker engine answers and dockerd is missing; run: make system-deps")
    if os.geteuid() != 0:
        raise ImageError("No Docker engine answers and starting dockerd needs root; start it: sudo dockerd &")
    DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
    for options in DOCKERD_ATTEMPTS:
        with DOCKERD_LOG.open("a") as log:
            log.write(f"\n=== {time.strftime('%F %T')} dockerd {' '.join(options)}\n")
        # Detached through a shell (setsid, nohup): the daemon outlives this process and is not our child.
        command = shlex.join([dockerd, *options])
        launch = f"setsid nohup {command} >>{shlex.quote(str(DOCKERD_LOG))} 2>&1 </dev/null & echo $!"
        pid = int(subprocess.run(["sh", "-c", launch], capture_output=True, text=True, check=True).stdout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            if engine_running():
                (DOCKERD_LOG.parent / "dockerd.pid").write_text(f"{pid}\n")
                return " ".join(options) or "defaults"
            time.sleep(0.5)
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            for _ in range(60):
                if not _alive(pid):
                    break
                time.sleep(0.5)
    raise ImageError(
        f"dockerd did not start with any of {len(DOCKERD_ATTEMPTS)} option sets; see {DOCKERD_LOG}."
    )


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rsplit(") ", 1)[1][:1] != "Z"


def image_exists(image: str) -> bool:
    """Whether the engine has ``image``."""
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


def ensure_base_image(image: str | None = None, *, arch: str | None = None) -> str:
    """Build the debootstrap base of ``arch`` unless it exists (``docker/base-image.sh``); returns its tag.

    A foreign arch needs QEMU registered (``make qemu``): its debootstrap second stage runs emulated.
    """
    arch = arch or host_arch()
    image = image or base_tag(arch)
    if not image_exists(image):
        _run(["bash", str(ROOT / "docker" / "base-image.sh"), image, arch], f"base-image-{arch} build")
    if image_platform(image) != f"linux/{arch}":
        raise ImageError(
            f"{image} is {image_platform(image)}, not linux/{arch}; remove it and build it again."
        )
    return image


def wheelhouse_dir(arch: str | None = None) -> Path:
    """The host wheelhouse for ``arch`` (default: this machine's)."""
    return ROOT / "build" / "wheelhouse" / f"linux-{arch or host_arch()}"


def ensure_wheelhouse(arch: str | None = None) -> Path:
    """Download the wheels of every flavour unless each pinned requirement already has one there."""
    dest = wheelhouse_dir(arch)
    stamp = dest / ".requirements"
    wanted = "".join((ROOT / "docker" / f"requirements-{f}.txt").read_text() for f in FLAVOURS)
    if stamp.is_file() and stamp.read_text() == wanted:
        return dest
    _run(
        [sys.executable, "-m", "dr_image.wheelhouse", "--arch", arch or host_arch()],
        f"wheelhouse-{arch or host_arch()} download",
    )
    stamp.write_text(wanted)
    return dest


#: What the lite image bakes of a model folder (the files present are copied).
LITE_FILES = (
    "model.tflite",
    "model.tflite.json",
    "model.int8.tflite",
    "model.int8.tflite.json",
    "dr_model.json",
)


def stage_model(model_dir: str | os.PathLike[str], flavour: str) -> str:
    """Copy what ``flavour`` serves of a model directory to ``build/bake/``; returns its path in the context.

    The lite image gets the LiteRT files (``model.tflite``; ``model.int8.tflite`` for ``DR_PRECISION=int8``
    when the folder has one) and the metadata only, the full image the SavedModel without any LiteRT file;
    every file is made world-readable, since the image runs as uid 10001.
    """
    source = Path(model_dir).resolve()
    if not (source / "saved_model.pb").is_file() and not (source / "model.tflite").is_file():
        raise ImageError(f"Expected a model directory (saved_model.pb or model.tflite) at {str(source)!r}.")
    target = BAKE_DIR / f"{flavour}-{source.name}"
    if target.exists():
        shutil.rmtree(target)
    if flavour == "lite":
        target.mkdir(parents=True)
        for name in LITE_FILES:
            if (source / name).is_file():
                shutil.copy2(source / name, target / name)
    else:
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*", "*.tflite", "*.tflite.json"))
    for path in [target, *target.rglob("*")]:
        extra = stat.S_IROTH | stat.S_IRGRP | (stat.S_IXOTH | stat.S_IXGRP if path.is_dir() else 0)
        path.chmod(path.stat().st_mode | extra)
    return str(target.relative_to(ROOT))


def build(
    flavour: str,
    *,
    tag: str | None = None,
    base: str = LOCAL_BASE,
    wheelhouse: Path | None = None,
    model: str | os.PathLike[str] | None = None,
    arch: str | None = None,
    quiet: bool = True,
) -> str:
    """``docker build`` one flavour from the repository's Dockerfile; returns the image tag.

    With ``arch``, the build runs ``--platform linux/<arch>`` (emulated when foreign) and the result is
    checked to carry that architecture in its config.
    """
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {list(FLAVOURS)!r}, got {flavour!r}.")
    if arch is not None and arch not in ARCHES:
        raise ValueError(f"arch must be one of {list(ARCHES)!r}, got {arch!r}.")
    model_arg = ""
    if model is not None:
        if flavour == "lab":
            raise ImageError("The lab image serves no model; build it without one.")
        if flavour == "lite" and not (Path(model) / "model.tflite").is_file():
            raise ImageError(
                f"The lite image serves model.tflite, which {str(model)!r} lacks; "
                f"run: dr-serving model convert {model}"
            )
        model_arg = stage_model(model, flavour)
    tag = tag or arch_tag(flavour, arch)
    command = ["docker", "build", "--tag", tag, "--build-arg", f"BASE_IMAGE={base}"]
    if arch is not None:
        command += ["--platform", f"linux/{arch}"]
    command += ["--build-arg", f"FLAVOUR={flavour}", "--build-arg", f"VERSION={version()}"]
    if wheelhouse is not None:
        command += ["--build-arg", f"WHEELHOUSE={wheelhouse.relative_to(ROOT)}"]
    if model_arg:
        command += ["--build-arg", f"MODEL={model_arg}"]
    if quiet:
        command.append("--quiet")
    _run([*command, str(ROOT)], f"docker-build-{flavour}-{arch or host_arch()} build")
    if arch is not None and image_platform(tag) != f"linux/{arch}":
        raise ImageError(f"{tag} was built as {image_platform(tag)}, not linux/{arch}.")
    return tag


def _run(command: list[str], what: str) -> None:
    log = ROOT / "build" / "logs" / (what.split()[0].replace("/", "_") + ".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise ImageError(f"{what} failed (exit {result.returncode}); last lines of {log}:\n{tail}")


def main(argv: list[str] | None = None) -> int:
    """Command line for make/image.mk."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("engine", help="start dockerd unless an engine answers")
    prepare_parser = sub.add_parser("prepare", help="engine, debootstrap base image and wheelhouse")
    prepare_parser.add_argument("--arch", choices=ARCHES, default=host_arch(), help="target (default: host)")
    build_parser = sub.add_parser("build", help="build one flavour")
    build_parser.add_argument("--flavour", choices=FLAVOURS, required=True)
    build_parser.add_argument("--arch", choices=ARCHES, default=host_arch(), help="target (default: host)")
    build_parser.add_argument(
        "--tag", help="tag (default dr-serving/predictor:VERSION-FLAVOUR, plus -ARCH for a foreign arch)"
    )
    build_parser.add_argument(
        "--base", default="", help=f"base image (default {LOCAL_BASE}[-ARCH], built if missing)"
    )
    build_parser.add_argument("--model", type=Path, help="model directory to bake in (/opt/dr-serving/model)")
    build_parser.add_argument("--no-wheelhouse", action="store_true", help="install from the package index")
    args = parser.parse_args(argv)
    try:
        how = start_engine()
        if args.command == "engine":
            print(f">> docker engine: {how}")
        elif args.command == "prepare":
            base = ensure_base_image(arch=args.arch)
            print(f">> base image {base}; wheelhouse {ensure_wheelhouse(args.arch)}")
        else:
            base = args.base or ensure_base_image(arch=args.arch)
            wheelhouse = None if args.no_wheelhouse else ensure_wheelhouse(args.arch)
            started = time.monotonic()
            tag = build(
                args.flavour, tag=args.tag, base=base, wheelhouse=wheelhouse, model=args.model, arch=args.arch
            )
            size = subprocess.run(
                ["docker", "image", "inspect", "-f", "{{.Size}}", tag], capture_output=True, text=True
            ).stdout.strip()
            how = f" under {EMULATION_NOTE}" if emulated(args.arch) else ""
            print(
                f">> {tag} ({image_platform(tag)}): {int(size) / 1e6:.0f} MB on disk, "
                f"built in {time.monotonic() - started:.0f} s{how}"
            )
    except ImageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
