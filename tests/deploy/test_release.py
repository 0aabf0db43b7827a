"""``dr_deploy.release`` (pyhelm3 + bin/helm) and the release side of ``dr-serving deploy``.

pyhelm3 renders must equal what the helm CLI renders from the same values files. The ``cluster``-marked test
runs a full cycle on a live cluster with KServe (install, wait Ready, predict through the ingress, uninstall).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dr_cli.main import main
from dr_deploy.release import CHART_DIR, ReleaseManager, ReleaseSpec, default_helm, merge_values

CI = CHART_DIR / "ci"


def helm_cli_template(*values_files: Path, release: str = "dr-serving", namespace: str = "dr") -> list[dict]:
    """Objects rendered by the helm CLI itself (``helm template -f ...``)."""
    args = [default_helm(), "template", release, str(CHART_DIR), "--namespace", namespace]
    for path in values_files:
        args += ["-f", str(path)]
    result = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _keyed(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects}


@pytest.fixture(scope="module")
def manager() -> ReleaseManager:
    """A ReleaseManager on the project's bin/helm."""
    return ReleaseManager()


def test_merge_values_follows_helm_rules() -> None:
    """Maps merge key by key; lists and scalars from later layers replace earlier ones."""
    base = {"pools": {"graviton": {"tolerations": [{"key": "a"}], "arch": "arm64"}}, "mode": "knative"}
    override = {"pools": {"graviton": {"tolerations": [{"key": "b"}]}}, "mode": "standard"}
    assert merge_values(base, override) == {
        "pools": {"graviton": {"tolerations": [{"key": "b"}], "arch": "arm64"}},
        "mode": "standard",
    }
    assert base["pools"]["graviton"]["tolerations"] == [{"key": "a"}]  # inputs are not modified


@pytest.mark.parametrize(
    "files",
    [
        (),
        ("kind-values.yaml",),
        ("standard-values.yaml", "monitoring-values.yaml"),
        ("storage-uri-values.yaml", "lite-values.yaml", "standard-values.yaml"),
        ("profiles-values.yaml", "graviton-only-values.yaml"),
    ],
    ids=["defaults", "kind", "standard-monitoring", "storage-lite-standard", "profiles-graviton-only"],
)
def test_pyhelm3_renders_what_the_helm_cli_renders(manager: ReleaseManager, files: tuple[str, ...]) -> None:
    """ReleaseManager.template equals ``helm template -f ...`` object for object."""
    paths = tuple(CI / name for name in files)
    ours = manager.template(ReleaseSpec(name="dr-serving", namespace="dr", values_files=paths))
    assert _keyed(ours) == _keyed(helm_cli_template(*paths))


def test_list_values_are_replaced_not_concatenated(manager: ReleaseManager, tmp_path: Path) -> None:
    """A tolerations list in a later values file replaces the default, as with the helm CLI."""
    override = tmp_path / "tolerations.yaml"
    override.write_text(yaml.safe_dump({"pools": {"graviton": {"tolerations": [{"operator": "Exists"}]}}}))
    ours = _keyed(manager.template(ReleaseSpec(namespace="dr", values_files=(override,))))
    cli = _keyed(helm_cli_template(override))
    key = ("InferenceService", "dr-serving-mobilenet-graviton")
    assert ours[key]["spec"]["predictor"]["tolerations"] == [{"operator": "Exists"}]
    assert ours == cli


def test_inline_values_win_over_files(manager: ReleaseManager) -> None:
    """ReleaseSpec.values apply after the values files."""
    spec = ReleaseSpec(
        namespace="dr", values_files=(CI / "standard-values.yaml",), values={"mode": "knative"}
    )
    isvcs = [obj for obj in manager.template(spec) if obj["kind"] == "InferenceService"]
    assert {obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] for obj in isvcs} == {
        "Knative"
    }


def test_schema_errors_become_one_line(manager: ReleaseManager) -> None:
    """A value the schema rejects raises RuntimeError with Helm's message on one line."""
    with pytest.raises(RuntimeError) as caught:
        manager.template(ReleaseSpec(values={"pools": {"graviton": {"arch": "aarch64"}}}))
    message = str(caught.value)
    assert "at '/pools/graviton/arch': value must be one of 'amd64', 'arm64'" in message
    assert "\n" not in message


