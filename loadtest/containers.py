"""The docker runtime of local campaigns: each emulated pool × model × memory profile is a container.

A container of the project's image (``lite`` when the model folder has ``model.tflite``, else ``full``; the
arm64 lite image under QEMU for the ``arm64-emulated`` pool) runs as the chart runs the predictor
(``dr_image.containers.Container``: uid 10001, read-only root, tmpfs ``/tmp``, capabilities dropped, the model
folder mounted read-only at ``/mnt/models`` as KServe's storage initializer leaves it), with ``--memory`` =
the memory profile (no swap, as on a node) and ``--cpus`` = the chart's CPU for that profile, capped at the
pool's cores. Unlike the process runtime, the memory profile is a real cgroup limit: ``ContainerFleet``
samples memory and CPU from the engine's stats API while the campaign runs, reads the kernel's peak, and
reports an OOM kill (``State.OOMKilled``) as a failed target with its profile instead of waiting for it.

Scale to zero is ``docker stop``; the cold request then ``docker start``s the same container (same port) and
is held until it is ready, as Knative's activator holds it. Every container carries the label
``dr-serving.lab=<run>`` and is removed when the campaign ends, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from loadtest.emulation import EmulatedPool
from loadtest.targets import Target

__all__ = [
    "DEFAULT_PULL_MB_PER_S",
    "PRECISION_FLAVOURS",
    "ContainerFleet",
    "DockerUnavailable",
    "LabContainer",
    "chart_profile_cpus",
    "compressed_image_bytes",
    "docker_ready_problem",
    "memory_bytes",
    "remove_run_containers",
    "server_startup_metrics",
]

#: Bandwidth at which the absent image pull is estimated (MB/s, 10⁶ bytes): a same-region registry pull.
DEFAULT_PULL_MB_PER_S = 50.0
#: The image flavour a precision needs: int8 runs in LiteRT only, bfloat16 in TensorFlow only
#: (``serving.backends.choose_kind``); fp32 runs in either.
PRECISION_FLAVOURS = {"int8": "lite", "bf16": "full"}
#: Label every lab container carries (value: the run's id), so a crashed run's leftovers can be found.
LABEL = "dr-serving.lab"
_UNITS = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|k|M|G)?\s*$")
_CHART_VALUES = Path(__file__).resolve().parent.parent / "charts" / "dr-serving" / "values.yaml"


class DockerUnavailable(RuntimeError):
    """The engine or the image the docker runtime needs is missing (the message says how to get it)."""


class ContainerFailed(RuntimeError):
    """A container exited before it was ready (``oom_killed`` when the kernel killed it for memory)."""

    def __init__(self, message: str, *, oom_killed: bool, exit_code: int | None) -> None:
        super().__init__(message)
        self.oom_killed = oom_killed
        self.exit_code = exit_code


def memory_bytes(size: str) -> int:
    """A Kubernetes memory quantity (``1Gi``, ``512Mi``, ``2G``, ``1073741824``) in bytes."""
    match = _SIZE.match(size)
    if match is None:
        raise ValueError(f"Memory profile {size!r} is not a size such as 512Mi, 1Gi or 2G.")
    value = float(match.group(1)) * _UNITS[match.group(2) or ""]
    if value < 6 * 1024**2:
        raise ValueError(f"Memory profile {size!r} is below Docker's minimum of 6 MiB.")
    return int(value)


def chart_profile_cpus(values: Path = _CHART_VALUES) -> dict[str, float]:
    """Memory profile name → CPU cores, from the chart's ``profiles`` (empty when the chart is absent)."""
    import yaml

    try:
        profiles = (yaml.safe_load(values.read_text(encoding="utf-8")) or {}).get("profiles") or {}
    except OSError:
        return {}
    found = {}
    for name, profile in profiles.items():
        cpu = str((profile or {}).get("cpu", ""))
        with contextlib.suppress(ValueError):
            found[str(name)] = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    return found


