"""checkov over the rendered chart AND over each predictor pod spec taken out of the InferenceServices.

checkov (pinned, in build/checkov-venv: ``make checkov-venv``, which ``make test`` depends on) runs once,
offline (``--skip-download``), without skips; every failed check must be an exception listed with its
reason in charts/dr-serving/checkov-skips.yaml for that kind of pod, and every listed exception must still
fail somewhere (no stale exceptions). Value sets: defaults, every ci/*-values.yaml, a pinned digest.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from chartkit import CHART, ROOT, isvcs, predictor_pod, render

CHECKOV = ROOT / "build" / "checkov-venv" / "bin" / "checkov"
SKIPS = CHART / "checkov-skips.yaml"
VALUE_SETS: dict[str, tuple[str | dict, ...]] = {
    "defaults": (),
    **{p.name.removesuffix("-values.yaml"): (p.name,) for p in sorted((CHART / "ci").glob("*-values.yaml"))},
    "standard-monitoring": ("standard-values.yaml", "monitoring-values.yaml"),
    "digest": ({"image": {"digest": "sha256:" + "ab" * 32}},),
}


def _kind_of_pod(resource: str) -> str:
    """predictor, test or loadtest, from checkov's resource id (Kind.namespace.name)."""
    if resource.endswith("-test-prediction"):
        return "test"
    if resource.rsplit(".", 1)[-1].endswith(("-loadtest-master", "-loadtest-worker")):
        return "loadtest"
    return "predictor"


@pytest.fixture(scope="module")
def failed_checks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """checkov's failed checks over every value set: the chart's objects plus each predictor Pod."""
    if not CHECKOV.is_file():
        pytest.skip(f"{CHECKOV} is missing and could not be created here; run: make checkov-venv")
    folder = tmp_path_factory.mktemp("checkov")
    for name, values in VALUE_SETS.items():
        objects = render(*values)
        (folder / f"{name}.yaml").write_text(yaml.safe_dump_all(objects))
        pods = []
        for isvc in isvcs(objects).values():
            pod = predictor_pod(isvc)
            pod["metadata"]["namespace"] = isvc["metadata"]["namespace"]
            pods.append(pod)
        (folder / f"{name}-predictor-pods.yaml").write_text(yaml.safe_dump_all(pods))
    result = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(folder),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--quiet",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    (report,) = [r for r in reports if r.get("check_type") == "kubernetes"]
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["resource_count"] >= 2 * len(VALUE_SETS)
    return report["results"]["failed_checks"]


def _skips() -> dict[str, set[str]]:
    entries = yaml.safe_load(SKIPS.read_text())
    for entry in entries:
        assert len(entry["reason"].split()) >= 10, f"{entry['id']}: give the reason in a sentence or more"
    return {entry["id"]: set(entry["pods"]) for entry in entries}


def test_no_failed_check_outside_the_listed_exceptions(failed_checks: list[dict]) -> None:
    """0 failed checks once the exceptions (with reasons) are applied, predictor pod specs included."""
    skips = _skips()
    unexcused = sorted(
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})"
        for c in failed_checks
        if _kind_of_pod(c["resource"]) not in skips.get(c["check_id"], set())
    )
    assert unexcused == []


def test_every_exception_is_still_needed(failed_checks: list[dict]) -> None:
    """Each listed exception still fails for each kind of pod it names (no stale skips)."""
    seen = {(c["check_id"], _kind_of_pod(c["resource"])) for c in failed_checks}
    stale = sorted(
        (check, pod) for check, pods in _skips().items() for pod in pods if (check, pod) not in seen
    )
    assert stale == []


def test_predictor_pods_were_scanned(failed_checks: list[dict]) -> None:
    """The predictor pod specs are scanned (checkov's plain scan never looks inside an InferenceService)."""
    assert any(
        c["resource"].startswith("Pod.") and c["resource"].endswith("-predictor") for c in failed_checks
    )
    digest_file = [c for c in failed_checks if Path(c["file_path"]).name == "digest-predictor-pods.yaml"]
    assert not [c for c in digest_file if c["check_id"] == "CKV_K8S_43"]
