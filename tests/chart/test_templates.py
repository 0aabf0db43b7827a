"""Templates besides the InferenceService (monitors, ServiceAccount, NetworkPolicy, helm test, NOTES)."""

from __future__ import annotations

import base64
import re

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


def test_defaults_render_the_locked_down_set() -> None:
    """Defaults: InferenceServices, the ServiceAccount, the NetworkPolicy and the helm test; no monitors."""
    kinds = sorted({obj["kind"] for obj in render()})
    assert kinds == ["ConfigMap", "InferenceService", "NetworkPolicy", "Pod", "ServiceAccount"]


@pytest.mark.parametrize(
    ("values", "port"), [({}, "user-port"), ("standard-values.yaml", "http1")], ids=["knative", "standard"]
)
def test_pod_monitor_scrapes_the_predictor_port_with_node_labels(values: str | dict, port: str) -> None:
    """PodMonitor: predictor pods, found on Knative's user-port (or the container port), scraped on the
    metrics port 9102 (the address rewritten: the port is not declared), node metadata relabelled."""
    (monitor,) = by_kind(render(values, "monitoring-values.yaml"), "PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    assert spec["selector"] == {"matchLabels": SELECTOR}
    assert spec["attachMetadata"] == {"node": True}
    (endpoint,) = spec["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == (port, "/metrics", "10s")
    assert _scraped_address(endpoint, "10.1.2.3:8080") == "10.1.2.3:9102"
    assert _scraped_address(endpoint, "[fd00::7]:8080") == "[fd00::7]:9102"
    relabel = {tuple(rule["sourceLabels"]): rule["targetLabel"] for rule in endpoint["relabelings"]}
    assert relabel[("__meta_kubernetes_node_label_kubernetes_io_arch",)] == "node_arch"
    assert relabel[("__meta_kubernetes_node_label_dr_serving_pool",)] == "node_pool"
    assert relabel[("__meta_kubernetes_node_label_node_kubernetes_io_instance_type",)] == "node_instance_type"
    assert relabel[("__meta_kubernetes_pod_node_name",)] == "node"


@pytest.mark.parametrize("values", [{}, "standard-values.yaml"], ids=["knative", "standard"])
def test_monitors_keep_the_operators_namespace_and_pod_labels(values: str | dict) -> None:
    """A cold start finds a pod's gauges by the ``namespace`` and ``pod`` labels prometheus-operator v0.88.1
    gives every target (pkg/prometheus/promcfg.go:1488-1502 PodMonitor, :2003-2030 ServiceMonitor); the
    chart's relabelings run after them (:1549, :2097), so none may overwrite or drop either label."""
    objects = render(values, "monitoring-values.yaml")
    monitors = [*by_kind(objects, "PodMonitor"), *by_kind(objects, "ServiceMonitor")]
    assert len(monitors) == (2 if values else 1)
    for monitor in monitors:
        for endpoint in monitor["spec"].get("podMetricsEndpoints") or monitor["spec"]["endpoints"]:
            rules = endpoint.get("relabelings", []) + endpoint.get("metricRelabelings", [])
            assert rules
            assert all(rule.get("targetLabel") not in {"namespace", "pod"} for rule in rules)
            assert all(rule.get("action", "replace") in {"replace"} for rule in rules)
            # honorLabels would let an exposed pod/namespace label win; the predictor exposes none anyway.
            assert not endpoint.get("honorLabels", False)


def _scraped_address(endpoint: dict, discovered: str) -> str:
    """The ``__address__`` Prometheus scrapes after the endpoint's relabelings (replace rules, anchored)."""
    labels = {"__address__": discovered}
    for rule in endpoint["relabelings"]:
        if rule.get("targetLabel") != "__address__":
            continue
        value = ";".join(labels.get(name, "") for name in rule["sourceLabels"])
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if match:
            template = re.sub(r"\$\{(\w+)\}|\$(\w+)", r"\\g<\1\2>", rule.get("replacement", "$1"))
            labels["__address__"] = match.expand(template)
    return labels["__address__"]


def test_metrics_port_reaches_the_predictor_and_is_not_declared() -> None:
    """DR_METRICS_PORT is the chart's metrics port, and no container declares it (Knative admits one port)."""
    for values in ({}, "standard-values.yaml"):
        for isvc in by_kind(render(values, {"monitoring": {"metricsPort": 9200}}), "InferenceService"):
            (container,) = isvc["spec"]["predictor"]["containers"]
            env = {item["name"]: item.get("value") for item in container["env"]}
            assert env["DR_METRICS_PORT"] == "9200"
            assert [port["containerPort"] for port in container["ports"]] == [8080]


@pytest.mark.parametrize("port", [8012, 9090, 8080, 80])
def test_metrics_port_may_not_take_a_queue_proxy_or_serving_port(port: int) -> None:
    """The values schema refuses queue-proxy's ports, the serving port and privileged ports."""
    result = run_helm("template", "x", str(CHART), "--set", f"monitoring.metricsPort={port}", check=False)
    assert result.returncode != 0
    assert "metricsPort" in result.stderr


def test_service_monitor_is_standard_mode_only() -> None:
    """Finding 13: in Knative mode the matching Services never expose 8080: no ServiceMonitor there."""
    assert not by_kind(render("monitoring-values.yaml"), "ServiceMonitor")
    assert by_kind(render("standard-values.yaml", "monitoring-values.yaml"), "ServiceMonitor")


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
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["targetPort"] == 8080
    assert _scraped_address(endpoint, "10.1.2.3:8080") == "10.1.2.3:9102"


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


def _policy(objects: list[dict], name: str = "dr-serving") -> dict:
    """The NetworkPolicy called ``name`` (the predictors'; ``dr-serving-test`` is the helm test pod's)."""
    (policy,) = [o for o in by_kind(objects, "NetworkPolicy") if o["metadata"]["name"] == name]
    return policy


def _rules(policy: dict) -> dict[tuple[str, ...], set[tuple[str, int]]]:
    """Ingress rules as {peer names: {(protocol, port)}}; a peer is a namespace name or "pod:<component>"."""
    rules = {}
    for rule in policy["spec"]["ingress"]:
        peers = tuple(
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            if "namespaceSelector" in peer
            else "pod:" + peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
            for peer in rule["from"]
        )
        rules[peers] = {(port["protocol"], port["port"]) for port in rule["ports"]}
    return rules


def test_network_policy_is_on_and_opens_only_the_ports_knative_uses() -> None:
    """Knative mode: Kourier and the activator reach queue-proxy (8012), the autoscaler its metrics (9090),
    Prometheus the predictor's metrics port (9102); nothing else (knative-v1.21.1
    pkg/networking/constants.go:24,38)."""
    policy = _policy(render())
    assert policy["spec"]["podSelector"] == {"matchLabels": SELECTOR}
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert _rules(policy) == {
        ("kourier-system",): {("TCP", 8012)},
        ("knative-serving",): {("TCP", 8012), ("TCP", 9090)},
        ("monitoring",): {("TCP", 9102)},
    }


def test_network_policy_in_standard_mode_opens_the_predictor_port_only() -> None:
    """Standard mode: gateway and this release's helm test pod reach port 8080 only, monitoring 9102 only."""
    policy = _policy(render("standard-values.yaml"))
    assert _rules(policy) == {
        ("kourier-system",): {("TCP", 8080)},
        ("monitoring",): {("TCP", 9102)},
        ("pod:test",): {("TCP", 8080)},
    }


@pytest.mark.parametrize(
    ("values", "store"),
    [({}, False), ("storage-uri-values.yaml", True), ({"models": {"vgg19": {"enabled": True}}}, False)],
    ids=["baked-model", "s3-model", "pvc-model"],
)
def test_network_policy_egress_is_dns_plus_the_model_store_when_downloading(
    values: str | dict, store: bool
) -> None:
    """Egress: DNS in kube-system always; HTTPS to the model store only when a model downloads (not pvc://)."""
    policy = _policy(render(values))
    dns, *rest = policy["spec"]["egress"]
    assert dns["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
    ]
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    if store:
        (download,) = rest
        assert download["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}]
        assert download["ports"] == [{"protocol": "TCP", "port": 443}]
    else:
        assert rest == []


@pytest.mark.parametrize(
    ("values", "peer", "port"),
    [
        ({}, {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kourier-system"}}}, 8081),
        ("standard-values.yaml", {"podSelector": {"matchLabels": SELECTOR}}, 8080),
    ],
    ids=["knative", "standard"],
)
def test_helm_test_pod_reaches_only_dns_and_the_predictors(values: str | dict, peer: dict, port: int) -> None:
    """The test pod's own policy: no ingress; egress to DNS and to Kourier's internal gateway (8081) or the
    predictor pods (8080)."""
    policy = _policy(render(values), "dr-serving-test")
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in policy["spec"]
    _, serving = policy["spec"]["egress"]
    assert serving == {"to": [peer], "ports": [{"protocol": "TCP", "port": port}]}


def test_no_service_account_token_in_any_configuration() -> None:
    """automountServiceAccountToken is false on every predictor pod, with or without our ServiceAccount."""
    for values in ({}, {"serviceAccount": {"create": False}}, "standard-values.yaml"):
        for isvc in by_kind(render(values), "InferenceService"):
            assert isvc["spec"]["predictor"]["automountServiceAccountToken"] is False


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
    objects = render("monitoring-values.yaml", "standard-values.yaml", {"commonLabels": {"team": "retina"}})
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


def _notes(*args: str) -> str:
    result = run_helm("install", "dr-serving", str(CHART), "--dry-run=client", "--namespace", "dr", *args)
    return result.stdout.split("NOTES:", 1)[1]


def test_notes_point_to_preflight_and_warn_about_both_pools_and_pvcs() -> None:
    """Findings 8, 9: NOTES names preflight, the two architectures the defaults need and any PVC to create."""
    notes = _notes("--set", "models.vgg19.enabled=true")
    assert "dr-serving deploy preflight --namespace dr --release dr-serving" in notes
    assert "need amd64 AND arm64 nodes" in notes
    assert "dr-serving-vgg19-amd64 mounts PVC dr-models: create and fill it first" in notes
    single = _notes("--set", "pools.graviton.enabled=false")
    assert "AND arm64" not in single and "mounts PVC" not in single


def test_helm_test_tries_every_target_before_failing() -> None:
    """Finding 9: one unschedulable pool no longer stops the test before the others are tried."""
    (pod,) = by_kind(render(), "Pod")
    script = pod["spec"]["containers"][0]["command"][-1]
    assert "set -e" not in script
    assert 'failed="${failed} ${isvc}"' in script
    assert 'if [ -n "${failed}" ]; then echo "Failed:${failed}" >&2; exit 1; fi' in script
