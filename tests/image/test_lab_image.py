"""The lab image (``make image-lab``, the chart's default ``loadtest.image``) run the way the chart runs it.

The master and worker containers take their command, working directory, environment, limits, security context
and volumes from the rendered chart's Deployments (uid 10001, read-only root, capabilities dropped); the
campaign is started in the master as ``make loadtest LOADTEST_IN_CLUSTER=1`` does (``lab in-cluster`` over the
mounted ConfigMap), two worker containers generate the load against a predictor container, and the run folder
is copied out with ``lab collect``'s pack command and checked.

Networking stands in for the cluster's: every container shares the predictor container's network namespace (or
the host network when the engine has no bridge) and the master's Service name resolves to 127.0.0.1.
"""

from __future__ import annotations

import csv
import json
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dr_image import images
from dr_image.containers import Container, bridge_available, docker
from loadtest.collect import extract_runs, pack_command
from serving.launcher import free_port
from tests.chart.chartkit import by_kind, render
from tests.image.conftest import python_in

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: The short campaign of the test, as loadtest.* values (the chart defaults are the 500-user ramp).
CAMPAIGN = {
    "enabled": True,
    "workers": 2,
    "scenario": "ramp",
    "args": ["--users=2,4", "--step-seconds=3", "--pause=0.2", "--image-count=2", "--image-size=128"],
}


def _quantity(value: str) -> str:
    """A Kubernetes memory quantity (``512Mi``, ``1Gi``) in docker's words (``512m``, ``1g``)."""
    for suffix, unit in (("Gi", "g"), ("Mi", "m"), ("Ki", "k")):
        if value.endswith(suffix):
            return value[: -len(suffix)] + unit
    return value


def _cpus(value: str | int) -> str:
    text = str(value)
    return str(int(text[:-1]) / 1000) if text.endswith("m") else text


