"""Local emulation of node types: predictors with different CPU sets standing in for node pools.

There is no cluster here, so a "pool" is played on this machine's cores and labelled (``DR_POOL``,
``DR_INSTANCE_TYPE`` …) as the instance type it stands in for. Two runtimes play it: ``process`` (a
``serving.launcher.PredictorProcess`` pinned to the pool's cores; memory profiles are labels only, since
TensorFlow reserves far more address space than it uses and an ``RLIMIT_AS`` cap would measure the allocator)
and ``docker`` (``loadtest.containers``: a container of the project's image with real cgroup memory and CPU
limits). The ``arm64-emulated`` pool (docker only) runs the arm64 lite image under QEMU: functional runs,
never performance, and priced as nothing. Every output of an emulated run says ``ENVIRONMENT``."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadtest.targets import Target
from serving.metrics import normalise_arch

if TYPE_CHECKING:
    from serving.launcher import PredictorProcess

__all__ = [
    "ALL_POOLS",
    "ARM64_EMULATED",
    "DEFAULT_POOLS",
    "EMULATED_POOLS",
    "ENVIRONMENT",
    "QEMU_NOTE",
    "RUNTIMES",
    "UNPRICED",
    "EmulatedPool",
    "LocalFleet",
    "default_pool_names",
    "machine_arch",
]

#: The ``environment`` field of every output made without a cluster.
ENVIRONMENT = f"emulation ({os.cpu_count()}-core machine, no cluster)"
#: How a local campaign runs its predictors: processes pinned to cores, or containers with cgroup limits.
RUNTIMES = ("process", "docker")
#: The pool that runs the arm64 lite image under QEMU (docker runtime, where the host is not arm64).
ARM64_EMULATED = "arm64-emulated"
#: Said wherever the arm64-emulated pool appears.
QEMU_NOTE = "QEMU emulation, not Graviton performance"
#: The instance type of a pool priced as nothing (the report prices no request on it).
UNPRICED = "none (QEMU emulation, not priced)"


def machine_arch() -> str:
    """This machine's CPU architecture in Kubernetes spelling (``amd64``, ``arm64``)."""
    return normalise_arch(platform.machine())


@dataclass(frozen=True, kw_only=True)
class EmulatedPool:
    """A node pool played by a predictor pinned to ``cpus``, priced as the instance type it stands for."""

    name: str
    cpus: tuple[int, ...]
    stands_for: str
    memory_profile: str | None = None
    arch: str = field(default_factory=lambda: machine_arch())
    """The architecture its predictor runs (``arm64`` under QEMU for ``arm64-emulated``)."""
    docker_only: bool = False
    """Only the docker runtime can play it (the arm64 image)."""
    price_per_hour: float | None = None
    """Set on the targets (0 for a pool priced as nothing)."""

    def with_memory_profile(self, size: str) -> EmulatedPool:
        """The same pool labelled with a memory size (a label only: see the module docstring)."""
        return replace(self, name=f"{self.name}-{size}", memory_profile=size)

    def env(self, *, model: str) -> dict[str, str]:
        """Environment variables for the predictor: its labels (docs/architecture.md).

        No thread variables: pinned to ``cpus``, the predictor sizes its threads by them (``serving.cpus``).
        """
        env = {
            "DR_POOL": self.name,
            "DR_ARCH": self.arch,
            "DR_INSTANCE_TYPE": self.stands_for,
            "DR_MODE": "local",
        }
        if self.memory_profile:
            env["DR_MEMORY_PROFILE"] = self.memory_profile
        return env


def _default_pools() -> dict[str, EmulatedPool]:
    cores = tuple(sorted(os.sched_getaffinity(0)))
    arch = "x86" if machine_arch() == "amd64" else machine_arch()
    pools = {
        f"{arch}-{len(cores)}cpu": EmulatedPool(
            name=f"{arch}-{len(cores)}cpu", cpus=cores, stands_for="m5.xlarge"
        ),
    }
    if len(cores) > 1:
        pools[f"{arch}-1cpu"] = EmulatedPool(name=f"{arch}-1cpu", cpus=cores[-1:], stands_for="m4.xlarge")
    return pools


