"""values.schema.json and the chart's own checks reject bad values with a message naming the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import CHART, run_helm

INVALID: list[Any] = [
    pytest.param(
        {"predictor": {"drainSeconds": -1}},
        "at '/predictor/drainSeconds': minimum: got -1, want 0",
        id="negative-drain",
    ),
    pytest.param(
        {"mode": "standard", "predictor": {"drainSeconds": 30, "terminationGracePeriodSeconds": 30}},
        "terminationGracePeriodSeconds (30) must exceed drainSeconds (30) + bodyTimeoutSeconds (30)",
        id="drain-not-below-grace-period",
    ),
    pytest.param(
        {"predictor": {"gradability": "warn"}},
        "at '/predictor/gradability': value must be one of 'reject', 'flag', 'off'",
        id="unknown-gradability-policy",
    ),
    pytest.param(
        {"mode": "serverless"}, "at '/mode': value must be one of 'knative', 'standard'", id="unknown-mode"
    ),
    pytest.param({"modle": "knative"}, "additional properties 'modle' not allowed", id="typo-top-level-key"),
    pytest.param(
        {"pools": {"graviton": {"arch": "aarch64"}}},
        "at '/pools/graviton/arch': value must be one of 'amd64', 'arm64'",
        id="unknown-arch",
    ),
    pytest.param(
        {"pools": {"amd64": {"pricePerHour": "0.23 USD"}}},
        "at '/pools/amd64/pricePerHour': got string, want number",
        id="price-not-a-number",
    ),
    pytest.param(
        {"pools": {"amd64": {"instancetype": "m5.xlarge"}}},
        "additional properties 'instancetype' not allowed",
        id="typo-pool-key",
    ),
    pytest.param(
        {"models": {"mobilenet": {"source": "storageUri"}}},
        "at '/models/mobilenet/storageUri': minLength: got 0, want 1",
        id="storage-source-without-uri",
    ),
    pytest.param(
        {"models": {"mobilenet": {"source": "storageUri", "storageUri": "ftp://models/mobilenet"}}},
        "'ftp://models/mobilenet' does not match pattern",
        id="unsupported-storage-scheme",
    ),
    pytest.param(
        {"models": {"Mobile_Net": {"enabled": True, "source": "image"}}},
        "invalid propertyName 'Mobile_Net'",
        id="model-name-not-dns",
    ),
    pytest.param(
        {"standard": {"minReplicas": 0}},
        "at '/standard/minReplicas': minimum: got 0, want 1",
        id="standard-min-replicas-zero",
    ),
    pytest.param(
        {"predictor": {"annotations": {"autoscaling.knative.dev/min-scale": "1"}}},
        "invalid propertyName 'autoscaling.knative.dev/min-scale'",
        id="min-scale-annotation",
    ),
    pytest.param(
        {"knative": {"scaleMetric": "cpu"}},
        "at '/knative/scaleMetric': value must be one of 'concurrency', 'rps'",
        id="knative-hpa-metric",
    ),
    pytest.param(
        {"profiles": {"4Gi": {"cpu": "2 cores", "memory": "4Gi"}}},
        "at '/profiles/4Gi/cpu': '2 cores' does not match pattern",
        id="cpu-quantity",
    ),
    pytest.param(
        {"profile": "5Gi"},
        'Profile "5Gi" (model mobilenet) is not a key of profiles (have: 1Gi, 2Gi, 3Gi).',
        id="unknown-profile",
    ),
    pytest.param(
        {"models": {"mobilenet": {"pools": ["arm"]}}},
        'models.mobilenet.pools lists "arm", which is not a key of pools (have: amd64, graviton).',
        id="unknown-pool-reference",
    ),
    pytest.param(
        {"pools": {"amd64": {"enabled": False}, "graviton": {"enabled": False}}},
        "No InferenceService to render: enable at least one model and one pool it may run on.",
        id="nothing-enabled",
    ),
    pytest.param(
        {"fullnameOverride": "a-rather-long-release-name-prefix"},
        "is 49 characters, more than 45",
        id="name-too-long",
    ),
]


@pytest.mark.parametrize(("values", "message"), INVALID)
def test_invalid_values_are_rejected_with_a_clear_message(
    values: dict[str, Any], message: str, tmp_path: Path
) -> None:
    """helm template fails and names the offending value."""
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    result = run_helm("template", "dr-serving", str(CHART), "-f", str(path), check=False)
    assert result.returncode != 0
    assert message in result.stderr


def _walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)]
    for name, sub in schema.get("properties", {}).items():
        found += _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        found += _walk(schema["additionalProperties"], f"{path}.*")
    if isinstance(schema.get("items"), dict):
        found += _walk(schema["items"], f"{path}[]")
    return found


def test_schema_describes_every_property_and_closes_every_object() -> None:
    """Every schema node has a description; every object with properties rejects unknown keys."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    # Leaves of maps and lists (label values, list items of plain strings) need no description of their own.
    nodes = [
        (path, node) for path, node in _walk(schema) if node.get("type") == "object" or path[-1:] not in "*]"
    ]
    undocumented = [path for path, node in nodes if "description" not in node]
    open_objects = [
        path for path, node in _walk(schema) if "properties" in node and "additionalProperties" not in node
    ]
    assert not undocumented
    assert not open_objects


def test_values_yaml_links_the_schema_on_its_first_line() -> None:
    """values.yaml starts with the yaml-language-server $schema link."""
    first = (CHART / "values.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=values.schema.json"
