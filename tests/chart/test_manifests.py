"""manifests/: pinned versions, Knative/KServe patches, Prometheus values, dashboard, install script."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import ROOT, validate_builtin

MANIFESTS = ROOT / "manifests"
OBJECT_FILES = sorted(p for p in MANIFESTS.rglob("*.yaml") if p.name != "kube-prometheus-stack-values.yaml")
# Files applied as patches onto upstream objects: they must not carry metadata.labels (finding 15).
PATCH_FILES = [p for p in OBJECT_FILES if p.parent.name in ("knative", "kserve")]
# Metric names fixed by docs/architecture.md (plus KServe's own), the only ones the dashboard may query.
CONTRACT_METRICS = {
    "dr_model_load_seconds",
    "dr_startup_seconds",
    "dr_inference_batch_seconds",
    "dr_inference_image_seconds",
    "dr_batch_size",
    "dr_predictions_total",
    "dr_rejected_requests_total",
    "dr_model_info",
    "request_preprocess_seconds",
    "request_predict_seconds",
    "request_postprocess_seconds",
    "drlab_request_seconds",
    "drlab_server_prediction_seconds",
}


def _versions() -> dict[str, str]:
    lines = (MANIFESTS / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _object(name: str) -> dict[str, Any]:
    return yaml.safe_load((MANIFESTS / name).read_text())


def test_versions_are_the_ones_the_admission_rules_were_read_at() -> None:
    """KServe v0.20.0 and Knative 1.21.1 (whose code tests/chart/test_admission.py cites), Kourier of the same
    Knative release (findings 4, 18), exact versions, and a known-good fallback line for each risky pin."""
    versions = _versions()
    assert versions["KSERVE_VERSION"] == "v0.20.0"
    assert versions["KNATIVE_SERVING_VERSION"] == versions["KNATIVE_KOURIER_VERSION"] == "knative-v1.21.1"
    assert re.fullmatch(r"v1\.(1[7-9]|2\d)\.\d+", versions["CERT_MANAGER_VERSION"])
    assert re.fullmatch(r"v\d+\.\d+\.\d+", versions["METRICS_SERVER_VERSION"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", versions["KUBE_PROMETHEUS_STACK_VERSION"])
    text = (MANIFESTS / "versions.env").read_text()
    assert "Known-good fallback" in text and "CERT_MANAGER_VERSION=v1.17.0" in text


@pytest.mark.parametrize("path", PATCH_FILES, ids=[str(p.relative_to(MANIFESTS)) for p in PATCH_FILES])
def test_each_patch_file_is_one_object_that_leaves_upstream_labels_alone(path: Path) -> None:
    """One object per file, valid (built-in kinds strictly for Kubernetes 1.32), and no metadata.labels: a
    merge patch would overwrite upstream's labels (finding 15; knative-v1.21.1
    config/core/configmaps/features.yaml:20-23, net-kourier config/300-gateway.yaml:141-145)."""
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert len(documents) == 1
    (obj,) = documents
    if obj["apiVersion"] in ("v1", "apps/v1"):
        validate_builtin(obj)
    assert "labels" not in obj["metadata"]


def test_knative_features_allow_pool_placement_and_restricted_pods() -> None:
    """config-features enables nodeSelector, affinity, tolerations (pool placement) and emptyDir (/tmp), and
    it is the one place naming every flag the chart needs, fieldref included (finding 14)."""
    text = (MANIFESTS / "knative" / "config-features.yaml").read_text()
    data = yaml.safe_load(text)["data"]
    for flag in ("nodeselector", "affinity", "tolerations", "volumes-emptydir", "securitycontext"):
        assert data[f"kubernetes.podspec-{flag}"] == "enabled"
    assert "kubernetes.podspec-fieldref" in text
    readme = (ROOT / "charts" / "dr-serving" / "README.md").read_text()
    assert "manifests/knative/config-features.yaml" in readme


def test_kind_images_skip_tag_resolution() -> None:
    """config-deployment skips digest resolution for kind.local (the tag `make kind-load` uses)."""
    data = _object("knative/config-deployment.yaml")["data"]
    assert "kind.local" in data["registries-skipping-tag-resolving"].split(",")


def test_fast_autoscaler_reaches_zero_quickly_within_knative_limits() -> None:
    """The experiment autoscaler keeps scale-to-zero on with a window of at least Knative's 6 s minimum."""
    data = _object("knative/config-autoscaler-fast.yaml")["data"]
    assert data["enable-scale-to-zero"] == "true"
    window, grace = (int(data[key].rstrip("s")) for key in ("stable-window", "scale-to-zero-grace-period"))
    assert window >= 6 and window + grace <= 30


