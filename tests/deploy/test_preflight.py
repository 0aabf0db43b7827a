"""``dr_deploy.preflight`` and ``dr-serving deploy preflight`` against recorded API answers, one per problem.

The release is rendered by the real helm (``ReleaseManager.template``); the cluster answers come from
``recorded/`` through a real kubernetes ApiClient (``replay.py``). A healthy kind cluster answers with no
problem; each test swaps one answer for the broken one and expects exactly that problem's line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from replay import api_with

from dr_cli.main import main
from dr_deploy import commands, preflight
from dr_deploy.release import CHART_DIR, ReleaseManager, ReleaseSpec

CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/inferenceservices.serving.kserve.io"
CONTROLLER = "/apis/apps/v1/namespaces/kserve/deployments/kserve-controller-manager"
FEATURES = "/api/v1/namespaces/knative-serving/configmaps/config-features"
DEPLOYMENT = "/api/v1/namespaces/knative-serving/configmaps/config-deployment"
NODES = "/api/v1/nodes"
METRICS = "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io"
PVC = "/api/v1/namespaces/dr/persistentvolumeclaims/dr-models"
PODMONITOR_CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/podmonitors.monitoring.coreos.com"
KIND = str(CHART_DIR / "ci" / "kind-values.yaml")

HEALTHY = {
    CRD: "crd-inferenceservices.json",
    CONTROLLER: "deployment-kserve-controller.json",
    FEATURES: "configmap-config-features.json",
    DEPLOYMENT: "configmap-config-deployment.json",
    NODES: "nodes-kind.json",
    METRICS: "apiservice-metrics-available.json",
    PVC: "pvc-dr-models.json",
    PODMONITOR_CRD: "crd-podmonitors.json",
}


_RENDERED: dict[str, list[dict[str, Any]]] = {}


def _render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The kind values plus ``values`` rendered by the real helm (cached by content: a second each)."""
    key = json.dumps(values, sort_keys=True)
    if key not in _RENDERED:
        spec = ReleaseSpec(namespace="dr", values_files=(Path(KIND),), values=values)
        _RENDERED[key] = ReleaseManager().template(spec)
    return _RENDERED[key]


def _needs(**values: Any) -> preflight.Requirements:
    """What the kind values plus ``values`` need from the cluster."""
    return preflight.requirements(_render(values), "dr")


def _check(needs: preflight.Requirements, **broken: str) -> list[str]:
    answers = {**HEALTHY, **{globals()[key]: value for key, value in broken.items()}}
    api, _ = api_with({("GET", path): [name] for path, name in answers.items()})
    return [problem.line() for problem in preflight.check(api, needs, kserve_version="v0.20.0")]


def test_healthy_kind_cluster_has_no_problem() -> None:
    """kind-config.yaml's nodes, the add-ons of install-addons.sh, the kind values: nothing to fix."""
    assert _check(_needs()) == []
    assert _check(_needs(mode="standard")) == []


