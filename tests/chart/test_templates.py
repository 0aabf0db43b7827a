"""Templates besides the InferenceService (monitors, ServiceAccount, NetworkPolicy, helm test, NOTES)."""

from __future__ import annotations

import base64

import pytest
from chartkit import CHART, by_kind, render, run_helm

SELECTOR = {
    "app.kubernetes.io/name": "dr-serving",
    "app.kubernetes.io/instance": "dr-serving",
    "app.kubernetes.io/component": "predictor",
}


def test_lint_default_values() -> None:
    """helm lint --strict passes with the default values."""
    result = run_helm("lint", "--strict", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("ci_file", sorted(p.name for p in (CHART / "ci").glob("*-values.yaml")))
def test_lint_each_ci_values_file(ci_file: str) -> None:
    """helm lint --strict passes with each ci/*-values.yaml."""
    result = run_helm("lint", "--strict", str(CHART), "-f", str(CHART / "ci" / ci_file))
    assert "0 chart(s) failed" in result.stdout


def test_optional_objects_are_off_by_default() -> None:
    """Defaults render InferenceServices, the ServiceAccount and the helm test only."""
    kinds = sorted({obj["kind"] for obj in render()})
    assert kinds == ["ConfigMap", "InferenceService", "Pod", "ServiceAccount"]


@pytest.mark.parametrize(
    ("values", "port"), [({}, "user-port"), ("standard-values.yaml", "http1")], ids=["knative", "standard"]
)
def test_pod_monitor_scrapes_the_predictor_port_with_node_labels(values: str | dict, port: str) -> None:
    """PodMonitor: predictor pods, Knative's user-port (or the container port), node metadata relabelled."""
    (monitor,) = by_kind(render(values, "monitoring-values.yaml"), "PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    assert spec["selector"] == {"matchLabels": SELECTOR}
    assert spec["attachMetadata"] == {"node": True}
    (endpoint,) = spec["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == (port, "/metrics", "10s")
    relabel = {tuple(rule["sourceLabels"]): rule["targetLabel"] for rule in endpoint["relabelings"]}
    assert relabel[("__meta_kubernetes_node_label_kubernetes_io_arch",)] == "node_arch"
    assert relabel[("__meta_kubernetes_node_label_dr_serving_pool",)] == "node_pool"
    assert relabel[("__meta_kubernetes_node_label_node_kubernetes_io_instance_type",)] == "node_instance_type"
    assert relabel[("__meta_kubernetes_pod_node_name",)] == "node"


def test_service_monitor_selects_the_release_inference_services() -> None:
    """ServiceMonitor: the <isvc>-predictor Services of this release, scraped on the container port."""
    (monitor,) = by_kind(render("standard-values.yaml", "monitoring-values.yaml"), "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchExpressions"] == [
        {
            "key": "serving.kserve.io/inferenceservice",
            "operator": "In",
            "values": ["dr-serving-mobilenet-amd64", "dr-serving-mobilenet-graviton"],
        }
    ]
    assert monitor["spec"]["endpoints"][0]["targetPort"] == 8080


def test_service_account_is_annotated_and_used() -> None:
    """The ServiceAccount carries its annotations (e.g. IRSA) and every predictor runs as it."""
    objects = render("storage-uri-values.yaml")
    (account,) = by_kind(objects, "ServiceAccount")
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/dr-models-read"
    }
    assert account["automountServiceAccountToken"] is False
    names = {isvc["spec"]["predictor"]["serviceAccountName"] for isvc in by_kind(objects, "InferenceService")}
    assert names == {"dr-serving"}


def test_existing_service_account_is_used_when_not_created() -> None:
    """serviceAccount.create false: no ServiceAccount object, the named one is used."""
    objects = render({"serviceAccount": {"create": False, "name": "models-reader"}})
    assert not by_kind(objects, "ServiceAccount")
    assert (
        by_kind(objects, "InferenceService")[0]["spec"]["predictor"]["serviceAccountName"] == "models-reader"
    )


def test_network_policy_admits_listed_namespaces_and_release_pods() -> None:
    """NetworkPolicy: predictor pods, ingress from the listed namespaces and this release's pods only."""
    (policy,) = by_kind(render("networkpolicy-values.yaml"), "NetworkPolicy")
    assert policy["spec"]["podSelector"] == {"matchLabels": SELECTOR}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    sources = policy["spec"]["ingress"][0]["from"]
    namespaces = [s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for s in sources[:-1]]
    assert namespaces == ["knative-serving", "kourier-system", "kserve", "monitoring"]
    assert sources[-1] == {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "dr-serving"}}}


def test_helm_test_pod_sends_one_prediction_to_each_service() -> None:
    """helm test: one restricted container, restartPolicy Never, a real JPEG sent to each InferenceService."""
    objects = render(
        "profiles-values.yaml", {"tests": {"image": "curlimages/curl:8.17.0", "timeoutSeconds": 30}}
    )
    (pod,) = by_kind(objects, "Pod")
    (image_map,) = by_kind(objects, "ConfigMap")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    (main,) = pod["spec"]["containers"]
    assert main["image"] == "curlimages/curl:8.17.0"
    assert main["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    script = main["command"][-1]
    for target in ("dr-serving-mobilenet-amd64/mobilenet", "dr-serving-vgg19-graviton/vgg19"):
        assert target in script
    assert "--max-time 30" in script
    assert "http://${isvc}-predictor.dr.svc.cluster.local/v1/models/${model}:predict" in script
    jpeg = base64.b64decode(image_map["binaryData"]["fundus.jpg"])
    assert jpeg[:3] == b"\xff\xd8\xff"
    assert jpeg == (CHART / "files" / "fundus.jpg").read_bytes()


def test_helm_test_can_be_switched_off() -> None:
    """tests.enabled false renders no test pod or image."""
    kinds = {obj["kind"] for obj in render({"tests": {"enabled": False}})}
    assert "Pod" not in kinds and "ConfigMap" not in kinds


def test_every_object_carries_the_standard_labels() -> None:
    """app.kubernetes.io/* labels and commonLabels on every rendered object."""
    objects = render(
        "monitoring-values.yaml", "networkpolicy-values.yaml", {"commonLabels": {"team": "retina"}}
    )
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "dr-serving"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/part-of"] == "dr-serving"
        assert labels["helm.sh/chart"] == "dr-serving-0.1.0"
        assert labels["team"] == "retina"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {},
            [
                'curl -H "Host: $HOST"',
                "/v1/models/mobilenet:predict",
                "/v2/models/mobilenet/infer",
                "/invocations",
            ],
        ),
        ("standard-values.yaml", ["port-forward svc/dr-serving-mobilenet-graviton-predictor 8081:80"]),
    ],
    ids=["knative", "standard"],
)
def test_notes_tell_how_to_reach_each_endpoint(values: str | dict, expected: list[str], tmp_path) -> None:
    """NOTES.txt prints curl examples for V1, V2 and SageMaker per InferenceService."""
    args = ["install", "dr-serving", str(CHART), "--dry-run=client", "--namespace", "dr"]
    if isinstance(values, str):
        args += ["-f", str(CHART / "ci" / values)]
    notes = run_helm(*args).stdout.split("NOTES:", 1)[1]
    for text in expected:
        assert text in notes