def _emulated_pools() -> dict[str, EmulatedPool]:
    if machine_arch() == "arm64":
        return {}
    cores = tuple(sorted(os.sched_getaffinity(0)))
    return {
        ARM64_EMULATED: EmulatedPool(
            name=ARM64_EMULATED,
            cpus=cores,
            stands_for=UNPRICED,
            arch="arm64",
            docker_only=True,
            price_per_hour=0.0,
        )
    }


#: Pools a local campaign uses by default: all cores (priced as m5.xlarge) and one core (priced as m4.xlarge).
DEFAULT_POOLS = _default_pools()
#: Pools that join only when named (``--pools``): ``arm64-emulated`` (docker runtime, QEMU, priced as nothing)
#: on a host that is not arm64.
EMULATED_POOLS = _emulated_pools()
#: Every pool by name.
ALL_POOLS = {**DEFAULT_POOLS, **EMULATED_POOLS}


def default_pool_names() -> list[str]:
    """The pools a local campaign uses when none is named (never the emulated arm64)."""
    return list(DEFAULT_POOLS)


class LocalFleet:
    """Predictor processes for every model × emulated pool, with the targets that reach them."""

    runtime = "process"

    def __init__(
        self,
        models: dict[str, Path],
        pools: list[EmulatedPool],
        *,
        ready_timeout: float = 180.0,
        extra_args: tuple[str, ...] = (),
        log_dir: str | Path | None = None,
    ) -> None:
        if not models:
            raise ValueError("A local fleet needs at least one model directory.")
        if not pools:
            raise ValueError("A local fleet needs at least one emulated pool.")
        for name, path in models.items():
            if not Path(path).is_dir():
                raise ValueError(f"Model directory {str(path)!r} for model {name!r} does not exist.")
        self.models = {name: Path(path) for name, path in models.items()}
        self.pools = pools
        self.ready_timeout = ready_timeout
        self.extra_args = extra_args
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.processes: dict[str, PredictorProcess] = {}
        self.targets: list[Target] = []
        self.startup_seconds: dict[str, float] = {}

    def _process(self, model: str, pool: EmulatedPool, *, port: int | None = None) -> PredictorProcess:
        from serving.launcher import PredictorProcess

        log_path = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log_path = self.log_dir / f"predictor-{model}-{pool.name}.log"
        return PredictorProcess(
            self.models[model],
            model_name=model,
            port=port,
            env=pool.env(model=model),
            cpus=set(pool.cpus),
            extra_args=self.extra_args,
            log_path=log_path,
        )

    def start(self, *, progress: Any = None) -> list[Target]:
        """Start every predictor, one after the other so they do not compete for cores, and wait for each."""
        for pool in self.pools:
            for model in self.models:
                process = self._process(model, pool)
                process.start()
                try:
                    seconds = process.wait_ready(self.ready_timeout)
                except Exception:
                    process.stop()
                    self.stop()
                    raise
                target = Target(
                    model=model,
                    url=process.url,
                    pool=pool.name,
                    mode="local",
                    arch=machine_arch(),
                    instance_type=pool.stands_for,
                    memory_profile=pool.memory_profile,
                    extra={"emulation": "true", "cpus": ",".join(map(str, pool.cpus))},
                )
                self.processes[target.name] = process
                self.targets.append(target)
                self.startup_seconds[target.name] = seconds
                if progress is not None:
                    progress(f"{target.name} ready in {seconds:.1f} s at {process.url}")
        return self.targets

    def pool_of(self, target: Target) -> EmulatedPool:
        """The emulated pool a target runs on."""
        return next(pool for pool in self.pools if pool.name == target.pool)

    def stop_target(self, target: Target) -> None:
        """Stop one target's predictor (the local stand-in for "scaled to zero")."""
        self.processes[target.name].stop()

    def restart_target(self, target: Target) -> PredictorProcess:
        """Start a fresh predictor for ``target`` on the same port (without waiting for it); returns it."""
        port = int(target.base_url.rsplit(":", 1)[1])
        process = self._process(target.model, self.pool_of(target), port=port)
        process.start()
        self.processes[target.name] = process
        return process

    def stop(self) -> None:
        """Stop every predictor; safe to call twice."""
        for process in self.processes.values():
            process.stop()

    def __enter__(self) -> LocalFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalFleet(models={sorted(self.models)!r}, pools={[p.name for p in self.pools]!r})"
