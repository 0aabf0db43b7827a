"""Render the chart over the values matrix with the real helm and validate every object against real schemas.

Every mode x pool set x model set renders once; the profile, model source and monitoring switch rotate through
their 12 combinations so that each appears, keeping the run short on a 2-core machine.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from chartkit import (
    CHART,
    NAMESPACE,
    by_kind,
    container,
    env,
    isvcs,
    parse_objects,
    predictor_pod,
    render,
    run_helm,
    validate_builtin,
    validate_crd,
    values_args,
)

MODES = ("knative", "standard")
POOL_SETS: dict[str, tuple[str, ...]] = {
    "both": ("amd64", "graviton"),
    "amd64": ("amd64",),
    "graviton": ("graviton",),
}
MODEL_SETS: dict[str, tuple[str, ...]] = {
    "mobilenet": ("mobilenet",),
    "vgg19": ("vgg19",),
    "both": ("mobilenet", "vgg19"),
}
PROFILES = {"1Gi": ("500m", "1Gi"), "2Gi": ("1", "2Gi"), "3Gi": ("1500m", "3Gi")}
SOURCES = ("image", "storageUri")
MONITORING = (False, True)
STORAGE = {"mobilenet": "s3://dr-models/mobilenet", "vgg19": "pvc://dr-models/vgg19"}
CRD_GROUPS = ("serving.kserve.io/", "monitoring.coreos.com/")


def _cases() -> list[Any]:
    rotation = list(itertools.product(PROFILES, SOURCES, MONITORING))
    cases = []
    for index, (mode, pools, models) in enumerate(itertools.product(MODES, POOL_SETS, MODEL_SETS)):
        profile, source, monitoring = rotation[index % len(rotation)]
        case_id = (
            f"{mode}-{pools}-{models}-{profile}-{source}-{'monitoring' if monitoring else 'nomonitoring'}"
        )
        cases.append(pytest.param(mode, pools, models, profile, source, monitoring, id=case_id))
    return cases


def _values(
    mode: str, pools: str, models: str, profile: str, source: str, monitoring: bool
) -> dict[str, Any]:
    return {
        "mode": mode,
        "profile": profile,
        "pools": {name: {"enabled": name in POOL_SETS[pools]} for name in ("amd64", "graviton")},
        "models": {
            name: {
                "enabled": name in MODEL_SETS[models],
                "source": source,
                "storageUri": STORAGE[name] if source == "storageUri" else "",
                "profile": "",
            }
            for name in ("mobilenet", "vgg19")
        },
        "monitoring": {"podMonitor": {"enabled": monitoring}, "serviceMonitor": {"enabled": monitoring}},
    }


CASES = _cases()


def test_matrix_covers_every_profile_source_and_monitoring_combination() -> None:
    """The rotation reaches all 12 (profile, source, monitoring) combinations."""
    seen = {tuple(case.values[3:]) for case in CASES}
    assert seen == set(itertools.product(PROFILES, SOURCES, MONITORING))


@pytest.mark.parametrize(("mode", "pools", "models", "profile", "source", "monitoring"), CASES)
def test_matrix_renders_valid_objects(
    mode: str, pools: str, models: str, profile: str, source: str, monitoring: bool
) -> None:
    """Each case renders one valid InferenceService per (model x pool) with the chosen settings."""
    objects = render(_values(mode, pools, models, profile, source, monitoring))
    for obj in objects:
        if obj["apiVersion"].startswith(CRD_GROUPS):
            validate_crd(obj)
        else:
            validate_builtin(obj)
    services = isvcs(objects)
    expected = {f"dr-serving-{m}-{p}" for m in MODEL_SETS[models] for p in POOL_SETS[pools]}
    assert set(services) == expected
    cpu, memory = PROFILES[profile]
    for isvc in services.values():
        validate_builtin(predictor_pod(isvc))
        model = isvc["metadata"]["labels"]["dr-serving/model"]
        assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == mode.capitalize()
        assert container(isvc)["resources"] == {
            "requests": {"cpu": cpu, "memory": memory},
            "limits": {"cpu": cpu, "memory": memory},
        }
        model_dir = "/mnt/models" if source == "storageUri" else "/opt/dr-serving/model"
        assert f"--model-dir={model_dir}" in container(isvc)["args"]
        assert env(isvc).get("STORAGE_URI") == (STORAGE[model] if source == "storageUri" else None)
    assert len(by_kind(objects, "PodMonitor")) == int(monitoring)
    assert len(by_kind(objects, "ServiceMonitor")) == int(monitoring and mode == "standard")


@pytest.mark.parametrize(("mode", "pools", "models", "profile", "source", "monitoring"), CASES)
def test_matrix_installs_with_client_dry_run(
    mode: str, pools: str, models: str, profile: str, source: str, monitoring: bool, tmp_path
) -> None:
    """``helm install --dry-run=client`` accepts each case and renders what ``helm template`` renders."""
    values = _values(mode, pools, models, profile, source, monitoring)
    result = run_helm(
        "install",
        "dr-serving",
        str(CHART),
        "--dry-run=client",
        "--namespace",
        NAMESPACE,
        "--output",
        "json",
        *values_args([values], tmp_path),
    )
    release = json.loads(result.stdout)
    installed = parse_objects(release["manifest"])
    hooks = [obj for hook in release.get("hooks", []) for obj in parse_objects(hook["manifest"])]
    assert _by_key(installed + hooks) == _by_key(render(values))
    assert release["info"]["status"] == "pending-install"


def _by_key(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects}


CI_FILES = sorted(p.name for p in (CHART / "ci").glob("*-values.yaml"))
#: Value sets beyond each ci file alone: kind with the in-cluster load generator on (make kind-load-lab).
CI_EXTRAS = {"kind-values.yaml+loadtest": ("kind-values.yaml", {"loadtest": {"enabled": True}})}


@pytest.mark.parametrize(
    "values", [*((f,) for f in CI_FILES), *CI_EXTRAS.values()], ids=[*CI_FILES, *CI_EXTRAS]
)
def test_each_ci_values_file_renders_valid_objects(values: tuple[str | dict[str, Any], ...]) -> None:
    """Every object rendered from each ci/*-values.yaml (and the extra sets) validates against its schema."""
    objects = render(*values)
    assert isvcs(objects)
    for obj in objects:
        if obj["apiVersion"].startswith(CRD_GROUPS):
            validate_crd(obj)
        else:
            validate_builtin(obj)
    for isvc in isvcs(objects).values():
        validate_builtin(predictor_pod(isvc))
