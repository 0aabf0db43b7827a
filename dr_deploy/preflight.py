"""``dr-serving deploy preflight``: what in a live cluster would keep the chart's pods from running.

``requirements`` reads the rendered chart (the objects ``helm template`` gives for the user's values) and says
what the cluster must offer: KServe's CRDs, the Knative feature flags each pod spec needs, a node per pool
(the load generator's too with ``loadtest.enabled``, and room for what its pods request: ``placement.py``),
metrics-server (Standard mode's HPA), the ``pvc://`` claims, the images Knative would resolve. ``check`` asks
the API server (kubernetes client) and returns one ``Problem`` per gap, each with its fix. The upstream rules
behind each check are cited where they are applied; tests/deploy/test_preflight.py replays recorded answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dr_deploy.placement import Pool, inference_service_pool, loadtest_pools, node_problems
from dr_deploy.problems import Problem

__all__ = [
    "Pool",
    "Problem",
    "Requirements",
    "check",
    "pinned_versions",
    "required_knative_flags",
    "requirements",
]

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ROOT / "manifests" / "versions.env"
ISVC_CRD = "inferenceservices.serving.kserve.io"
METRICS_API = "v1beta1.metrics.k8s.io"
# Registries Knative never resolves tags for unless config-deployment says otherwise
# (knative-v1.21.1 pkg/deployment/config.go:117).
DEFAULT_SKIPPED_REGISTRIES = ("kind.local", "ko.local", "dev.local")
# Pod-spec fields Knative keeps only with a feature flag
# (knative-v1.21.1 pkg/apis/serving/fieldmask.go:237-288).
POD_FIELD_FLAGS = {
    "affinity": "kubernetes.podspec-affinity",
    "topologySpreadConstraints": "kubernetes.podspec-topologyspreadconstraints",
    "hostAliases": "kubernetes.podspec-hostaliases",
    "nodeSelector": "kubernetes.podspec-nodeselector",
    "runtimeClassName": "kubernetes.podspec-runtimeclassname",
    "tolerations": "kubernetes.podspec-tolerations",
    "securityContext": "kubernetes.podspec-securitycontext",
    "shareProcessNamespace": "kubernetes.podspec-shareprocessnamespace",
    "priorityClassName": "kubernetes.podspec-priorityclassname",
    "schedulerName": "kubernetes.podspec-schedulername",
    "initContainers": "kubernetes.podspec-init-containers",
    "dnsPolicy": "kubernetes.podspec-dnspolicy",
    "dnsConfig": "kubernetes.podspec-dnsconfig",
}
# Flags on upstream (knative-v1.21.1 pkg/apis/config/features.go:101): absent from config-features means on.
ENABLED_UPSTREAM = frozenset({"kubernetes.podspec-volumes-emptydir"})


@dataclass(frozen=True, kw_only=True)
class Requirements:
    """What the rendered release needs from the cluster."""

    namespace: str
    mode: str
    knative_flags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    pools: tuple[Pool, ...] = ()
    claims: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    images: tuple[str, ...] = ()
    crds: tuple[str, ...] = ()


def required_knative_flags(pod: Mapping[str, Any]) -> set[str]:
    """The Knative feature flags a pod spec needs to pass Knative's webhook (besides those on upstream)."""
    flags = {flag for key, flag in POD_FIELD_FLAGS.items() if pod.get(key)}
    if any("emptyDir" in volume for volume in pod.get("volumes") or []):
        flags.add("kubernetes.podspec-volumes-emptydir")
    for container in pod.get("containers") or []:
        for item in container.get("env") or []:
            source = item.get("valueFrom") or {}
            if "fieldRef" in source or "resourceFieldRef" in source:
                # knative-v1.21.1 pkg/apis/serving/k8s_validation.go:324-330
                flags.add("kubernetes.podspec-fieldref")
        if ((container.get("securityContext") or {}).get("capabilities") or {}).get("add"):
            flags.add("kubernetes.containerspec-addcapabilities")  # fieldmask.go:743-764
    return flags


