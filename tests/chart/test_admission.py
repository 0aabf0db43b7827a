"""Admission rules as tests: every InferenceService the chart tests render passes KServe's validation, and in
Knative mode the pod spec KServe hands to Knative passes Knative's field masks under exactly the feature flags
manifests/knative/config-features.yaml enables. Each rule cites its upstream line in ``admission.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from admission import (
    DEFAULT_FLAGS,
    ROOT,
    injected_storage_initializer,
    knative_violations,
    kserve_violations,
    ksvc_pod_spec,
    project_flags,
    restricted_violations,
)
from chartkit import CHART, isvcs, render
from test_render_matrix import CASES, _values

# Every values combination the chart tests render: defaults, each ci file, the matrix, and the one-off
# settings of test_inferenceservice.py / test_templates.py that change the pod spec.
CI_FILES = sorted(p.name for p in (CHART / "ci").glob("*-values.yaml"))
EXTRA: list[tuple[str | dict[str, Any], ...]] = [
    (),
    ({"knative": {"window": "20s", "initialScale": 2}},),
    (
        {
            "placement": {"instanceTypeSelector": True},
            "pools": {"amd64": {"nodeSelector": {"team": "retina"}}},
        },
    ),
    ({"predictor": {"containerConcurrency": 2, "timeout": 45}},),
    ({"image": {"flavour": "full"}},),
    ({"image": {"digest": "sha256:" + "ab" * 32}},),
    ({"models": {"mobilenet": {"precision": "int8"}}},),
    ({"serviceAccount": {"create": False, "name": "models-reader"}},),
    ({"podLabels": {"team": "retina"}, "podAnnotations": {"note": "x"}},),
    ({"image": {"pullSecrets": ["regcred"]}},),
    ({"predictor": {"limits": {"maxImageBytes": 5000000, "maxBatch": 8}}},),
    ("profiles-values.yaml", {"mode": "standard"}),
    ("standard-values.yaml", "monitoring-values.yaml"),
]


def _name(item: str | dict[str, Any]) -> str:
    """A short test id: the file name, or the dotted first path of a values dict."""
    parts = []
    while isinstance(item, dict):
        key = next(iter(item))
        parts.append(key)
        item = item[key]
    return item if not parts else ".".join(parts)


VALUE_SETS = (
    [pytest.param(v, id="+".join(_name(x) for x in v) or "defaults") for v in EXTRA]
    + [pytest.param((name,), id=name) for name in CI_FILES]
    + [pytest.param((_values(*case.values),), id=f"matrix-{case.id}") for case in CASES]
)
PATCH = yaml.safe_load((ROOT / "manifests" / "kserve" / "storage-container-restricted.yaml").read_text())


def _services(values: tuple[str | dict[str, Any], ...]) -> list[dict[str, Any]]:
    return list(isvcs(render(*values)).values())


def _knative(services: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        s for s in services if s["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    ]


@pytest.mark.parametrize("values", VALUE_SETS)
def test_kserve_and_knative_admit_every_rendered_inference_service(values: tuple[Any, ...]) -> None:
    """No KServe rule broken; in Knative mode no Knative field mask broken with the project's flags."""
    flags = project_flags()
    for isvc in _services(values):
        name = isvc["metadata"]["name"]
        assert kserve_violations(isvc) == [], name
        if isvc in _knative([isvc]):
            assert knative_violations(ksvc_pod_spec(isvc), flags) == [], name


@pytest.mark.parametrize("values", VALUE_SETS)
def test_injected_storage_initializer_passes_restricted_pod_security(values: tuple[Any, ...]) -> None:
    """Finding 12: with the ClusterStorageContainer patch install-addons.sh applies, KServe's injected
    storage-initializer passes the restricted Pod Security Standard like the chart's own container."""
    for isvc in _services(values):
        predictor = isvc["spec"]["predictor"]
        pod_context = predictor["securityContext"]
        assert restricted_violations(pod_context, predictor["containers"][0]) == []
        init = injected_storage_initializer(isvc, PATCH["spec"]["container"])
        if init is not None:
            assert restricted_violations(pod_context, init) == []


def test_storage_initializer_without_the_patch_breaks_restricted() -> None:
    """The rule can fail: KServe's bare init container (no securityContext) is refused by restricted."""
    (isvc, *_) = _services(("storage-uri-values.yaml",))
    init = injected_storage_initializer(isvc, None)
    problems = restricted_violations(isvc["spec"]["predictor"]["securityContext"], init)
    assert problems == ["allowPrivilegeEscalation must be false", "capabilities.drop must include ALL"]


def test_downward_api_env_needs_the_fieldref_flag() -> None:
    """Finding 1: the pre-fix chart (fieldRef env in Knative mode) is refused under the project's flags; it is
    admitted only where kubernetes.podspec-fieldref is on."""
    (isvc, *_) = _knative(_services(({"knative": {"fieldRefEnv": True}},)))
    pod = ksvc_pod_spec(isvc)
    problems = knative_violations(pod, project_flags())
    assert problems == [
        "containers[0].env[DR_NODE_NAME].valueFrom.fieldRef: needs kubernetes.podspec-fieldref "
        "(knative-v1.21.1 k8s_validation.go:324-330, fieldmask.go:521-538)",
        "containers[0].env[DR_POD_NAME].valueFrom.fieldRef: needs kubernetes.podspec-fieldref "
        "(knative-v1.21.1 k8s_validation.go:324-330, fieldmask.go:521-538)",
    ]
    assert knative_violations(pod, {**project_flags(), "kubernetes.podspec-fieldref": "enabled"}) == []