def test_requirements_follow_the_values() -> None:
    """Knative mode needs the placement and securityContext flags; vgg19 from a PVC needs claim dr-models."""
    needs = _needs(models={"vgg19": {"enabled": True}})
    assert needs.mode == "knative"
    assert set(needs.knative_flags) == {
        "kubernetes.podspec-nodeselector",
        "kubernetes.podspec-tolerations",
        "kubernetes.podspec-securitycontext",
        "kubernetes.podspec-volumes-emptydir",
    }
    assert needs.knative_flags["kubernetes.podspec-tolerations"] == (
        "dr-serving-mobilenet-graviton",
        "dr-serving-vgg19-graviton",
    )
    assert needs.claims == {"dr-models": ("dr-serving-vgg19-amd64", "dr-serving-vgg19-graviton")}
    assert needs.images == ("kind.local/dr-serving/predictor:0.1.0-lite",)


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (
            {"CRD": "status-not-found.json"},
            "kserve-crd: CRD inferenceservices.serving.kserve.io is missing: KServe is not installed. "
            "Fix: run `make cluster-addons` (manifests/install-addons.sh kserve).",
        ),
        (
            {"CRD": "crd-inferenceservices-v1alpha1.json"},
            "kserve-crd: CRD inferenceservices.serving.kserve.io serves v1alpha1, not v1beta1",
        ),
        (
            {"CONTROLLER": "deployment-kserve-controller-v0.19.1.json"},
            "kserve-version: the KServe controller runs v0.19.1; the chart's rules were checked against "
            "v0.20.0",
        ),
        (
            {"FEATURES": "configmap-config-features-upstream.json"},
            "knative-flag: kubernetes.podspec-nodeselector is disabled, so Knative rejects "
            "dr-serving-mobilenet-amd64, dr-serving-mobilenet-graviton. Fix: kubectl patch configmap "
            "config-features -n knative-serving --type merge "
            '-p \'{"data":{"kubernetes.podspec-nodeselector":"enabled"}}\'',
        ),
        (
            {"FEATURES": "status-not-found.json"},
            "knative: ConfigMap knative-serving/config-features is missing: Knative Serving is not installed",
        ),
        (
            {"PODMONITOR_CRD": "status-not-found.json"},
            "monitoring-crd: CRD podmonitors.monitoring.coreos.com is missing: `helm install` would fail",
        ),
        (
            {"NODES": "nodes-amd64-only.json"},
            "nodes: no schedulable node has dr-serving/pool=graviton with taints that pool graviton "
            "tolerates, so dr-serving-mobilenet-graviton stays Pending. Fix: add such a node (group), or set "
            "pools.graviton.enabled=false.",
        ),
    ],
    ids=[
        "kserve-missing",
        "kserve-crd-version",
        "kserve-controller-version",
        "knative-flag-off",
        "no-knative",
        "no-prometheus-operator",
        "no-arm64-node",
    ],
)
def test_each_problem_is_one_line_with_its_fix(broken: dict[str, str], expected: str) -> None:
    """One broken answer gives one problem line, naming what is wrong and how to fix it."""
    lines = _check(_needs(), **broken)
    matching = [line for line in lines if line.startswith(expected) or expected in line]
    assert matching, lines
    assert all("Fix: " in line for line in lines)
    if broken != {"FEATURES": "configmap-config-features-upstream.json"}:
        assert len(lines) == 1, lines


def test_upstream_feature_flags_name_every_missing_flag() -> None:
    """With upstream's config-features every flag the pods need is reported (emptyDir is on upstream)."""
    lines = _check(_needs(), FEATURES="configmap-config-features-upstream.json")
    flags = sorted(line.split()[1] for line in lines)
    assert flags == [
        "kubernetes.podspec-nodeselector",
        "kubernetes.podspec-securitycontext",
        "kubernetes.podspec-tolerations",
    ]


def test_fieldref_env_needs_its_flag() -> None:
    """knative.fieldRefEnv=true on a cluster with the project's flags: kubernetes.podspec-fieldref is off."""
    (line,) = _check(_needs(knative={"fieldRefEnv": True}))
    assert line.startswith("knative-flag: kubernetes.podspec-fieldref is disabled")


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ("status-not-found.json", "metrics-server: APIService v1beta1.metrics.k8s.io is missing"),
        (
            "apiservice-metrics-unavailable.json",
            "metrics-server: APIService v1beta1.metrics.k8s.io is not Available (MissingEndpoints",
        ),
    ],
    ids=["missing", "unavailable"],
)
def test_standard_mode_needs_metrics_server(broken: str, expected: str) -> None:
    """Finding 7: Standard mode's HPA needs the resource-metrics API."""
    (line,) = _check(_needs(mode="standard"), METRICS=broken)
    assert line.startswith(expected)


def test_missing_pvc_is_named_with_the_services_that_mount_it() -> None:
    """Finding 8: models.vgg19 from pvc://dr-models waits for a claim nobody created."""
    (line,) = _check(_needs(models={"vgg19": {"enabled": True}}), PVC="status-not-found.json")
    assert line.startswith(
        "pvc: PersistentVolumeClaim dr/dr-models is missing; "
        "dr-serving-vgg19-amd64, dr-serving-vgg19-graviton"
    )


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (
            {"image": {"repository": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/dr-serving/predictor"}},
            True,
        ),
        ({"image": {"repository": "dr-serving/predictor"}}, True),
        ({"image": {"repository": "dr-serving/predictor", "digest": "sha256:" + "ab" * 32}}, False),
        ({}, False),
    ],
    ids=["ecr-tag", "docker-hub-tag", "digest", "kind-local"],
)
def test_image_tags_knative_would_resolve(values: dict[str, Any], problem: bool) -> None:
    """Finding 10: a tag outside registries-skipping-tag-resolving is resolved by Knative's controller."""
    lines = _check(_needs(**values))
    assert bool(lines) == problem, lines
    if problem:
        (line,) = lines
        assert line.startswith("image-resolution: Knative resolves the tag of ")
        assert "Fix: set image.digest" in line