def requirements(objects: Iterable[Mapping[str, Any]], namespace: str) -> Requirements:
    """Read what the cluster must offer from the chart's rendered objects."""
    isvcs = [o for o in objects if o.get("kind") == "InferenceService"]
    if not isvcs:
        raise ValueError("The rendered chart holds no InferenceService; check the values.")
    modes = {o["metadata"]["annotations"].get("serving.kserve.io/deploymentMode") for o in isvcs}
    mode = "knative" if "Knative" in modes else "standard"
    flags: dict[str, list[str]] = {}
    pools, images = [], []
    claims: dict[str, list[str]] = {}
    for isvc in isvcs:
        name, predictor = isvc["metadata"]["name"], isvc["spec"]["predictor"]
        if mode == "knative":
            for flag in sorted(required_knative_flags(predictor)):
                flags.setdefault(flag, []).append(name)
        pools.append(inference_service_pool(isvc))
        for container in predictor["containers"]:
            images.append(container["image"])
            for item in container.get("env") or []:
                if item.get("name") == "STORAGE_URI" and str(item.get("value", "")).startswith("pvc://"):
                    claim = item["value"].removeprefix("pvc://").split("/", 1)[0]
                    claims.setdefault(claim, []).append(name)
    pools += loadtest_pools(objects)
    operator_kinds = sorted(
        {o["kind"] for o in objects if o.get("apiVersion", "").startswith("monitoring.coreos.com/")}
    )
    return Requirements(
        crds=tuple(f"{kind.lower()}s.monitoring.coreos.com" for kind in operator_kinds),
        namespace=namespace,
        mode=mode,
        knative_flags={k: tuple(v) for k, v in flags.items()},
        pools=tuple(pools),
        claims={k: tuple(v) for k, v in claims.items()},
        images=tuple(dict.fromkeys(images)),
    )


def pinned_versions(path: Path = VERSIONS) -> dict[str, str]:
    """manifests/versions.env as a mapping."""
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def _missing(exc: ApiException) -> bool:
    return exc.status == 404


def check(api: client.ApiClient, needs: Requirements, *, kserve_version: str | None = None) -> list[Problem]:
    """Every problem the cluster behind ``api`` has with ``needs``; an empty list means ready to install."""
    kserve_version = kserve_version or pinned_versions().get("KSERVE_VERSION")
    problems = _kserve(api, kserve_version)
    if needs.mode == "knative":
        problems += _knative(api, needs)
    else:
        problems += _metrics_server(api)
    problems += _monitoring(api, needs)
    problems += _nodes(api, needs)
    problems += _claims(api, needs)
    return problems


def _monitoring(api: client.ApiClient, needs: Requirements) -> list[Problem]:
    """The Prometheus Operator CRDs the rendered monitors need (helm install fails without them)."""
    problems = []
    for crd in needs.crds:
        try:
            client.ApiextensionsV1Api(api).read_custom_resource_definition(crd)
        except ApiException as exc:
            if not _missing(exc):
                raise
            problems.append(
                Problem(
                    "monitoring-crd",
                    f"CRD {crd} is missing: `helm install` would fail on the chart's monitor.",
                    "install kube-prometheus-stack (manifests/install-addons.sh monitoring), or set "
                    "monitoring.podMonitor.enabled=false and monitoring.serviceMonitor.enabled=false.",
                )
            )
    return problems


def _kserve(api: client.ApiClient, version: str | None) -> list[Problem]:
    fix = "run `make cluster-addons` (manifests/install-addons.sh kserve)."
    try:
        crd = client.ApiextensionsV1Api(api).read_custom_resource_definition(ISVC_CRD)
    except ApiException as exc:
        if not _missing(exc):
            raise
        return [Problem("kserve-crd", f"CRD {ISVC_CRD} is missing: KServe is not installed.", fix)]
    served = [v.name for v in crd.spec.versions if v.served]
    problems = []
    if "v1beta1" not in served:
        problems.append(
            Problem(
                "kserve-crd",
                f"CRD {ISVC_CRD} serves {', '.join(served)}, not v1beta1 "
                "(the chart's InferenceService version).",
                f"install KServe {version} with {fix}",
            )
        )
    try:
        deployment = client.AppsV1Api(api).read_namespaced_deployment("kserve-controller-manager", "kserve")
    except ApiException as exc:
        if not _missing(exc):
            raise
        return [
            *problems,
            Problem("kserve-controller", "Deployment kserve/kserve-controller-manager is missing.", fix),
        ]
    images = [c.image for c in deployment.spec.template.spec.containers if c.name == "manager"]
    tags = {image.rsplit(":", 1)[-1] for image in images if ":" in image.rsplit("/", 1)[-1]}
    if version and tags and version not in tags:
        problems.append(
            Problem(
                "kserve-version",
                f"the KServe controller runs {', '.join(sorted(tags))}; the chart's rules were checked "
                f"against {version} (manifests/versions.env).",
                f"install KServe {version} with {fix}",
            )
        )
    return problems


