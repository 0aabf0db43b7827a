"""The optional in-cluster load generator (``loadtest.enabled``): off by default, the master and workers as
the values say, restricted pods on their own pool, a target file the lab reads, and NetworkPolicies that open
only master <-> workers and the way to the predictors."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from loadtest.targets import load_targets
from tests.chart.chartkit import NAMESPACE, ROOT, by_kind, render, validate_builtin

PRICES = {"amd64": 0.23, "graviton": 0.174}
LOADTEST = {"loadtest": {"enabled": True, "workers": 3, "masterPort": 6000}}


def _named(objects: list[dict], kind: str, suffix: str) -> dict:
    (obj,) = [o for o in by_kind(objects, kind) if o["metadata"]["name"].endswith(suffix)]
    return obj


def test_off_by_default() -> None:
    objects = render()
    assert not [o for o in objects if "loadtest" in o["metadata"]["name"]]


def test_master_and_workers_run_the_lab_image_on_their_own_pool() -> None:
    objects = render(LOADTEST)
    for obj in objects:
        if "loadtest" in obj["metadata"]["name"]:
            validate_builtin(obj)
    master = _named(objects, "Deployment", "-loadtest-master")
    workers = _named(objects, "Deployment", "-loadtest-worker")
    assert master["spec"]["replicas"] == 1 and workers["spec"]["replicas"] == 3
    for deployment in (master, workers):
        pod = deployment["spec"]["template"]["spec"]
        (box,) = pod["containers"]
        assert box["image"] == "dr-serving/loadtest:0.1.0-lab"
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert box["securityContext"]["readOnlyRootFilesystem"] is True
        assert box["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert box["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod["nodeSelector"] == {"dr-serving/pool": "loadgen"}
        assert pod["tolerations"][0]["value"] == "loadgen"
    worker_box = workers["spec"]["template"]["spec"]["containers"][0]
    service = _named(objects, "Service", "-loadtest-master")
    assert worker_box["command"][-2:] == [f"{service['metadata']['name']}:6000", "--reconnect"]
    assert service["spec"]["ports"][0]["port"] == 6000
    assert service["spec"]["selector"] == master["spec"]["selector"]["matchLabels"]
    digest = "sha256:" + "cd" * 32
    pinned = render({"loadtest": {"enabled": True, "image": {"digest": digest}}})
    image = _named(pinned, "Deployment", "-loadtest-worker")["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]
    assert image == f"dr-serving/loadtest@{digest}"


def test_the_configmap_is_a_target_file_the_lab_reads(tmp_path: Path) -> None:
    for mode, url in (
        ("standard", None),
        ("knative", "http://kourier-internal.kourier-system.svc.cluster.local"),
    ):
        config = _named(render(LOADTEST, {"mode": mode}), "ConfigMap", "-loadtest")["data"]
        assert (config["workers"], config["masterPort"], config["pool"]) == ("3", "6000", "loadgen")
        path = tmp_path / f"{mode}.yaml"
        path.write_text(config["targets.yaml"], encoding="utf-8")
        targets = load_targets(path)
        assert {t.pool for t in targets} == {"amd64", "graviton"}
        for target in targets:
            assert (target.model, target.mode, target.price_per_hour) == (
                "mobilenet",
                mode,
                PRICES[target.pool],
            )
            isvc = f"dr-serving-{target.model}-{target.pool}"
            if url is None:
                assert target.url == f"http://{isvc}-predictor.{NAMESPACE}.svc.cluster.local"
                assert target.host is None
            else:
                assert target.url == url and target.host == f"{isvc}-predictor.{NAMESPACE}.example.com"


def test_network_policies_open_only_master_workers_and_the_predictors() -> None:
    objects = render(LOADTEST, {"mode": "standard"})
    master = _named(objects, "NetworkPolicy", "-loadtest-master")["spec"]
    workers = _named(objects, "NetworkPolicy", "-loadtest-worker")["spec"]
    (rule,) = master["ingress"]
    assert rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "loadtest-worker"
    assert rule["ports"] == [{"protocol": "TCP", "port": 6000}]
    assert workers["ingress"] == []
    worker_to = [r["to"][0].get("podSelector", {}).get("matchLabels", {}) for r in workers["egress"]]
    assert {"app.kubernetes.io/component": "loadtest-master"}.items() <= worker_to[1].items()
    assert worker_to[2].get("app.kubernetes.io/component") == "predictor"
    # The predictors admit the load-test pods on 8080 in Standard mode (Knative mode: through Kourier).
    predictor = _named(objects, "NetworkPolicy", "dr-serving")["spec"]
    components = {
        peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
        for rule in predictor["ingress"]
        for peer in rule["from"]
        if "podSelector" in peer
    }
    assert {"loadtest-master", "loadtest-worker"} <= components


def test_kind_values_run_the_lab_image_make_kind_load_lab_loads() -> None:
    """On kind the load-test pods run the kind.local/ lab image ``make kind-load-lab`` loads, never pulled."""
    objects = render("kind-values.yaml", {"loadtest": {"enabled": True}})
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "kind-load-lab"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    (loaded,) = re.findall(r"kind load docker-image '([^']+)'", dry_run)
    assert loaded == "kind.local/dr-serving/loadtest:0.1.0-lab"
    assert f"docker tag '{loaded.removeprefix('kind.local/')}' '{loaded}'" in dry_run
    for suffix in ("-loadtest-master", "-loadtest-worker"):
        pod = _named(objects, "Deployment", suffix)["spec"]["template"]["spec"]
        (box,) = pod["containers"]
        assert (box["image"], box["imagePullPolicy"]) == (loaded, "Never")
        assert pod["nodeSelector"] == {"dr-serving/pool": "loadgen"}
