"""Helpers for the chart tests: the real ``bin/helm`` (installed by ``make tools``) and real schemas.

``render`` runs ``helm template`` on ``charts/dr-serving`` and returns the objects; ``validate_builtin``
checks a built-in object with ``kubernetes-validate`` (strict, Kubernetes 1.32); ``validate_crd`` checks a
custom resource against the compact CRD schema in ``tests/chart/schemas/crds.json``, unknown fields rejected.
"""

from __future__ import annotations

import copy
import functools
import json
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "dr-serving"
HELM = ROOT / "bin" / "helm"
CRD_SCHEMAS = Path(__file__).with_name("schemas") / "crds.json"
KUBERNETES_VERSION = "1.32.0"
RELEASE = "dr-serving"
NAMESPACE = "dr"

Objects = list[dict[str, Any]]


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the project's helm binary; fails the test run with a hint when it is missing."""
    if not HELM.is_file():
        pytest.fail(f"{HELM} is missing; run: make tools", pytrace=False)
    result = subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=120, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{result.stderr}", pytrace=False)
    return result


def values_args(values: Iterable[str | Path | dict[str, Any]], tmp: Path) -> list[str]:
    """Turn values files (names under ci/ or paths) and dicts into ``-f`` arguments."""
    args: list[str] = []
    for index, item in enumerate(values):
        if isinstance(item, dict):
            path = tmp / f"values-{index}.yaml"
            path.write_text(yaml.safe_dump(item))
        elif isinstance(item, str) and "/" not in item:
            path = CHART / "ci" / item
        else:
            path = Path(item)
        args += ["-f", str(path)]
    return args


def parse_objects(text: str) -> Objects:
    """Parse a multi-document manifest into a list of objects (empty documents dropped)."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


@functools.cache
def _crd_schemas() -> dict[str, Any]:
    return json.loads(CRD_SCHEMAS.read_text())["schemas"]


def strict(schema: Any) -> Any:
    """Return a copy of an OpenAPI schema in which objects with declared properties reject unknown fields."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def _crd_validator(key: str) -> jsonschema.Draft7Validator:
    schemas = _crd_schemas()
    if key not in schemas:
        raise KeyError(f"No CRD schema for {key!r}; have {sorted(schemas)}.")
    return jsonschema.Draft7Validator(strict(copy.deepcopy(schemas[key])))


def crd_errors(obj: dict[str, Any]) -> list[str]:
    """Return the CRD schema violations of a custom resource, as readable lines."""
    key = f"{obj['apiVersion']}/{obj['kind']}"
    validator = _crd_validator(key)
    return [
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(obj)
    ]


def render(*values: str | Path | dict[str, Any]) -> Objects:
    """Render the chart with values files (names under ci/, or paths) and dicts; returns all objects."""
    with tempfile.TemporaryDirectory() as tmp:
        args = values_args(values, Path(tmp))
        # Dict values are written to files named by position, so key the cache on their content instead.
        key = tuple(json.dumps(v, sort_keys=True) if isinstance(v, dict) else str(v) for v in values)
        return parse_objects(_template_cached(key, tuple(args)))


_TEMPLATE_CACHE: dict[tuple[str, ...], str] = {}


def _template_cached(key: tuple[str, ...], args: tuple[str, ...]) -> str:
    if key not in _TEMPLATE_CACHE:
        result = run_helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
        _TEMPLATE_CACHE[key] = result.stdout
    return _TEMPLATE_CACHE[key]


def validate_builtin(obj: dict[str, Any]) -> None:
    """Validate a built-in Kubernetes object strictly with kubernetes-validate (Kubernetes 1.32)."""
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def validate_crd(obj: dict[str, Any]) -> None:
    """Validate a custom resource against its CRD's openAPIV3Schema, unknown fields rejected."""
    errors = crd_errors(obj)
    assert not errors, f"{obj['kind']} {obj['metadata']['name']} breaks its CRD schema:\n" + "\n".join(errors)


def by_kind(objects: Objects, kind: str) -> Objects:
    """The objects of one kind."""
    return [obj for obj in objects if obj["kind"] == kind]


def isvcs(objects: Objects) -> dict[str, dict[str, Any]]:
    """InferenceServices keyed by name."""
    return {obj["metadata"]["name"]: obj for obj in by_kind(objects, "InferenceService")}


def container(isvc: dict[str, Any]) -> dict[str, Any]:
    """The kserve-container of an InferenceService."""
    (only,) = isvc["spec"]["predictor"]["containers"]
    return only


def env(isvc: dict[str, Any]) -> dict[str, Any]:
    """The predictor's env as name -> value (or valueFrom)."""
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container(isvc)["env"]}


#: InferenceService predictor fields that are KServe's own (ComponentExtensionSpec), not PodSpec fields.
COMPONENT_FIELDS = {
    "minReplicas",
    "maxReplicas",
    "scaleMetric",
    "scaleMetricType",
    "scaleTarget",
    "containerConcurrency",
    "timeout",
    "labels",
    "annotations",
    "canaryTrafficPercent",
    "logger",
    "batcher",
    "deploymentStrategy",
    "autoScaling",
    "storageUris",
}


def predictor_pod(isvc: dict[str, Any]) -> dict[str, Any]:
    """The Pod an InferenceService's predictor becomes, for validation with the core PodSpec schema."""
    predictor = isvc["spec"]["predictor"]
    spec = {key: value for key, value in predictor.items() if key not in COMPONENT_FIELDS}
    metadata = {"name": f"{isvc['metadata']['name']}-predictor", "labels": predictor.get("labels", {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