def test_upstream_default_flags_refuse_the_chart() -> None:
    """Without config-features.yaml, Knative refuses pool placement and the pod securityContext."""
    (isvc,) = [s for s in _services(("kind-values.yaml",)) if s["metadata"]["name"].endswith("-graviton")]
    problems = knative_violations(ksvc_pod_spec(isvc), DEFAULT_FLAGS)
    flagged = sorted({p.split("needs ")[1].split(" ")[0] for p in problems if "needs " in p})
    assert flagged == [
        "kubernetes.podspec-nodeselector",
        "kubernetes.podspec-securitycontext",
        "kubernetes.podspec-tolerations",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"terminationGracePeriodSeconds": 30}, "terminationGracePeriodSeconds: not allowed"),
        ({"automountServiceAccountToken": True}, "automountServiceAccountToken: only false"),
        ({"initContainers": [{"name": "x", "image": "busybox"}]}, "needs kubernetes.podspec-init-containers"),
        ({"hostNetwork": True}, "needs kubernetes.podspec-hostnetwork"),
    ],
    ids=["grace-period", "token", "init-container", "host-network"],
)
def test_knative_refuses_pod_fields_the_chart_must_not_render(change: dict[str, Any], expected: str) -> None:
    """The masks are not vacuous: fields the chart keeps out of Knative mode are refused when present."""
    (isvc, *_) = _knative(_services(()))
    pod = {**ksvc_pod_spec(isvc), **change}
    assert any(expected in p for p in knative_violations(pod, project_flags()))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"ports": [{"name": "metrics", "containerPort": 9090}]},
            ["9090 is reserved", "is not '', h2c or http1"],
        ),
        ({"env": [{"name": "PORT", "value": "1"}]}, ["reserved by Knative"]),
        ({"volumeMounts": [{"name": "tmp", "mountPath": "/dev"}]}, ["mountPath /dev is reserved"]),
        ({"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}, ["containerspec-addcapabilities"]),
        ({"lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}}}, ["lifecycle: not allowed"]),
        (
            {"readinessProbe": {"httpGet": {"port": "admin", "path": "/"}, "periodSeconds": 2}},
            ["must name the"],
        ),
    ],
    ids=["reserved-port", "reserved-env", "reserved-path", "add-capabilities", "lifecycle", "probe-port"],
)
def test_knative_refuses_container_fields(change: dict[str, Any], expected: list[str]) -> None:
    """Container rules: reserved ports, env names and paths, capabilities.add, lifecycle, probe ports."""
    (isvc, *_) = _knative(_services(()))
    pod = ksvc_pod_spec(isvc)
    pod["containers"][0].update(change)
    problems = " | ".join(knative_violations(pod, project_flags()))
    for text in expected:
        assert text in problems


def test_config_features_names_exactly_the_flags_the_chart_needs() -> None:
    """Finding 14: turning off any flag listed in config-features.yaml's comment breaks some rendered pod, and
    every flag some rendered pod needs is enabled there (fieldref: only with knative.fieldRefEnv)."""
    flags = project_flags()
    pods = [ksvc_pod_spec(s) for v in VALUE_SETS for s in _knative(_services(v.values[0]))]
    needed = {
        flag
        for flag, state in flags.items()
        if state == "enabled" and any(knative_violations(p, {**flags, flag: "disabled"}) for p in pods)
    }
    assert needed == {
        "kubernetes.podspec-nodeselector",
        "kubernetes.podspec-tolerations",
        "kubernetes.podspec-securitycontext",
        "kubernetes.podspec-volumes-emptydir",
    }
    text = (ROOT / "manifests" / "knative" / "config-features.yaml").read_text()
    comment = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    for flag in needed | {"kubernetes.podspec-fieldref"}:
        assert flag in comment


def _qos(containers: list[dict[str, Any]]) -> str:
    """The pod QoS class Kubernetes assigns: Guaranteed when every container's cpu and memory requests equal
    its limits. ref: https://kubernetes.io/docs/concepts/workloads/pods/pod-qos/"""
    for item in containers:
        resources = item.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        if not all(
            key in limits and requests.get(key, limits[key]) == limits[key] for key in ("cpu", "memory")
        ):
            return "Burstable"
    return "Guaranteed"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("standard-values.yaml",), "Guaranteed"),
        (("standard-values.yaml", "storage-uri-values.yaml"), "Burstable"),
        ((), "Burstable"),
    ],
    ids=["standard-image", "standard-storage-initializer", "knative-queue-proxy"],
)
def test_guaranteed_qos_only_where_the_values_comment_says(values: tuple[Any, ...], expected: str) -> None:
    """Finding 11: Knative adds queue-proxy with a CPU request and no limits (knative-v1.21.1
    pkg/deployment/config.go:118), KServe's storage-initializer has 100m/1 CPU and 100Mi/1Gi (kserve v0.20.0
    config/configmap/inferenceservice.yaml:150-156): either makes the pod Burstable."""
    (isvc, *_) = _services(values)
    containers = list(isvc["spec"]["predictor"]["containers"])
    if isvc in _knative([isvc]):
        containers.append({"name": "queue-proxy", "resources": {"requests": {"cpu": "25m"}}})
    init = injected_storage_initializer(isvc, PATCH["spec"]["container"])
    containers += [init] if init else []
    assert _qos(containers) == expected
    comment = (CHART / "values.yaml").read_text().split("# profiles --", 1)[1].split("\nprofiles:", 1)[0]
    assert "Guaranteed QoS only in Standard mode with source" in " ".join(comment.split())