def test_missing_chart_and_values_files_are_named(manager: ReleaseManager, tmp_path: Path) -> None:
    """Missing chart folders and values files, and non-mapping values files, are clear errors."""
    with pytest.raises(FileNotFoundError, match="No chart at"):
        manager.template(ReleaseSpec(chart=tmp_path))
    with pytest.raises(FileNotFoundError, match=r"Values file '.*nope\.yaml' does not exist"):
        ReleaseSpec(values_files=(tmp_path / "nope.yaml",)).merged_values()
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n")
    with pytest.raises(ValueError, match="must hold a mapping, got list"):
        ReleaseSpec(values_files=(listed,)).merged_values()


def test_release_commands_fail_cleanly_without_a_cluster(manager: ReleaseManager, tmp_path: Path) -> None:
    """install/uninstall against an unreachable API server (127.0.0.1:1) raise one-line RuntimeErrors."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "none", "user": {"token": "unused"}}],
                "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
                "current-context": "none",
            }
        )
    )
    offline = ReleaseManager(kubeconfig=kubeconfig)
    with pytest.raises(RuntimeError, match=r"^helm upgrade --install dr-serving failed: .*127\.0\.0\.1:1"):
        offline.install_or_upgrade(ReleaseSpec(namespace="dr"), timeout="10s")
    with pytest.raises(RuntimeError, match=r"^helm uninstall dr-serving failed: .*127\.0\.0\.1:1"):
        offline.uninstall("dr-serving", "dr", timeout="10s")


def test_cli_template_json_matches_helm(capsys: pytest.CaptureFixture[str]) -> None:
    """``dr-serving deploy template -f ... --set ...`` prints the objects helm renders."""
    code = main(
        [
            "deploy",
            "template",
            "-n",
            "dr",
            "-f",
            str(CI / "kind-values.yaml"),
            "--set",
            "mode=standard",
            "-o",
            "json",
        ]
    )
    assert code == 0
    ours = json.loads(capsys.readouterr().out)
    standard = CI / "standard-values.yaml"
    expected = _keyed(helm_cli_template(CI / "kind-values.yaml", standard))
    assert {k for k in _keyed(ours)} == set(expected)
    isvc = _keyed(ours)[("InferenceService", "dr-serving-mobilenet-amd64")]
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert isvc["spec"]["predictor"]["nodeSelector"] == {"dr-serving/pool": "amd64"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "mode"], "Error: --set expects KEY=VALUE with a dotted KEY, got 'mode'.\n"),
        (
            ["--set", "a=1", "--set", "a.b=2"],
            "Error: --set 'a.b=2' nests under 'a', which an earlier --set made a value.\n",
        ),
    ],
    ids=["no-equals", "nest-under-scalar"],
)
def test_cli_bad_set_is_a_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Malformed --set values exit 2 with one line."""
    assert main(["deploy", "template", *argv]) == 2
    assert capsys.readouterr().err == message


@pytest.mark.cluster
def test_full_cycle_on_a_live_cluster(tmp_path: Path) -> None:
    """Install on kind, wait until Ready, send one real prediction per endpoint, then uninstall."""
    import httpx

    from dr_deploy import cluster, preflight

    manager = ReleaseManager()
    spec = ReleaseSpec(name="dr-e2e", namespace="dr-e2e", values_files=(CI / "kind-values.yaml",))
    image = (CHART_DIR / "files" / "fundus.jpg").read_bytes()
    needs = preflight.requirements(manager.template(spec), spec.namespace)
    assert [p.line() for p in preflight.check(cluster.api_client(), needs)] == []
    try:
        info = manager.install_or_upgrade(spec, timeout="10m")
        assert info.status == "deployed"
        api = cluster.api_client()
        states = cluster.wait_ready(api, spec.namespace, release=spec.name, timeout=900)
        assert {s.pool for s in states} == {"amd64", "graviton"}
        for endpoint in cluster.endpoints(api, spec.namespace, release=spec.name):
            answer = httpx.post(
                f"{endpoint.url}/v1/models/{endpoint.model}:predict",
                content=image,
                headers={"Host": endpoint.host or "", "Content-Type": "image/jpeg"},
                timeout=180,
            )
            assert answer.status_code == 200
            body = answer.json()
            assert body["model"] == endpoint.model
            assert 0 <= body["predictions"][0]["grade"] <= 4
            assert answer.headers["X-DR-Pool"] == endpoint.pool
    finally:
        manager.uninstall(spec.name, spec.namespace)
