"""The dr-serving Helm release, handled with ``pyhelm3`` and the project's ``bin/helm`` (``make tools``).

``ReleaseManager`` renders the chart (``template``), installs or upgrades it (``install_or_upgrade``) and
removes it (``uninstall``). Values files are merged here with Helm's own rule (maps merge key by key,
anything else is replaced), because pyhelm3's ``mergeconcat`` would concatenate lists such as tolerations.
pyhelm3's ``disable_validation=True`` is broken (it adds the flag letter by letter), so it is never used.
"""

from __future__ import annotations

import asyncio
import copy
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pyhelm3 import Client
from pyhelm3.errors import Error as HelmError

__all__ = ["CHART_DIR", "ReleaseInfo", "ReleaseManager", "ReleaseSpec", "default_helm", "merge_values"]

ROOT = Path(__file__).resolve().parent.parent
CHART_DIR = ROOT / "charts" / "dr-serving"


def default_helm() -> str:
    """The helm executable: the project's ``bin/helm`` when installed, else ``helm`` on PATH."""
    local = ROOT / "bin" / "helm"
    if local.is_file():
        return str(local)
    found = shutil.which("helm")
    if not found:
        raise FileNotFoundError(f"No helm binary at {local} or on PATH; run: make tools")
    return found


def merge_values(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge values like ``helm -f a -f b``: later maps win key by key, lists and scalars are replaced."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
                merged[key] = merge_values(merged[key], value)
            else:
                merged[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)
    return merged


@dataclass(frozen=True, kw_only=True)
class ReleaseSpec:
    """What to deploy: release name, namespace, chart folder, values files in order, then inline values."""

    name: str = "dr-serving"
    namespace: str = "dr-serving"
    chart: Path = CHART_DIR
    values_files: tuple[Path, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)

    def merged_values(self) -> dict[str, Any]:
        """The values files and inline values merged in order, as ``helm -f ... --set ...`` would see them."""
        layers: list[Mapping[str, Any]] = []
        for path in self.values_files:
            try:
                loaded = yaml.safe_load(Path(path).read_text()) or {}
            except FileNotFoundError as exc:
                raise FileNotFoundError(f"Values file {str(path)!r} does not exist.") from exc
            if not isinstance(loaded, Mapping):
                raise ValueError(
                    f"Values file {str(path)!r} must hold a mapping, got {type(loaded).__name__}."
                )
            layers.append(loaded)
        return merge_values(*layers, self.values)


@dataclass(frozen=True, kw_only=True)
class ReleaseInfo:
    """The outcome of an install or upgrade."""

    name: str
    namespace: str
    revision: int
    status: str
    notes: str | None = None


class ReleaseManager:
    """Template, install/upgrade and uninstall the chart through pyhelm3."""

    def __init__(
        self, *, helm: str | None = None, kubeconfig: Path | None = None, kubecontext: str | None = None
    ) -> None:
        self.helm = helm or default_helm()
        self._client = Client(executable=self.helm, kubeconfig=kubeconfig, kubecontext=kubecontext)

    def __repr__(self) -> str:
        return f"ReleaseManager(helm={self.helm!r}, version={self._client.version})"

    def template(self, spec: ReleaseSpec) -> list[dict[str, Any]]:
        """Render the chart (hooks included) and return the objects, as ``helm template`` does."""
        return asyncio.run(self._template(spec))

    async def _template(self, spec: ReleaseSpec) -> list[dict[str, Any]]:
        chart = await self._chart(spec)
        try:
            objects: Iterable[dict[str, Any]] = await self._client.template_resources(
                chart, spec.name, spec.merged_values(), namespace=spec.namespace
            )
        except HelmError as exc:
            raise RuntimeError(f"helm template of {spec.chart} failed: {_one_line(exc)}") from exc
        return [obj for obj in objects if obj]

    def install_or_upgrade(
        self, spec: ReleaseSpec, *, wait: bool = False, timeout: str = "10m", atomic: bool = False
    ) -> ReleaseInfo:
        """Install the release, or upgrade it when it exists; ``wait`` waits for built-in objects only."""
        return asyncio.run(self._install_or_upgrade(spec, wait=wait, timeout=timeout, atomic=atomic))

    async def _install_or_upgrade(
        self, spec: ReleaseSpec, *, wait: bool, timeout: str, atomic: bool
    ) -> ReleaseInfo:
        chart = await self._chart(spec)
        try:
            revision = await self._client.install_or_upgrade_release(
                spec.name,
                chart,
                spec.merged_values(),
                namespace=spec.namespace,
                create_namespace=True,
                wait=wait,
                timeout=timeout,
                rollback_on_failure=atomic,
            )
        except HelmError as exc:
            raise RuntimeError(f"helm upgrade --install {spec.name} failed: {_one_line(exc)}") from exc
        return ReleaseInfo(
            name=spec.name,
            namespace=spec.namespace,
            revision=revision.revision,
            status=str(getattr(revision.status, "value", revision.status)),
            notes=revision.notes,
        )

    def uninstall(self, name: str, namespace: str, *, wait: bool = True, timeout: str = "5m") -> None:
        """Uninstall the release; a release that does not exist counts as uninstalled."""
        try:
            asyncio.run(self._client.uninstall_release(name, namespace=namespace, wait=wait, timeout=timeout))
        except HelmError as exc:
            raise RuntimeError(f"helm uninstall {name} failed: {_one_line(exc)}") from exc

    async def _chart(self, spec: ReleaseSpec) -> Any:
        if not (Path(spec.chart) / "Chart.yaml").is_file():
            raise FileNotFoundError(f"No chart at {str(spec.chart)!r} (expected a Chart.yaml there).")
        return await self._client.get_chart(Path(spec.chart))


def _one_line(exc: BaseException) -> str:
    """Helm's multi-line error squeezed into one line (schema errors list one offending value per line)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text.removeprefix("Error: ") or type(exc).__name__