def test_node_ports_match_kind_port_mappings() -> None:
    """Kourier, Prometheus and Grafana NodePorts are the ports kind-config.yaml maps to 127.0.0.1."""
    kind = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    mapped = {
        m["containerPort"]: m["hostPort"] for n in kind["nodes"] for m in n.get("extraPortMappings", [])
    }
    kourier = _object("knative/kourier-service-nodeport.yaml")["spec"]["ports"][0]["nodePort"]
    stack = yaml.safe_load((MANIFESTS / "monitoring" / "kube-prometheus-stack-values.yaml").read_text())
    assert mapped[kourier] == 8080
    assert mapped[stack["prometheus"]["service"]["nodePort"]] == 9090
    assert mapped[stack["grafana"]["service"]["nodePort"]] == 3000


def test_prometheus_selects_monitors_of_every_release() -> None:
    """kube-prometheus-stack picks up the chart's PodMonitor; Grafana loads labelled dashboard ConfigMaps."""
    stack = yaml.safe_load((MANIFESTS / "monitoring" / "kube-prometheus-stack-values.yaml").read_text())
    spec = stack["prometheus"]["prometheusSpec"]
    assert spec["podMonitorSelectorNilUsesHelmValues"] is False
    assert stack["grafana"]["sidecar"]["dashboards"]["label"] == "grafana_dashboard"


def test_kserve_ingress_overrides_disable_istio_virtual_host() -> None:
    """With Kourier, KServe must not create Istio VirtualServices."""
    overrides = json.loads((MANIFESTS / "kserve" / "ingress-overrides.json").read_text())
    assert overrides["disableIstioVirtualHost"] is True


def test_dashboard_shows_latency_per_pool_and_model_from_contract_metrics() -> None:
    """The dashboard queries only contract metrics and groups latency by pool and model."""
    dashboard = json.loads((MANIFESTS / "monitoring" / "dashboards" / "dr-serving-latency.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    metrics = {
        re.sub(r"_(bucket|sum|count)$", "", m)
        for e in expressions
        for m in re.findall(r"\b(d\w+|request_\w+)\{", e)
    }
    assert metrics <= CONTRACT_METRICS
    assert {"dr_inference_image_seconds", "dr_inference_batch_seconds", "drlab_request_seconds"} <= metrics
    latency = [e for e in expressions if "dr_inference_image_seconds" in e]
    assert all("model" in e and "pool" in e and "histogram_quantile" in e for e in latency)
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_install_script_applies_pinned_urls_in_order() -> None:
    """install-addons.sh --dry-run: cert-manager, Knative + Kourier, KServe, monitoring, pinned."""
    result = subprocess.run(
        ["bash", str(MANIFESTS / "install-addons.sh"), "--dry-run"],
        capture_output=True,
        text=True,
        check=True,
    )
    versions = _versions()
    lines = result.stdout.splitlines()
    applied = [line.split(" -f ", 1)[1] for line in lines if " apply " in line and " -f http" in line]
    assert applied == [
        f"https://github.com/cert-manager/cert-manager/releases/download/{versions['CERT_MANAGER_VERSION']}/cert-manager.yaml",
        f"https://github.com/knative/serving/releases/download/{versions['KNATIVE_SERVING_VERSION']}/serving-crds.yaml",
        f"https://github.com/knative/serving/releases/download/{versions['KNATIVE_SERVING_VERSION']}/serving-core.yaml",
        f"https://github.com/knative-extensions/net-kourier/releases/download/{versions['KNATIVE_KOURIER_VERSION']}/kourier.yaml",
        f"https://github.com/kserve/kserve/releases/download/{versions['KSERVE_VERSION']}/kserve-crds.yaml",
        f"https://github.com/kserve/kserve/releases/download/{versions['KSERVE_VERSION']}/kserve.yaml",
        f"https://github.com/kserve/kserve/releases/download/{versions['KSERVE_VERSION']}/kserve-cluster-resources.yaml",
        f"https://github.com/kubernetes-sigs/metrics-server/releases/download/{versions['METRICS_SERVER_VERSION']}/components.yaml",
    ]
    patch_files = [Path(line.split("--patch-file ", 1)[1]) for line in lines if "--patch-file" in line]
    assert {p.name for p in patch_files} >= {"config-features.yaml", "config-deployment.yaml"}
    assert all(p.is_file() for p in patch_files)
    assert any(f"--version {versions['KUBE_PROMETHEUS_STACK_VERSION']}" in line for line in lines)
    assert "config-autoscaler-fast.yaml" not in result.stdout


def test_install_script_rejects_an_unknown_step() -> None:
    """An unknown step is a usage error (exit 2) with one line naming it."""
    result = subprocess.run(
        ["bash", str(MANIFESTS / "install-addons.sh"), "--dry-run", "istio"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.startswith("Error: unknown step 'istio'")
