"""``CampaignSpec``: the one contract between the command line, the demo and the campaign child process.

The parent builds it (``from_args`` is the only reader of the parsed ``argparse.Namespace``; the demo builds
one directly), checks it (``check``: exit code 2 before any child starts), and hands it to
``python -m loadtest.run`` as JSON (``to_json`` / ``from_json`` round-trip exactly). Locust-free.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loadtest.scenarios.options import MemoryOptions, ScenarioOptions, UsageError, options_from_dict

if TYPE_CHECKING:
    import argparse

__all__ = [
    "DEFAULT_MODEL_DIR",
    "CampaignSpec",
    "GeneratorSpec",
    "ImageSpec",
    "LocalTargets",
    "PrometheusSpec",
    "ReportSpec",
    "TargetFile",
    "UrlTarget",
    "parse_model_dirs",
]

#: The model ``--local`` serves when no ``--model-dir`` is given.
DEFAULT_MODEL_DIR = Path("models") / "mobilenet"


def parse_model_dirs(items: list[str] | None) -> dict[str, Path]:
    """``[NAME=]DIR`` items → model name → folder (the name defaults to the folder's name)."""
    models: dict[str, Path] = {}
    for item in items or [f"mobilenet={DEFAULT_MODEL_DIR}"]:
        name, _, path = item.partition("=")
        if not path:
            name, path = Path(item).name, item
        models[name] = Path(path)
    return models


@dataclass(frozen=True, kw_only=True)
class LocalTargets:
    """``--local``: emulate node pools with local predictor processes or containers (``runtime``)."""

    kind: Literal["local"] = "local"
    models: dict[str, Path] = field(default_factory=lambda: {"mobilenet": DEFAULT_MODEL_DIR})
    """Model name → model folder."""
    pools: tuple[str, ...] = ()
    """Emulated pools (``loadtest.emulation.ALL_POOLS`` names); empty = ``DEFAULT_POOLS``."""
    memory_profiles: tuple[str, ...] = ()
    """Memory sizes per pool (priced as serverless): labels for processes, cgroup limits for containers."""
    runtime: Literal["process", "docker"] = "process"
    """``process``: predictors pinned to cores; ``docker``: containers of the project's image."""
    image_suffix: str = ""
    """Docker runtime: tag suffix of the images, e.g. ``test`` for ``…:<version>-lite-test``."""
    flavour: Literal["auto", "lite", "full"] = "auto"
    """Docker runtime: image flavour (``auto``: lite when the model folder has ``model.tflite``)."""
    pull_mb_per_s: float = 50.0
    """Docker runtime: bandwidth of the estimated image pull of a cold start (MB/s)."""
    backend: Literal["auto", "savedmodel", "litert"] = "auto"
    """Process runtime: the predictors' ``--backend`` (``auto``: the SavedModel where TensorFlow is installed;
    containers run their image's backend, chosen with ``flavour``)."""
    precision: Literal["fp32", "int8", "bf16"] = "fp32"
    """The predictors' ``--precision`` (containers: ``DR_PRECISION``)."""
    threads: int = 0
    """The predictors' ``--threads`` (containers: ``DR_THREADS``); 0: each sizes itself by its CPUs (the
    pinned cores of a process, the CPU limit of a container), as in a pod."""
    run_id: str = ""
    """Docker runtime: the ``dr-serving.lab`` label of the run's containers (empty: the fleet draws one). The
    launching process sets it, so it can remove them however the campaign ends."""

    def check(self) -> None:
        """Known pools for the runtime, valid memory sizes, a thread count and existing model folders."""
        from loadtest.emulation import ALL_POOLS
        from serving.cpus import MAX_THREADS

        if not 0 <= self.threads <= MAX_THREADS:
            raise UsageError(f"--threads expects 0 (automatic) to {MAX_THREADS}, got {self.threads!r}.")
        unknown = [p for p in self.pools if p not in ALL_POOLS]
        if unknown:
            raise UsageError(f"Unknown emulated pool(s) {unknown!r}; choose from {sorted(ALL_POOLS)!r}.")
        docker_only = [p for p in self.pools if ALL_POOLS[p].docker_only]
        if docker_only and self.runtime != "docker":
            raise UsageError(f"Pool(s) {docker_only!r} run the arm64 image: they need --runtime docker.")
        if self.runtime == "docker":
            from loadtest.containers import memory_bytes

            for size in self.memory_profiles:
                try:
                    memory_bytes(size)
                except ValueError as exc:
                    raise UsageError(str(exc)) from exc
            if self.pull_mb_per_s <= 0:
                raise UsageError(f"--pull-bandwidth expects MB/s > 0, got {self.pull_mb_per_s!r}.")
        for path in self.models.values():
            if not path.is_dir():
                raise UsageError(
                    f"Model directory {str(path)!r} does not exist; build one with "
                    f"'dr-serving model build --arch mobilenet --out {path}' or pass --model-dir."
                )
        self._check_backend()

    def _check_backend(self) -> None:
        """The backend and precision can serve every model (what ``serve`` would refuse at start)."""
        from serving.backends import choose_kind, tflite_filename

        if self.runtime == "docker":
            if self.backend != "auto":
                raise UsageError(
                    f"--backend {self.backend} applies to predictor processes; a container serves its "
                    "image's backend: choose it with --image-flavour lite (LiteRT) or full (TensorFlow)."
                )
            from loadtest.containers import PRECISION_FLAVOURS

            wanted = PRECISION_FLAVOURS.get(self.precision)
            if wanted is not None and self.flavour not in ("auto", wanted):
                raise UsageError(
                    f"--precision {self.precision} runs in the {wanted} image, not --image-flavour "
                    f"{self.flavour}."
                )
            return
        for name, path in self.models.items():
            try:
                kind = choose_kind(path, kind=self.backend, precision=self.precision)
            except ValueError as exc:
                raise UsageError(str(exc)) from exc
            needed = tflite_filename(self.precision)
            if kind == "litert" and not (path / needed).is_file():
                how = "--quantize int8 " if self.precision == "int8" else ""
                raise UsageError(
                    f"Model {name!r} has no {needed} for --backend litert --precision {self.precision}; "
                    f"make it with: dr-serving model convert {how}{path}"
                )

    def serve_args(self) -> tuple[str, ...]:
        """The flags every local predictor process gets (``dr-serving serve``)."""
        threads = ("--threads", str(self.threads)) if self.threads else ()
        return ("--backend", self.backend, "--precision", self.precision, *threads)


@dataclass(frozen=True, kw_only=True)
class UrlTarget:
    """``--url``: one predictor already running (no process control)."""

    kind: Literal["url"] = "url"
    url: str
    model: str = "mobilenet"

    def check(self) -> None:
        """A valid target URL and model name."""
        from loadtest.targets import Target

        try:
            Target(model=self.model, url=self.url)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc


@dataclass(frozen=True, kw_only=True)
class TargetFile:
    """``--targets FILE``: a YAML/JSON target list (e.g. from ``dr-serving deploy endpoints``)."""

    kind: Literal["file"] = "file"
    path: Path

    def check(self) -> None:
        """A readable, valid target file."""
        from loadtest.targets import load_targets

        try:
            load_targets(self.path)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc


Targets = LocalTargets | UrlTarget | TargetFile
_TARGET_KINDS: dict[str, type[Targets]] = {"local": LocalTargets, "url": UrlTarget, "file": TargetFile}


@dataclass(frozen=True, kw_only=True)
class ImageSpec:
    """The fundus photos sent: a folder of JPEG/PNG files, or synthetic ones."""

    folder: Path | None = None
    count: int = 10
    """Synthetic images to cycle through."""
    size: int = 512
    """Synthetic image size in pixels."""


@dataclass(frozen=True, kw_only=True)
class PrometheusSpec:
    """Whether to start a local Prometheus, or which one to query instead (cluster)."""

    start: bool = True
    url: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReportSpec:
    """Whether to write ``report.md``/``report.html`` and print its summary tables."""

    write: bool = True
    print: bool = True


@dataclass(frozen=True, kw_only=True)
class GeneratorSpec:
    """Where a distributed campaign's workers run: started here on 127.0.0.1, or pods that connect to it."""

    external: bool = False
    """Do not start workers: wait for ``workers`` to connect (the cluster's worker Deployment)."""
    bind: str = "127.0.0.1"
    """Address the master listens on (``0.0.0.0`` in the master pod)."""
    port: int = 0
    """Port the master listens on (0: a free one; Locust's default is 5557)."""
    pool: str | None = None
    """Node pool the workers run on (shown in the report)."""


@dataclass(frozen=True, kw_only=True)
class CampaignSpec:
    """One campaign: the scenario and its options, the targets, what is sent, and what is written."""

    scenario: ScenarioOptions
    targets: Targets = field(default_factory=LocalTargets)
    protocol: Literal["v1", "v2", "v2-binary", "sagemaker"] = "v1"
    images: ImageSpec = field(default_factory=ImageSpec)
    seed: int = 0
    """Seed of the synthetic images and random shapes."""
    out: Path = Path("runs")
    """Folder for run folders."""
    prometheus: PrometheusSpec = field(default_factory=PrometheusSpec)
    report: ReportSpec = field(default_factory=ReportSpec)
    quiet: bool = False
    """No progress output."""
    workers: int = 0
    """Locust worker processes (0: one process runs the users; N: a master and N workers, Locust's own
    distributed mode; see ``loadtest.distributed``)."""
    generator: GeneratorSpec = field(default_factory=lambda: GeneratorSpec())
    """Where the workers come from (local processes or pods that connect to the master)."""

    @property
    def scenario_name(self) -> str:
        """The scenario's name, e.g. ``warm-up``."""
        return self.scenario.name

    @classmethod
    def from_args(cls, ns: argparse.Namespace) -> CampaignSpec:
        """The spec of ``dr-serving lab run SCENARIO ...`` (the one place that reads those flags)."""
        from loadtest.emulation import default_pool_names

        targets: Targets
        if ns.targets:
            targets = TargetFile(path=Path(ns.targets))
        elif ns.url:
            targets = UrlTarget(url=ns.url, model=ns.model)
        else:
            memory = ns.scenario == "memory"
            targets = LocalTargets(
                models=parse_model_dirs(
                    ns.model_dir or (list(MemoryOptions.DEFAULT_MODELS) if memory else None)
                ),
                pools=tuple(ns.pools or (default_pool_names()[:1] if memory else ())),
                memory_profiles=tuple(
                    ns.memory_profiles or (MemoryOptions.DEFAULT_PROFILES if memory else ())
                ),
                runtime=ns.runtime or ("docker" if memory else "process"),
                image_suffix=ns.image_suffix,
                flavour=ns.image_flavour,
                pull_mb_per_s=ns.pull_bandwidth,
                backend=ns.backend,
                precision=ns.precision,
                threads=ns.threads,
            )
        return cls(
            scenario=options_from_dict(ns.scenario, vars(ns)),
            targets=targets,
            protocol=ns.protocol,
            images=ImageSpec(
                folder=Path(ns.images) if ns.images else None, count=ns.image_count, size=ns.image_size
            ),
            seed=ns.seed,
            out=Path(ns.out),
            prometheus=PrometheusSpec(start=ns.prometheus, url=ns.prometheus_url),
            report=ReportSpec(write=ns.report, print=not ns.quiet),
            quiet=ns.quiet,
            workers=ns.workers,
            generator=GeneratorSpec(
                external=ns.external_workers, bind=ns.master_bind, port=ns.master_port, pool=ns.generator_pool
            ),
        )

    def check(self) -> None:
        """Reject what cannot work before any child starts (``UsageError``: exit code 2)."""
        self.scenario.validate()
        self.targets.check()
        if isinstance(self.scenario, MemoryOptions) and (
            not isinstance(self.targets, LocalTargets) or self.targets.runtime != "docker"
        ):
            raise UsageError(
                "The memory scenario measures real memory limits: it needs --local --runtime docker "
                "(process memory profiles are labels only)."
            )
        if self.images.folder is not None and not self.images.folder.is_dir():
            raise UsageError(f"Image folder {str(self.images.folder)!r} does not exist.")
        if self.workers < 0:
            raise UsageError(f"--workers must be 0 (one process) or more, got {self.workers}.")
        if self.generator.external and self.workers == 0:
            raise UsageError("External workers need a worker count (--workers N).")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (paths as strings, the scenario's name under ``scenario.name``)."""
        data = _plain(dataclasses.asdict(self))
        data["scenario"] = {"name": self.scenario_name, **data["scenario"]}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CampaignSpec:
        """The inverse of ``to_dict``."""
        scenario = dict(data["scenario"])
        targets = dict(data["targets"])
        kind = _TARGET_KINDS[targets["kind"]]
        if kind is LocalTargets:
            targets["models"] = {name: Path(path) for name, path in targets["models"].items()}
            targets["pools"] = tuple(targets["pools"])
            targets["memory_profiles"] = tuple(targets["memory_profiles"])
        elif kind is TargetFile:
            targets["path"] = Path(targets["path"])
        images = dict(data["images"])
        images["folder"] = Path(images["folder"]) if images["folder"] is not None else None
        return cls(
            scenario=options_from_dict(scenario.pop("name"), scenario),
            targets=kind(**targets),
            protocol=data["protocol"],
            images=ImageSpec(**images),
            seed=data["seed"],
            out=Path(data["out"]),
            prometheus=PrometheusSpec(**data["prometheus"]),
            report=ReportSpec(**data["report"]),
            quiet=data["quiet"],
            workers=data.get("workers", 0),
            generator=GeneratorSpec(**data.get("generator", {})),
        )

    def to_json(self) -> str:
        """``to_dict`` as JSON text."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CampaignSpec:
        """The inverse of ``to_json``."""
        return cls.from_dict(json.loads(text))


def _plain(value: Any) -> Any:
    """Paths → strings and tuples → lists, recursively (what JSON holds)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value