def docker_ready_problem(images: list[str]) -> str | None:
    """Why the docker runtime cannot run ``images`` here (no engine, a missing image), or ``None``."""
    from dr_image import images as image_tools

    if not image_tools.engine_running():
        return (
            "--runtime docker needs a Docker engine and none answers; start one with 'make docker-engine' "
            "(python -m dr_image.images engine), or use --runtime process."
        )
    missing = [image for image in images if not image_tools.image_exists(image)]
    if missing:
        arm = any(image.endswith(("-arm64", "-arm64-test")) or "-arm64-" in image for image in missing)
        build = "'make image' (and 'make image-arm64' for arm64-emulated)" if arm else "'make image'"
        return f"--runtime docker needs the image(s) {', '.join(missing)}; build them with {build}."
    return None


def compressed_image_bytes(image: str) -> int | None:
    """Bytes a node pulls for ``image`` (``dr_image.layers.compressed_bytes``); ``None`` if not measurable."""
    from dr_image.layers import compressed_bytes

    try:
        return compressed_bytes(image)
    except (OSError, RuntimeError, ValueError, KeyError):
        return None


def _docker(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """A docker CLI command through ``dr_image.containers.docker`` (imported here: the lab image has no
    ``dr_image``, and only the docker runtime gets this far)."""
    from dr_image.containers import docker

    return docker(*args, check=check)


def _docker_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        raise DockerUnavailable(f"The lab reads container stats over a unix socket; DOCKER_HOST is {host!r}.")
    return host.removeprefix("unix://")


def _timestamp(text: str) -> float | None:
    """An RFC 3339 time from ``docker inspect`` (nanoseconds allowed) as Unix seconds; ``None`` if unset."""
    if not text or text.startswith("0001-"):
        return None
    match = re.match(r"^(.*?T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text)
    if match is None:
        return None
    base, fraction, zone = match.groups()
    when = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone)).timestamp()
    return when + (float(f"0.{fraction}") if fraction else 0.0)


@dataclass
class _Life:
    """One run of a container between a start and its stop or exit: the samples taken meanwhile."""

    started: float
    ready: float | None = None
    working_set: list[tuple[float, int]] = field(default_factory=list)
    kernel_peak: int = 0
    cpu_ns: list[tuple[float, int]] = field(default_factory=list)


@dataclass
class LabContainer:
    """One target's container: how it was started, its lives (start → stop/exit) and what it measured."""

    target: Target
    image: str
    flavour: str
    arch: str
    memory_profile: str
    memory_limit: int
    cpus: float
    name: str
    emulated: bool = False
    status: str = "created"
    """``created``, ``starting``, ``running``, ``stopping``, ``stopped`` (scaled to zero), ``oom-killed``,
    ``exited``, ``removed``."""
    exit_code: int | None = None
    lives: list[_Life] = field(default_factory=list)
    startup: list[dict[str, Any]] = field(default_factory=list)
    """Per start: container start, server start-up, model load (seconds)."""

    def inspect(self) -> dict[str, Any]:
        """``docker inspect``'s ``State`` of the container (empty when it is gone)."""
        result = _docker("inspect", "-f", "{{json .State}}", self.name)
        return json.loads(result.stdout) if result.returncode == 0 else {}

    def report(self) -> dict[str, Any]:
        """The container's figures for ``summary.json``: limits, peak and steady memory, CPU, OOM."""
        steady = [
            bytes_ for life in self.lives if life.ready for at, bytes_ in life.working_set if at >= life.ready
        ]
        every = [bytes_ for life in self.lives for _, bytes_ in life.working_set]
        kernel = max((life.kernel_peak for life in self.lives), default=0)
        # The engine's CPU counter is cumulative since the life's cgroup was created: its last sample holds
        # the whole life, start-up included (samples begin only once ``docker start`` returned).
        cpu_seconds = sum(life.cpu_ns[-1][1] / 1e9 for life in self.lives if life.cpu_ns)
        rates = []
        for life in self.lives:
            for (t0, c0), (t1, c1) in zip(life.cpu_ns, life.cpu_ns[1:], strict=False):
                if t1 > t0:
                    rates.append((c1 - c0) / 1e9 / (t1 - t0))
        sampled = sum(life.cpu_ns[-1][0] - life.started for life in self.lives if life.cpu_ns)
        mib = 1024**2
        peak = kernel or max(every, default=0)
        source = "kernel (cgroup max usage)" if kernel else "sampled working set"
        if self.status == "oom-killed":
            peak, source = self.memory_limit, "OOM kill: reached the limit"
        return {
            "target": self.target.name,
            "container": self.name,
            "image": self.image,
            "flavour": self.flavour,
            "arch": self.arch + (" (QEMU emulation, not Graviton performance)" if self.emulated else ""),
            "memory_profile": self.memory_profile,
            "memory_limit_mib": round(self.memory_limit / mib, 1),
            "cpus": self.cpus,
            "status": self.status,
            "oom_killed": self.status == "oom-killed",
            "exit_code": self.exit_code,
            "starts": len(self.lives),
            "samples": len(every),
            "peak_mib": round(peak / mib, 1) if peak else None,
            "peak_source": source,
            "peak_working_set_mib": round(max(every) / mib, 1) if every else None,
            "steady_working_set_mib": round(statistics.median(steady) / mib, 1) if steady else None,
            "peak_pct_of_limit": round(100.0 * peak / self.memory_limit, 1),
            "cpu_seconds": round(cpu_seconds, 3),
            "cpu_mean_cores": round(cpu_seconds / sampled, 3) if sampled > 0 else None,
            "cpu_peak_cores": round(max(rates), 3) if rates else None,
            "startup": list(self.startup),
        }


