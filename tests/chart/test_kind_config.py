"""kind-config.yaml is a valid kind v1alpha4 Cluster (strict, as kind reads it) matching the chart pools."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml
from chartkit import CHART, ROOT

KIND_CONFIG = ROOT / "kind-config.yaml"

_STRINGS = {"type": "array", "items": {"type": "string"}}
_PORT = {"type": "integer", "minimum": -1, "maximum": 65535}
_JSON6902 = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["group", "version", "kind", "patch"],
        "properties": {
            k: {"type": "string"} for k in ("group", "version", "kind", "patch", "name", "namespace")
        },
    },
}
# Fields of kind.x-k8s.io/v1alpha4 (shared/schemas/kind-v1alpha4-notes.md); kind rejects unknown keys.
KIND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "apiVersion"],
    "properties": {
        "kind": {"const": "Cluster"},
        "apiVersion": {"const": "kind.x-k8s.io/v1alpha4"},
        "name": {"type": "string", "pattern": "^[a-z0-9.-]+$"},
        "featureGates": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "runtimeConfig": {"type": "object", "additionalProperties": {"type": "string"}},
        "kubeadmConfigPatches": _STRINGS,
        "kubeadmConfigPatchesJSON6902": _JSON6902,
        "containerdConfigPatches": _STRINGS,
        "containerdConfigPatchesJSON6902": _STRINGS,
        "networking": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "ipFamily": {"enum": ["ipv4", "ipv6", "dual"]},
                "apiServerAddress": {"type": "string"},
                "apiServerPort": _PORT,
                "podSubnet": {"type": "string"},
                "serviceSubnet": {"type": "string"},
                "disableDefaultCNI": {"type": "boolean"},
                "kubeProxyMode": {"enum": ["iptables", "ipvs", "nftables", "none"]},
                "dnsSearch": _STRINGS,
            },
        },
        "nodes": {
            "type": "array",
            "minItems": 1,
            "contains": {"properties": {"role": {"const": "control-plane"}}, "required": ["role"]},
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "role": {"enum": ["control-plane", "worker"]},
                    "image": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "kubeadmConfigPatches": _STRINGS,
                    "kubeadmConfigPatchesJSON6902": _JSON6902,
                    "extraMounts": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "containerPath": {"type": "string"},
                                "hostPath": {"type": "string"},
                                "readOnly": {"type": "boolean"},
                                "selinuxRelabel": {"type": "boolean"},
                                "propagation": {"enum": ["None", "HostToContainer", "Bidirectional"]},
                            },
                        },
                    },
                    "extraPortMappings": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "containerPort": _PORT,
                                "hostPort": _PORT,
                                "listenAddress": {"type": "string"},
                                "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
                            },
                        },
                    },
                },
            },
        },
    },
}


def _config() -> dict[str, Any]:
    return yaml.safe_load(KIND_CONFIG.read_text())


def _workers() -> dict[str, dict[str, Any]]:
    return {n["labels"]["dr-serving/pool"]: n for n in _config()["nodes"] if n.get("role") == "worker"}


def test_kind_config_matches_the_v1alpha4_schema() -> None:
    """kind-config.yaml uses only v1alpha4 fields with the right types."""
    jsonschema.validate(_config(), KIND_SCHEMA)


@pytest.mark.parametrize(
    "mutation",
    [
        lambda c: c["nodes"][1].update(lable={"a": "b"}),
        lambda c: c["nodes"][0].update(role="master"),
        lambda c: c["nodes"][0]["extraPortMappings"][0].update(protocol="HTTP"),
        lambda c: c.update(nodes=[{"role": "worker"}]),
    ],
    ids=["unknown-node-key", "unknown-role", "unknown-protocol", "no-control-plane"],
)
def test_schema_rejects_what_kind_rejects(mutation) -> None:
    """The strict schema catches the mistakes kind refuses, so the validation above can fail."""
    config = _config()
    mutation(config)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, KIND_SCHEMA)


def test_kourier_node_port_is_mapped_to_loopback_8080() -> None:
    """The control plane maps Kourier's NodePort 31080 to 127.0.0.1:8080 (the chart's ingress.url)."""
    (control,) = [n for n in _config()["nodes"] if n["role"] == "control-plane"]
    mappings = {m["containerPort"]: m for m in control["extraPortMappings"]}
    assert mappings[31080] == {
        "containerPort": 31080,
        "hostPort": 8080,
        "listenAddress": "127.0.0.1",
        "protocol": "TCP",
    }
    assert all(m["listenAddress"] == "127.0.0.1" for m in mappings.values())
    assert yaml.safe_load((CHART / "values.yaml").read_text())["ingress"]["url"] == "http://127.0.0.1:8080"


def _join_taint(node: dict[str, Any]) -> dict[str, str]:
    """The one taint a worker's JoinConfiguration patch puts on it."""
    (patch,) = node["kubeadmConfigPatches"]
    join = yaml.safe_load(patch)
    assert join["kind"] == "JoinConfiguration"
    # Finding 19: kubeadm's first-class taints field, not kubelet flags that only work through kind's
    # conversion of map-form kubeletExtraArgs to v1beta4
    # (kind v0.32.0 pkg/internal/patch/kubeadm_merge.go:59-69).
    assert "kubeletExtraArgs" not in join["nodeRegistration"]
    (taint,) = join["nodeRegistration"]["taints"]
    return taint


def test_workers_are_the_chart_pools_and_graviton_is_tainted() -> None:
    """One worker per chart pool, labelled with the chart's pool label key; the graviton taint tolerated."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    workers = _workers()
    assert set(workers) == {*values["pools"], values["loadtest"]["pool"]}
    assert values["placement"]["poolLabelKey"] == "dr-serving/pool"
    for name in values["pools"]:
        assert (
            workers[name]["labels"]["node.kubernetes.io/instance-type"]
            == values["pools"][name]["instanceType"]
        )
    (toleration,) = values["pools"]["graviton"]["tolerations"]
    assert toleration == {**_join_taint(workers["graviton"]), "operator": "Equal"}
    assert "kubeadmConfigPatches" not in workers["amd64"]


def test_loadgen_worker_takes_only_the_load_generator() -> None:
    """The loadgen worker has the labels the load-test pods select and the taint only they tolerate."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    loadtest = values["loadtest"]
    node = _workers()[loadtest["pool"]]
    selector = loadtest["nodeSelector"]
    assert selector == {"dr-serving/pool": loadtest["pool"]}
    assert all(node["labels"][key] == value for key, value in selector.items())
    taint = _join_taint(node)
    (toleration,) = loadtest["tolerations"]
    assert toleration == {**taint, "operator": "Equal"}
    # No predictor pool tolerates it, so the predictors never share the load generator's node.
    for pool in values["pools"].values():
        assert all(t.get("value") != taint["value"] for t in pool.get("tolerations") or [])


def test_kind_config_explains_the_shared_cpu_architecture() -> None:
    """The file says that kind nodes share the host's architecture and how arm64 placement works there."""
    text = KIND_CONFIG.read_text()
    assert "run the host's CPU architecture" in text
    assert "kubernetes.io/arch=arm64" in text
