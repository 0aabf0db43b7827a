"""The image's runtime requirement files agree with pyproject.toml and the lock file (no Docker needed)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from dr_image import requirements as dr_requirements
from dr_image import wheelhouse

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def requirements() -> ModuleType:
    """``dr_image/requirements.py``."""
    return dr_requirements


def _pins(flavour: str) -> list[Requirement]:
    lines = (ROOT / "docker" / f"requirements-{flavour}.txt").read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def test_files_are_regenerated_from_pyproject_and_lock(requirements: ModuleType) -> None:
    assert requirements.main(["--check"]) == 0


@pytest.mark.parametrize("flavour", ["full", "lite", "lab"])
def test_every_pin_matches_the_lock(requirements: ModuleType, flavour: str) -> None:
    lock = requirements.read_lock()
    for req in _pins(flavour):
        (spec,) = req.specifier
        name = canonicalize_name(req.name)
        locked = lock.get("tensorflow-cpu" if name == "tensorflow" else name)
        if name in {"setuptools", "wheel"}:  # `pip freeze` leaves these out of the lock
            continue
        assert spec.operator == "==" and spec.version == locked, f"{req} vs lock {locked}"


def test_flavours_carry_the_right_runtime() -> None:
    full = {canonicalize_name(r.name): r for r in _pins("full")}
    lite = {canonicalize_name(r.name) for r in _pins("lite")}
    assert not lite & {"tensorflow", "tensorflow-cpu", "keras"}
    assert {"ai-edge-litert", "kserve", "numpy", "pillow"} <= lite
    assert "ai-edge-litert" not in full
    assert str(full["tensorflow-cpu"].marker) == 'platform_machine == "x86_64"'
    assert str(full["tensorflow"].marker) == 'platform_machine == "aarch64"'
    assert full["tensorflow"].specifier == full["tensorflow-cpu"].specifier
    # The lab image is the load generator only: Locust and the report, no model backend or cluster tooling.
    lab = {canonicalize_name(r.name) for r in _pins("lab")}
    assert {"locust", "gevent", "pyzmq", "matplotlib", "jinja2", "psutil", "numpy", "pillow"} <= lab
    assert not lab & {"tensorflow", "tensorflow-cpu", "ai-edge-litert", "kserve", "kubernetes", "pyhelm3"}


def test_the_loadgen_extra_is_the_lab_extra_less_the_cluster_tooling() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    cluster = {line for line in extras["lab"] if Requirement(line).name in {"kubernetes", "pyhelm3"}}
    assert len(cluster) == 2
    assert set(extras["loadgen"]) == set(extras["lab"]) - cluster


def test_wheelhouse_evaluates_markers_for_the_target_machine() -> None:
    arm = wheelhouse.requirements_for("full", "arm64")
    amd = wheelhouse.requirements_for("full", "amd64")
    assert any(line.startswith("tensorflow==") for line in arm)
    assert not any(line.startswith("tensorflow-cpu") for line in arm)
    assert any(line.startswith("tensorflow-cpu==") for line in amd)
    assert all(";" not in line for line in arm + amd)


def _pruned(flavour: str) -> set[str]:
    lines = (ROOT / "docker" / "prune" / f"{flavour}.txt").read_text().splitlines()
    names = (line.split("#", 1)[0].strip() for line in lines)
    return {canonicalize_name(name) for name in names if name}


@pytest.mark.parametrize("flavour", ["full", "lite"])
def test_pruned_distributions_are_installed_first_and_none_is_on_the_serving_path(flavour: str) -> None:
    """docker/prune/<flavour>.txt names only pinned distributions, none importing what a predictor loads."""
    import importlib.metadata as md

    from tests.serving.test_coldstart import ALLOWED_AT_READY, FORBIDDEN_AT_READY

    pruned = _pruned(flavour)
    pinned = {canonicalize_name(req.name) for req in _pins(flavour)}
    assert pruned and pruned <= pinned, f"not in requirements-{flavour}.txt: {sorted(pruned - pinned)}"
    provides = {
        module: {canonicalize_name(dist) for dist in dists}
        for module, dists in md.packages_distributions().items()
    }
    # A module loaded at ready and pruned would break the start, unless its importer treats it as optional:
    # grpc/__init__ imports grpc_tools inside `try: ... except ImportError`.
    optional = {"grpc_tools"}
    on_path = {module for module in ALLOWED_AT_READY - optional if provides.get(module, set()) & pruned}
    assert on_path == set(), f"pruned from the {flavour} image but loaded at ready: {sorted(on_path)}"
    assert {"kubernetes", "grpcio-tools"} <= pruned
    assert {"kubernetes", "requests", "cryptography"} <= {
        dist for module in FORBIDDEN_AT_READY for dist in provides.get(module, set())
    }