class _StatsSampler:
    """Samples every running container's memory and CPU from the engine's stats API (one-shot, every
    ``interval`` seconds) in a background thread (a greenlet under gevent)."""

    def __init__(self, containers: list[LabContainer], *, interval: float = 0.5) -> None:
        self.containers = containers
        self.interval = interval
        self.client = httpx.Client(transport=httpx.HTTPTransport(uds=_docker_socket()), timeout=10.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def sample(self, container: LabContainer) -> None:
        """Take one sample of ``container`` into its current life; notice an exit (OOM kill included)."""
        if container.status != "running" or not container.lives:
            return
        try:
            answer = self.client.get(
                f"http://docker/containers/{container.name}/stats",
                params={"stream": "false", "one-shot": "true"},
            )
            data = answer.json() if answer.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            data = {}
        memory = data.get("memory_stats") or {}
        now = time.time()
        life = container.lives[-1]
        if memory.get("usage"):
            stats = memory.get("stats") or {}
            inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0))
            with self.lock:
                # Working set as the kubelet computes it (usage − inactive file cache): what eviction sees.
                life.working_set.append((now, int(memory["usage"]) - int(inactive)))
                life.kernel_peak = max(life.kernel_peak, int(memory.get("max_usage") or 0))
                total = ((data.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
                if total is not None:
                    life.cpu_ns.append((now, int(total)))
        elif not data or not (data.get("pids_stats") or {}).get("current"):
            _settle(container)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            for container in list(self.containers):
                self.sample(container)

    def start(self) -> None:
        """Start sampling in the background."""
        self._thread = threading.Thread(target=self._loop, name="container-stats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (waits for the thread)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        self.client.close()


def _settle(container: LabContainer) -> None:
    """Read why a container that should run is not running: OOM kill, other exit, or still running."""
    if container.status != "running":
        return
    state = container.inspect()
    if not state or state.get("Running") or container.status != "running":
        return
    container.exit_code = state.get("ExitCode")
    container.status = "oom-killed" if state.get("OOMKilled") else "exited"


def _http_ok(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=2.0).status_code == 200
    return False


class ContainerFleet:
    """Containers for every model × emulated pool (each pool already carrying its memory profile)."""

    runtime = "docker"

    def __init__(
        self,
        models: dict[str, Path],
        pools: list[EmulatedPool],
        *,
        image_suffix: str = "",
        flavour: str = "auto",
        ready_timeout: float = 180.0,
        log_dir: str | Path | None = None,
        default_profile: str = "2Gi",
        pull_mb_per_s: float = DEFAULT_PULL_MB_PER_S,
        precision: str = "fp32",
        threads: int = 0,
        run_id: str = "",
    ) -> None:
        from dr_image import images as image_tools

        if not models or not pools:
            raise ValueError("A container fleet needs at least one model directory and one pool.")
        self.models = {name: Path(path).resolve() for name, path in models.items()}
        self.pools = pools
        self.ready_timeout = ready_timeout
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.pull_mb_per_s = pull_mb_per_s
        self.precision = precision
        #: ``DR_THREADS`` of every predictor; 0 leaves it unset (sized by the container's CPU limit).
        self.threads = threads
        #: Every container's ``dr-serving.lab`` label value (``new_run_id`` unless given).
        self.run_id = run_id or new_run_id()
        self.containers: dict[str, LabContainer] = {}
        self.failed: list[LabContainer] = []
        self.targets: list[Target] = []
        self.startup_seconds: dict[str, float] = {}
        self._options: dict[str, tuple[list[str], list[str]]] = {}
        self._sampler: _StatsSampler | None = None
        chart_cpus = chart_profile_cpus()
        self._planned: list[tuple[EmulatedPool, str, LabContainer]] = []
        for pool in pools:
            for model, path in self.models.items():
                chosen = flavour
                if chosen == "auto":
                    lite = (path / "model.tflite").is_file()
                    chosen = PRECISION_FLAVOURS.get(precision, "lite" if lite else "full")
                if pool.arch != image_tools.host_arch() and chosen != "lite":
                    raise ValueError(
                        f"Pool {pool.name!r} runs the arm64 lite image only; {model!r} has no model.tflite "
                        f"(run: dr-serving model convert {path})."
                    )
                profile = pool.memory_profile or default_profile
                cores = float(len(pool.cpus))
                cpus = min(chart_cpus.get(profile, cores), cores)
                name = f"drlab-{self.run_id}-{len(self._planned)}"
                target = Target(
                    model=model,
                    url="http://127.0.0.1:1",  # replaced once the port is known
                    pool=pool.name,
                    mode="local",
                    arch=pool.arch,
                    instance_type=pool.stands_for,
                    memory_profile=profile,
                    price_per_hour=pool.price_per_hour,
                    extra={"emulation": "true", "runtime": "docker", "container": name},
                )
                container = LabContainer(
                    target=target,
                    image=image_tools.arch_tag(chosen, pool.arch, suffix=image_suffix),
                    flavour=chosen,
                    arch=pool.arch,
                    memory_profile=profile,
                    memory_limit=memory_bytes(profile),
                    cpus=cpus,
                    name=name,
                    emulated=image_tools.emulated(pool.arch),
                )
                self._planned.append((pool, model, container))

    @property
    def images(self) -> list[str]:
        """The images the fleet runs (one per flavour and arch)."""
        return sorted({container.image for _, _, container in self._planned})

    def check(self) -> None:
        """``DockerUnavailable`` naming ``make image`` / the engine when something is missing."""
        problem = docker_ready_problem(self.images)
        if problem:
            raise DockerUnavailable(problem)

    def container_env(self, pool: EmulatedPool, model: str, container: LabContainer) -> dict[str, str]:
        """The predictor's environment in ``container``: the pool's labels, the precision, the threads.

        As in the chart, nothing sets thread variables: the predictor sizes its threads by the container's CPU
        limit (``serving.cpus``) unless ``threads`` asks for a count (``DR_THREADS``).
        """
        env = pool.env(model=model)
        env.update(
            DR_MEMORY_PROFILE=container.memory_profile,
            DR_NODE_NAME="docker-host",
            DR_POD_NAME=container.name,
            DR_PRECISION=self.precision,
        )
        if self.threads:
            env["DR_THREADS"] = str(self.threads)
        return env

    def _create(self, pool: EmulatedPool, model: str, container: LabContainer) -> None:
        from dr_image.containers import Container

        chart = Container(
            image=container.image,
            flavour=container.flavour,
            arch=container.arch,
            model_name=model,
            model_mount=self.models[model],
            env=self.container_env(pool, model, container),
            profile={
                "memory": str(container.memory_limit),
                "cpus": f"{container.cpus:g}",
                "name": container.memory_profile,
            },
            name=container.name,
        )
        options, http_port = chart.run_options()
        options += ["--label", f"{LABEL}={self.run_id}", "--cpuset-cpus", ",".join(map(str, pool.cpus))]
        _docker("create", *options, container.image, *chart.args(http_port), check=True)
        container.target = Target(**{**container.target.to_dict(), "url": chart.url})

    def _start(self, container: LabContainer, *, timeout: float) -> dict[str, Any]:
        """``docker start`` and wait until ready; returns the start's marks (Unix times and seconds)."""
        requested = time.time()
        with self._lock():
            container.lives.append(_Life(started=requested))
            container.status = "starting"  # not sampled (nor settled) until the engine says it started
        started = _docker("start", container.name)
        with self._lock():
            container.status = "running" if started.returncode == 0 else "exited"
        if started.returncode != 0:
            raise ContainerFailed(
                f"docker start {container.name} failed: {started.stderr.strip()}",
                oom_killed=False,
                exit_code=None,
            )
        deadline = time.monotonic() + timeout
        base = container.target.base_url
        routes = (f"{base}/v2/health/ready", f"{base}/v1/models/{container.target.model}")
        while not all(_http_ok(route) for route in routes):
            state = container.inspect()
            if not state.get("Running"):
                container.exit_code = state.get("ExitCode")
                container.status = "oom-killed" if state.get("OOMKilled") else "exited"
                what = "was OOM-killed (memory limit)" if state.get("OOMKilled") else "exited"
                raise ContainerFailed(
                    f"{container.target.name} {what} before ready at {container.memory_profile} "
                    f"(exit code {state.get('ExitCode')}): {self._log_tail(container)}",
                    oom_killed=bool(state.get("OOMKilled")),
                    exit_code=state.get("ExitCode"),
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{container.target.name} not ready within {timeout:g} s.")
            time.sleep(0.05)
        ready = time.time()
        container.lives[-1].ready = ready
        return {"requested": requested, "ready_seen": ready}

    def startup_marks(self, target: Target, started: dict[str, float]) -> dict[str, Any]:
        """Where a start's time went (read after it, so a held request is sent the moment it is ready): the
        engine's ``State.StartedAt`` and the predictor's start-up metrics, beside ``_start``'s own marks."""
        container = self.container_of(target)
        requested, ready = started["requested"], started["ready_seen"]
        container_started = _timestamp(container.inspect().get("StartedAt", ""))
        server = _server_startup(target.base_url)
        marks = {
            "container_start_s": round(container_started - requested, 3) if container_started else None,
            "server_startup_s": server.get("dr_startup_seconds"),
            "model_load_s": server.get("dr_model_load_seconds"),
            "request_to_ready_s": round(ready - requested, 3),
        }
        container.startup.append(marks)
        return marks

    def _lock(self) -> Any:
        return self._sampler.lock if self._sampler is not None else contextlib.nullcontext()

    def _log_tail(self, container: LabContainer) -> str:
        logs = _docker("logs", "--tail", "5", container.name)
        lines = (logs.stdout + logs.stderr).strip().splitlines()
        return lines[-1] if lines else "(no output)"

    def start(self, *, progress: Any = None) -> list[Target]:
        """Create every container and start them one after the other (they would compete for cores); a
        container that is OOM-killed or exits before ready becomes a failed target, the others go on."""
        self.check()
        self._sampler = _StatsSampler([c for _, _, c in self._planned])
        self._sampler.start()
        for pool, model, container in self._planned:
            self._create(pool, model, container)
            self.containers[container.target.name] = container
            try:
                marks = self.startup_marks(
                    container.target, self._start(container, timeout=self.ready_timeout)
                )
            except (ContainerFailed, TimeoutError) as exc:
                self.failed.append(container)
                if progress is not None:
                    progress(f"FAILED: {exc}")
                self._save_log(container)
                continue
            self.targets.append(container.target)
            self.startup_seconds[container.target.name] = marks["request_to_ready_s"]
            if progress is not None:
                progress(
                    f"{container.target.name} ready in {marks['request_to_ready_s']:.1f} s at "
                    f"{container.target.url} ({container.image}, --memory {container.memory_profile}, "
                    f"--cpus {container.cpus:g}{', QEMU emulation' if container.emulated else ''})"
                )
        if not self.targets:
            reasons = "; ".join(f"{c.target.name}: {c.status}" for c in self.failed)
            raise RuntimeError(f"No container became ready ({reasons}).")
        return self.targets

    def container_of(self, target: Target) -> LabContainer:
        """The container serving ``target``."""
        return self.containers[target.name]

    def pool_of(self, target: Target) -> EmulatedPool:
        """The emulated pool a target runs on."""
        return next(pool for pool in self.pools if pool.name == target.pool)

    def stop_target(self, target: Target) -> None:
        """Scale ``target`` to zero: ``docker stop`` (SIGTERM, then SIGKILL after 30 s)."""
        container = self.container_of(target)
        if self._sampler is not None:
            self._sampler.sample(container)
        with self._lock():
            container.status = "stopping"
        _docker("stop", "--time", "30", container.name)
        with self._lock():
            container.status = "stopped"

    def cold_start(self, target: Target, *, timeout: float) -> dict[str, float]:
        """Start ``target``'s stopped container and wait until ready; returns when it was asked and seen
        ready (Unix times; ``startup_marks`` splits it once the held request is answered)."""
        return self._start(self.container_of(target), timeout=timeout)

    def pull_estimate(self, image: str) -> dict[str, Any]:
        """The absent image pull, estimated from the compressed image size at ``pull_mb_per_s``."""
        size = compressed_image_bytes(image)
        if size is None:
            return {"image_pull": f"{image}: compressed size unknown, no estimate"}
        return {
            "image_pull": f"{image} estimated as {size / 1e6:.0f} MB compressed (gzip of its layers) at "
            f"{self.pull_mb_per_s:g} MB/s",
            "image_compressed_mb": round(size / 1e6, 1),
            "image_pull_estimate_s": round(size / 1e6 / self.pull_mb_per_s, 3),
        }

    def report(self) -> list[dict[str, Any]]:
        """Every container's figures (failed ones included), sampled once more first."""
        for container in self.containers.values():
            if self._sampler is not None:
                self._sampler.sample(container)
            if container.status == "running":
                _settle(container)
        return [container.report() for container in self.containers.values()]

    def _save_log(self, container: LabContainer) -> None:
        if self.log_dir is None:
            return
        logs = _docker("logs", container.name)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / f"container-{container.target.model}-{container.target.pool}.log"
        path.write_text(logs.stdout + logs.stderr, encoding="utf-8")

    def stop(self) -> None:
        """Stop sampling, keep each container's log in the run folder, remove every container; safe twice."""
        if self._sampler is not None:
            self._sampler.stop()
        for container in self.containers.values():
            if container.status == "removed":
                continue
            self._save_log(container)
            container.status = (
                "removed" if container.status in {"running", "stopped", "created"} else container.status
            )
        remove_run_containers(self.run_id)

    def __enter__(self) -> ContainerFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ContainerFleet(models={sorted(self.models)!r}, pools={[p.name for p in self.pools]!r})"


def new_run_id() -> str:
    """A fresh value for the ``dr-serving.lab`` label of one run's containers."""
    return uuid.uuid4().hex[:8]


def remove_run_containers(run_id: str | None = None, *, attempts: int = 3) -> list[str]:
    """Force-remove the lab's containers (of one run, or of every run); returns the ids it found.

    Lists again after each removal and tries again (``attempts`` in all), so a removal the engine refused is
    retried; ``RuntimeError`` names the containers still there after the last attempt and the engine's reason.
    """
    selector = f"label={LABEL}={run_id}" if run_id else f"label={LABEL}"
    removed: list[str] = []
    problem = ""
    for attempt in range(attempts):
        ids = _docker("ps", "-aq", "--filter", selector).stdout.split()
        if not ids:
            return removed
        if attempt:
            time.sleep(1.0)
        result = _docker("rm", "--force", *ids)
        removed += [cid for cid in ids if cid not in removed]
        problem = result.stderr.strip()
    left = _docker("ps", "-aq", "--filter", selector).stdout.split()
    if left:
        reason = problem or "the engine gave no reason"
        raise RuntimeError(f"Could not remove the lab container(s) {' '.join(left)}: {reason}")
    return removed


def server_startup_metrics(text: str) -> dict[str, float]:
    """``dr_model_load_seconds`` and ``dr_startup_seconds`` from a ``/metrics`` page (first samples)."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name in {"dr_model_load_seconds", "dr_startup_seconds"} and family.samples:
            found[family.name] = float(family.samples[0].value)
    return found


def _server_startup(base_url: str) -> dict[str, float]:
    """The predictor's start-up figures from its ``/metrics`` (empty when it does not answer)."""
    try:
        return server_startup_metrics(httpx.get(f"{base_url}/metrics", timeout=10.0).text)
    except httpx.HTTPError:
        return {}