def _config_map(api: client.ApiClient, name: str, namespace: str) -> dict[str, str] | None:
    try:
        return client.CoreV1Api(api).read_namespaced_config_map(name, namespace).data or {}
    except ApiException as exc:
        if not _missing(exc):
            raise
        return None


def _knative(api: client.ApiClient, needs: Requirements) -> list[Problem]:
    features = _config_map(api, "config-features", "knative-serving")
    if features is None:
        return [
            Problem(
                "knative",
                "ConfigMap knative-serving/config-features is missing: Knative Serving is not installed, and "
                "mode=knative needs it.",
                "run `make cluster-addons`, or install with mode=standard.",
            )
        ]
    problems = []
    for flag, services in sorted(needs.knative_flags.items()):
        state = str(features.get(flag, "enabled" if flag in ENABLED_UPSTREAM else "disabled")).lower()
        if state == "disabled":
            problems.append(
                Problem(
                    "knative-flag",
                    f"{flag} is disabled, so Knative rejects {', '.join(services)}.",
                    f"kubectl patch configmap config-features -n knative-serving --type merge "
                    f'-p \'{{"data":{{"{flag}":"enabled"}}}}\' '
                    "(all flags: manifests/knative/config-features.yaml).",
                )
            )
    deployment = _config_map(api, "config-deployment", "knative-serving") or {}
    skipped = deployment.get("registries-skipping-tag-resolving")
    registries = [r.strip() for r in skipped.split(",")] if skipped else list(DEFAULT_SKIPPED_REGISTRIES)
    for image in needs.images:
        if "@sha256:" in image:
            continue
        first = image.split("/", 1)[0]
        registry = (
            first if "/" in image and ("." in first or ":" in first or first == "localhost") else "docker.io"
        )
        if registry not in registries:
            problems.append(
                Problem(
                    "image-resolution",
                    f"Knative resolves the tag of {image} to a digest through {registry} before any pod "
                    f"starts (it skips only {', '.join(registries)}); a private or unpushed image fails.",
                    f"set image.digest, or add {registry} to registries-skipping-tag-resolving in "
                    "knative-serving/config-deployment (manifests/knative/config-deployment.yaml), or give "
                    "the Knative controller read access to the registry.",
                )
            )
    return problems


def _metrics_server(api: client.ApiClient) -> list[Problem]:
    fix = "run `manifests/install-addons.sh metrics-server` (kind: --kubelet-insecure-tls is added)."
    try:
        service = client.ApiregistrationV1Api(api).read_api_service(METRICS_API)
    except ApiException as exc:
        if not _missing(exc):
            raise
        return [
            Problem(
                "metrics-server",
                f"APIService {METRICS_API} is missing: Standard mode's HPA gets no CPU metric and keeps "
                "minReplicas.",
                fix,
            )
        ]
    conditions = {c.type: c for c in (service.status.conditions if service.status else None) or []}
    available = conditions.get("Available")
    if available is None or available.status != "True":
        reason = f" ({available.reason}: {available.message})" if available else ""
        return [Problem("metrics-server", f"APIService {METRICS_API} is not Available{reason}.", fix)]
    return []


def _nodes(api: client.ApiClient, needs: Requirements) -> list[Problem]:
    return node_problems(client.CoreV1Api(api).list_node().items, needs.pools)


def _claims(api: client.ApiClient, needs: Requirements) -> list[Problem]:
    problems = []
    for claim, services in sorted(needs.claims.items()):
        try:
            client.CoreV1Api(api).read_namespaced_persistent_volume_claim(claim, needs.namespace)
        except ApiException as exc:
            if not _missing(exc):
                raise
            problems.append(
                Problem(
                    "pvc",
                    f"PersistentVolumeClaim {needs.namespace}/{claim} is missing; {', '.join(services)} "
                    "mount it and stay Pending.",
                    'create and fill it (charts/dr-serving/README.md, "Models from storage"), or use '
                    "source: image.",
                )
            )
    return problems