def _named(objects: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    (obj,) = [o for o in by_kind(objects, kind) if o["metadata"]["name"].endswith(suffix)]
    return obj


def run_like_chart(
    image: str,
    deployment: dict[str, Any],
    *,
    name: str,
    network: list[str],
    mounts: dict[str, Path],
    scratch: Path,
) -> str:
    """``docker run`` the Deployment's container as its pod spec says (``mounts``: configMap -> folder).

    An emptyDir is what the kubelet makes of one: a world-writable host folder (under ``scratch``), not a
    tmpfs, which docker would give the mode of the image's folder (root 0755 for the ``workingDir``).
    """
    pod = deployment["spec"]["template"]["spec"]
    (box,) = pod["containers"]
    context, pod_context = box["securityContext"], pod["securityContext"]
    options = [
        "--detach",
        "--name",
        name,
        "--user",
        f"{pod_context['runAsUser']}:{pod_context['runAsGroup']}",
    ]
    assert context["readOnlyRootFilesystem"] and context["capabilities"] == {"drop": ["ALL"]}
    assert context["allowPrivilegeEscalation"] is False
    options += ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    options += ["--workdir", box["workingDir"], *network]
    limits = box["resources"]["limits"]
    options += ["--cpus", _cpus(limits["cpu"]), "--memory", _quantity(limits["memory"])]
    for variable in box["env"]:
        options += ["--env", f"{variable['name']}={variable['value']}"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    for mount in box["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            folder = scratch / name / volume["name"]
            folder.mkdir(parents=True)
            folder.chmod(0o777)
            options += ["--volume", f"{folder}:{mount['mountPath']}"]
        else:
            folder = mounts[volume["configMap"]["name"]]
            options += ["--volume", f"{folder}:{mount['mountPath']}:ro"]
    command = box["command"]
    docker("run", *options, "--entrypoint", command[0], image, *command[1:])
    return name


def _mount_configmap(configmap: dict[str, Any], folder: Path, predictor_url: str) -> Path:
    """The ConfigMap's keys as files (as the kubelet mounts them), one target pointed at ``predictor_url``."""
    folder.mkdir()
    data = dict(configmap["data"])
    targets = yaml.safe_load(data["targets.yaml"])["targets"]
    local = {**targets[0], "url": predictor_url, "mode": "standard"}
    local.pop("host", None)
    data["targets.yaml"] = yaml.safe_dump({"targets": [local]})
    for key, value in data.items():
        (folder / key).write_text(value, encoding="utf-8")
        (folder / key).chmod(0o644)
    folder.chmod(folder.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)
    return folder


@pytest.fixture(scope="module")
def chart_objects() -> list[dict[str, Any]]:
    """The chart rendered with the load-test component, the test's short campaign and a free master port."""
    return render({"loadtest": {**CAMPAIGN, "masterPort": free_port()}})


@pytest.fixture(scope="module")
def lab_pods(
    lab_image: str,
    lite_image: str,
    served_model_dir: Path,
    chart_objects: list[dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    """A ready predictor, the chart's master and 2 worker containers: ``{role: container name}``."""
    service = _named(chart_objects, "Service", "-loadtest-master")["metadata"]["name"]
    predictor = Container(
        image=lite_image, flavour="lite", model_mount=served_model_dir, hosts={service: "127.0.0.1"}
    )
    suffix = uuid.uuid4().hex[:8]
    names: dict[str, str] = {}
    with predictor:
        try:
            predictor.wait_ready()
            network = (
                ["--network", f"container:{predictor.name}"]
                if bridge_available()
                else ["--network", "host", "--add-host", f"{service}:127.0.0.1"]
            )
            configmap = _named(chart_objects, "ConfigMap", "-loadtest")
            folder = _mount_configmap(
                configmap,
                tmp_path_factory.mktemp("loadtest-config") / "mounted",
                f"http://127.0.0.1:{predictor.inner_port}",
            )
            mounts = {configmap["metadata"]["name"]: folder}
            scratch = tmp_path_factory.mktemp("emptydirs")
            scratch.chmod(0o755)
            for role, count in (("master", 1), ("worker", CAMPAIGN["workers"])):
                deployment = _named(chart_objects, "Deployment", f"-loadtest-{role}")
                for i in range(count):
                    name = f"dr-distload-{role}{i if role == 'worker' else ''}-{suffix}"
                    names[name if role == "worker" else "master"] = run_like_chart(
                        lab_image, deployment, name=name, network=network, mounts=mounts, scratch=scratch
                    )
            yield names
        finally:
            for name in names.values():
                docker("rm", "--force", name, check=False)


@pytest.fixture(scope="module")
def collected_run(lab_pods: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The campaign started in the master (as ``make loadtest LOADTEST_IN_CLUSTER=1``), then collected."""
    master = lab_pods["master"]
    # The master's Locust port stays on 127.0.0.1: on the host network 0.0.0.0 would open it to the machine.
    started = docker(
        "exec", master, "python", "-m", "serving", "lab", "in-cluster", "--", "--master-bind", "127.0.0.1",
        check=False, timeout=150,
    )  # fmt: skip
    logs = {name: docker("logs", name, check=False) for name in lab_pods.values()}
    assert started.returncode == 0, (started.stdout[-3000:], started.stderr[-3000:], logs)
    packed = docker("exec", master, *pack_command("latest"), timeout=60)
    return extract_runs(packed.stdout, tmp_path_factory.mktemp("collected"))


def test_the_chart_default_image_is_what_make_image_lab_builds(chart_objects: list[dict[str, Any]]) -> None:
    defaults = render({"loadtest": {"enabled": True}})
    for role in ("master", "worker"):
        (box,) = _named(defaults, "Deployment", f"-loadtest-{role}")["spec"]["template"]["spec"]["containers"]
        assert box["image"] == images.tag_for("lab") == f"dr-serving/loadtest:{images.version()}-lab"


def test_lab_image_runs_as_10001_on_a_read_only_root(lab_image: str, lab_pods: dict[str, str]) -> None:
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", lab_image).stdout)
    assert config["User"] == "10001:10001"
    probe = (
        "import os, errno\n"
        "try:\n    open('/opt/probe', 'w')\nexcept OSError as e:\n    ro = e.errno == errno.EROFS\n"
        "import locust, matplotlib, loadtest.worker_session\n"
        "print(os.getuid(), os.getgid(), ro, os.getcwd())"
    )
    for name in lab_pods.values():
        answer = docker("exec", name, "python", "-c", probe)
        assert answer.stdout.split() == ["10001", "10001", "True", "/runs"], (name, answer.stderr)
    # No model backend, no cluster tooling: the lab image is the load generator only.
    answer = python_in(
        lab_image,
        "import importlib.util as u; "
        "print([m for m in ('tensorflow', 'kserve', 'ai_edge_litert', 'kubernetes') if u.find_spec(m)])",
    )
    assert answer.stdout.strip() == "[]"


def test_master_and_two_worker_containers_run_one_merged_campaign(
    collected_run: Path, lab_pods: dict[str, str]
) -> None:
    rows = list(csv.DictReader((collected_run / "requests.csv").read_text(encoding="utf-8").splitlines()))
    assert len(rows) >= 10
    assert all(r["status"] == "200" and not r["error"] for r in rows), rows[:3]
    stats_text = (collected_run / "locust_stats.csv").read_text(encoding="utf-8")
    stats = {r["Name"]: r for r in csv.DictReader(stats_text.splitlines())}
    assert int(stats["Aggregated"]["Request Count"]) == len(rows)
    assert {int(r["users"]) for r in rows} == {2, 4}
    assert len({r["pool"] for r in rows}) == 1
    summary = json.loads((collected_run / "summary.json").read_text(encoding="utf-8"))
    assert summary["requests"] == len(rows)
    assert [s["users"] for s in summary["steps"]] == [2, 4]
    generator = summary["settings"]["generator"]
    assert (generator["kind"], generator["workers"], generator["pool"]) == ("cluster-workers", 2, "loadgen")
    assert (collected_run / "report.md").is_file() and (collected_run / "report.html").is_file()
    # Each worker container received the master's user classes and ran users.
    workers = [name for role, name in lab_pods.items() if role != "master"]
    assert len(workers) == 2
    for name in workers:
        assert "received 1 user classes" in docker("logs", name).stderr


def test_the_lab_image_run_bare_says_it_serves_no_model(lab_image: str) -> None:
    """The image keeps the predictor's entrypoint and command (``serve``): without KServe it says so, once."""
    answer = docker("run", "--rm", lab_image, check=False)
    assert answer.returncode == 1
    assert answer.stderr.startswith("Error: 'dr-serving serve' needs the 'serve' extra"), answer.stderr[-999:]