def test_preflight_flags_match_the_admission_rules() -> None:
    """Preflight asks for exactly the flags whose absence breaks the admission rules of the chart tests."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chart"))
    from admission import knative_violations, ksvc_pod_spec, project_flags

    # Project flags plus fieldref: every rendered pod passes; a flag is needed if turning it off fails one.
    flags = {**project_flags(), "kubernetes.podspec-fieldref": "enabled"}
    enabled = [f for f, state in flags.items() if state == "enabled"]
    for values in (
        {},
        {"knative": {"fieldRefEnv": True}},
        {"models": {"mobilenet": {"source": "storageUri", "storageUri": "s3://dr-models/mobilenet"}}},
    ):
        for isvc in (o for o in _render(values) if o["kind"] == "InferenceService"):
            pod = ksvc_pod_spec(isvc)
            assert knative_violations(pod, flags) == []
            needed = {f for f in enabled if knative_violations(pod, {**flags, f: "disabled"})}
            assert preflight.required_knative_flags(pod) == needed, isvc["metadata"]["name"]


@pytest.fixture
def cli_answers(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Recorded answers for the ApiClient ``dr-serving deploy preflight`` builds."""
    answers = dict(HEALTHY)
    monkeypatch.setattr(
        commands, "_cluster_api", lambda args: api_with({("GET", p): [n] for p, n in answers.items()})[0]
    )
    return answers


def test_cli_exits_1_with_one_line_per_problem(cli_answers, capsys: pytest.CaptureFixture[str]) -> None:
    """``dr-serving deploy preflight``: problems on stdout, one Error line, exit 1; clean cluster exits 0."""
    cli_answers[NODES] = "nodes-amd64-only.json"
    cli_answers[PVC] = "status-not-found.json"
    argv = ["deploy", "preflight", "-n", "dr", "-f", KIND, "--set", "models.vgg19.enabled=true"]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["nodes", "nodes", "pvc"]
    assert err == "Error: preflight found 3 problem(s); fix them before `helm install`.\n"
    cli_answers.update(HEALTHY)
    assert main(["deploy", "preflight", "-n", "dr", "-f", KIND]) == 0
    assert capsys.readouterr().out.startswith(
        "preflight: no problems (KServe, Knative flags and image resolution"
    )


def test_make_deploy_runs_preflight_before_installing() -> None:
    """``make deploy`` checks the cluster first (PREFLIGHT=0 skips it) with the same values it installs."""
    text = (CHART_DIR.parents[1] / "make" / "cluster.mk").read_text()
    recipe = text.split("\ndeploy:", 1)[1].split("\n.PHONY", 1)[0]
    preflight_at = recipe.index("deploy preflight --namespace")
    assert preflight_at < recipe.index("upgrade --install") < recipe.index("deploy wait")
    assert "$(foreach f,$(DEPLOY_VALUES),-f $(f)) --set image.flavour=$(FLAVOUR) $(DEPLOY_ARGS)" in recipe


def test_notes_point_to_preflight() -> None:
    """NOTES.txt tells the user to run preflight (tests/chart/test_templates.py renders it for real)."""
    notes = (CHART_DIR / "templates" / "NOTES.txt").read_text()
    assert (
        "dr-serving deploy preflight --namespace {{ .Release.Namespace }} --release {{ .Release.Name }}"
        in notes
    )


def test_load_generator_needs_a_node_of_its_own_pool() -> None:
    """``loadtest.enabled``: the master and workers need a node with the loadgen label and a taint they
    tolerate (kind-config.yaml's loadgen worker); a kind cluster created without that worker is named."""
    needs = _needs(loadtest={"enabled": True})
    (pool,) = [p for p in needs.pools if p.pool == "loadgen"]
    assert pool.workloads == ("dr-serving-loadtest-master", "dr-serving-loadtest-worker")
    assert pool.node_selector == {"dr-serving/pool": "loadgen"}
    assert _check(needs) == []
    assert _check(needs, NODES="nodes-kind-no-loadgen.json") == [
        "nodes: no schedulable node has dr-serving/pool=loadgen with taints that pool loadgen tolerates, so "
        "dr-serving-loadtest-master and dr-serving-loadtest-worker stay Pending. Fix: add a node (group) "
        "with that label and a taint loadtest.tolerations tolerates (kind: kind-config.yaml's loadgen "
        "worker: make kind-down kind-up), or set loadtest.nodeSelector."
    ]
    assert _check(_needs(), NODES="nodes-kind-no-loadgen.json") == []
