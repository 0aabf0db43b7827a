"""install-addons.sh against a stand-in kubectl/helm that fails like the API server (standin_kubectl.py).

The catalogue below says what each pinned release asset holds, from the upstream build inputs (read at the
pinned tags, cited per entry). The script must install everything on an empty cluster with no failure; the
stand-in itself must reject the orders findings 2 and 3 describe, or the test would prove nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from chartkit import ROOT

SCRIPT = ROOT / "manifests" / "install-addons.sh"
STANDIN = Path(__file__).with_name("standin_kubectl.py")


def _versions() -> dict[str, str]:
    lines = (ROOT / "manifests" / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def assets() -> dict[str, dict[str, Any]]:
    """What each release URL of versions.env holds."""
    v = _versions()
    gh = "https://github.com"
    knative_crds = [
        "services.serving.knative.dev",
        "images.caching.internal.knative.dev",
        "podautoscalers.autoscaling.internal.knative.dev",
    ]
    kserve_crds = [
        "inferenceservices.serving.kserve.io",
        "clusterstoragecontainers.serving.kserve.io",
        "clusterservingruntimes.serving.kserve.io",
    ]
    return {
        # cert-manager make/manifests.mk:34 (static manifest: Namespace, CRDs, controllers in cert-manager).
        f"{gh}/cert-manager/cert-manager/releases/download/{v['CERT_MANAGER_VERSION']}/cert-manager.yaml": {
            "namespaces": ["cert-manager"],
            "crds": ["certificates.cert-manager.io"],
            "objects_in": ["cert-manager", "kube-system"],
        },
        # knative hack/generate-yamls.sh:56,97: config/core/300-resources + 300-imagecache.yaml (CRDs only).
        f"{gh}/knative/serving/releases/download/{v['KNATIVE_SERVING_VERSION']}/serving-crds.yaml": {
            "crds": knative_crds,
        },
        # config/core/100-namespace.yaml, configmaps/, deployments/, and 999-cache.yaml: an Image object of
        # images.caching.internal.knative.dev CRD, so every Knative CRD must be Established first.
        f"{gh}/knative/serving/releases/download/{v['KNATIVE_SERVING_VERSION']}/serving-core.yaml": {
            "namespaces": ["knative-serving"],
            "objects_in": ["knative-serving"],
            "uses_kinds": ["images.caching.internal.knative.dev"],
            "objects": [
                "configmap/config-network",
                "configmap/config-domain",
                "configmap/config-features",
                "configmap/config-deployment",
                "configmap/config-autoscaler",
            ],
        },
        # net-kourier config/100-namespace.yaml, 300-gateway.yaml:136-158 (Service kourier), and
        # 200-config.yaml:18-19 (config-kourier in knative-serving).
        f"{gh}/knative-extensions/net-kourier/releases/download/{v['KNATIVE_KOURIER_VERSION']}/kourier.yaml": {  # noqa: E501
            "namespaces": ["kourier-system"],
            "objects_in": ["kourier-system", "knative-serving"],
            "objects": ["service/kourier"],
        },
        # kserve hack/release/generate-install.sh:117 (config/crd/full).
        f"{gh}/kserve/kserve/releases/download/{v['KSERVE_VERSION']}/kserve-crds.yaml": {"crds": kserve_crds},
        # generate-install.sh:118: config/overlays/all without the Namespace; config/default -> ../crd and
        # config/base -> ../storagecontainers (ClusterStorageContainer "default").
        f"{gh}/kserve/kserve/releases/download/{v['KSERVE_VERSION']}/kserve.yaml": {
            "crds": kserve_crds,
            "objects_in": ["kserve"],
            "uses_kinds": ["clusterstoragecontainers.serving.kserve.io"],
            "objects": ["configmap/inferenceservice-config", "clusterstoragecontainer/default"],
        },
        # generate-install.sh:120: config/clusterresources (ClusterServingRuntimes).
        f"{gh}/kserve/kserve/releases/download/{v['KSERVE_VERSION']}/kserve-cluster-resources.yaml": {
            "uses_kinds": ["clusterservingruntimes.serving.kserve.io"],
        },
        # metrics-server components.yaml: ServiceAccount, Deployment ... in kube-system.
        f"{gh}/kubernetes-sigs/metrics-server/releases/download/{v['METRICS_SERVER_VERSION']}/components.yaml": {  # noqa: E501
            "objects_in": ["kube-system"],
            "objects": ["deployment/metrics-server"],
        },
    }


def _empty_cluster() -> dict[str, Any]:
    return {
        "namespaces": ["default", "kube-system", "kube-public"],
        "crds": [],
        "established": [],
        "objects": [],
        "calls": [],
        "failures": [],
    }


@pytest.fixture
def cluster(tmp_path: Path) -> dict[str, Any]:
    """A bin folder with the stand-in as kubectl and helm, and its state and asset files."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("kubectl", "helm"):
        tool = bin_dir / name
        tool.write_text(
            f"#!{sys.executable}\nimport os, runpy\nos.environ['STANDIN_TOOL'] = {name!r}\n"
            f"runpy.run_path({str(STANDIN)!r}, run_name='__main__')\n"
        )
        tool.chmod(0o755)
    state = tmp_path / "state.json"
    state.write_text(json.dumps(_empty_cluster()))
    catalogue = tmp_path / "assets.json"
    catalogue.write_text(json.dumps(assets()))
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STANDIN_STATE": str(state),
        "STANDIN_ASSETS": str(catalogue),
        "KUBECTL": "kubectl",
        "HELM": "helm",
    }
    return {"env": env, "state": state, "bin": bin_dir}


def _run(cluster: dict[str, Any], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={**cluster["env"], **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _state(cluster: dict[str, Any]) -> dict[str, Any]:
    return json.loads(cluster["state"].read_text())


def test_every_step_succeeds_on_an_empty_cluster(cluster: dict[str, Any]) -> None:
    """All default steps plus the fast autoscaler run on an empty cluster without one API error."""
    result = _run(cluster, FAST_SCALE_TO_ZERO="1")
    state = _state(cluster)
    assert result.returncode == 0, result.stderr
    assert state["failures"] == []
    assert (
        ">> add-ons ready: cert-manager knative kserve metrics-server monitoring fast-autoscaler"
        in result.stdout
    )
    assert {"kserve", "knative-serving", "kourier-system", "cert-manager", "monitoring"} <= set(
        state["namespaces"]
    )
    patched = [call[2:4] for call in state["calls"] if call[:2] == ["kubectl", "patch"]]
    assert ["clusterstoragecontainer", "default"] in patched


def test_kserve_namespace_exists_before_kserve_yaml(cluster: dict[str, Any]) -> None:
    """Finding 2: the kserve namespace is created before kserve.yaml's namespaced objects are applied."""
    _run(cluster)
    calls = [" ".join(c) for c in _state(cluster)["calls"]]
    create = next(
        i for i, c in enumerate(calls) if c == "kubectl create namespace kserve --dry-run=client -o yaml"
    )
    apply = next(i for i, c in enumerate(calls) if c.endswith("/kserve.yaml"))
    assert create < apply


def test_crds_are_established_before_objects_of_their_kinds(cluster: dict[str, Any]) -> None:
    """Finding 3: kserve-crds.yaml, a wait for Established, then kserve.yaml (ClusterStorageContainers)."""
    _run(cluster)
    calls = [" ".join(c) for c in _state(cluster)["calls"]]
    crds = next(i for i, c in enumerate(calls) if c.endswith("/kserve-crds.yaml"))
    wait = next(i for i, c in enumerate(calls) if i > crds and c.startswith("kubectl wait crd --all"))
    apply = next(i for i, c in enumerate(calls) if c.endswith("/kserve.yaml"))
    assert crds < wait < apply


@pytest.mark.parametrize(
    ("commands", "error"),
    [
        (
            [["apply", "-f", "kserve.yaml"]],
            'Error from server (NotFound): namespaces "kserve" not found',
        ),
        (
            [["create-ns", "kserve"], ["apply", "-f", "kserve-crds.yaml"], ["apply", "-f", "kserve.yaml"]],
            "ensure CRDs are installed first",
        ),
        (
            [
                ["apply", "-f", "serving-crds.yaml"],
                ["wait", "crd/services.serving.knative.dev"],
                ["apply", "-f", "serving-core.yaml"],
            ],
            "ensure CRDs are installed first",
        ),
    ],
    ids=["kserve-without-namespace", "kserve-crds-not-established", "knative-waits-for-one-crd-only"],
)
def test_standin_refuses_the_orders_of_the_old_script(
    cluster: dict[str, Any], commands: list[list[str]], error: str
) -> None:
    """The stand-in fails like the API server on the old script's orders (no namespace, CRD not ready)."""
    urls = {url.rsplit("/", 1)[1]: url for url in assets()}
    last = None
    for command in commands:
        if command[0] == "create-ns":
            state = _state(cluster)
            state["namespaces"].append(command[1])
            cluster["state"].write_text(json.dumps(state))
            continue
        args = [urls.get(a, a) for a in command]
        if args[0] == "wait":
            args += ["--for=condition=Established"]
        last = subprocess.run(
            [str(cluster["bin"] / "kubectl"), *args],
            env=cluster["env"],
            capture_output=True,
            text=True,
            check=False,
        )
    assert last is not None and last.returncode == 1
    assert error in last.stderr


def test_a_step_out_of_order_stops_with_the_api_servers_line(cluster: dict[str, Any]) -> None:
    """fast-autoscaler before knative: the script stops at the first failing command, kubectl's message."""
    result = _run(cluster, "fast-autoscaler")
    assert result.returncode == 1
    assert 'namespaces "knative-serving" not found' in result.stderr
    assert "add-ons ready" not in result.stdout
