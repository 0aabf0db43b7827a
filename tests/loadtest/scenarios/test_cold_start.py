from __future__ import annotations

import csv
import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from loadtest.emulation import DEFAULT_POOLS
from loadtest.prometheus_local import LocalPrometheus, ScrapeTarget
from loadtest.scenarios.cold_start import server_startup_metrics
from loadtest.targets import Target


@pytest.mark.slow
def test_local_cold_starts_restart_the_predictor(quick_run, mobilenet_dir: Path, tmp_path: Path) -> None:
    pool = next(iter(DEFAULT_POOLS))
    run_dir = quick_run(
        "cold-start",
        "--local",
        "--model-dir",
        f"mobilenet={mobilenet_dir}",
        "--pools",
        pool,
        "--cold-requests",
        "2",
        "--warm-after",
        "1",
        out=tmp_path,
    )
    with (run_dir / "requests.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["phase"] for r in rows] == ["cold", "warm", "cold", "warm"]
    assert all(r["status"] == "200" and not r["error"] for r in rows)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["settings"]["client_timeout_s"] == 300.0
    breakdowns = summary["cold_start"]
    assert len(breakdowns) == 2
    for entry, row in zip(breakdowns, [r for r in rows if r["phase"] == "cold"], strict=True):
        assert entry["kind"] == "local process restart" and entry["error"] == ""
        assert entry["model_load_s"] > 0 and entry["server_startup_s"] > 0
        assert entry["first_response_server_prediction_ms"] == pytest.approx(
            float(row["server_prediction_ms"])
        )
        # The cold request is timed from the restart: the wait for readiness plus the request itself.
        assert entry["total_s"] >= entry["process_start_to_ready_s"]
        assert entry["total_s"] >= entry["ready_to_first_response_s"]
        assert float(row["client_ms"]) >= 1000 * entry["process_start_to_ready_s"]
    phases = {(g["phase"], g["requests"]) for g in summary["groups"]}
    assert phases == {("cold", 2), ("warm", 2)}


def test_server_startup_metrics_from_a_real_predictor(predictor: Target) -> None:
    found = server_startup_metrics(httpx.get(f"{predictor.base_url}/metrics", timeout=10).text)
    assert set(found) == {"dr_model_load_seconds", "dr_startup_seconds"}
    assert 0 < found["dr_model_load_seconds"] < found["dr_startup_seconds"]


#: The recorded Knative-mode InferenceService, revision and pod the cluster cold start is replayed against.
NAMESPACE = "dr"
GRAVITON = "dr-serving-mobilenet-graviton"
ISVC_PATH = f"/apis/serving.kserve.io/v1beta1/namespaces/{NAMESPACE}/inferenceservices/{GRAVITON}"
REVISION_PATH = f"/apis/serving.knative.dev/v1/namespaces/{NAMESPACE}/revisions/{GRAVITON}-predictor-00001"
PODS_PATH = f"/api/v1/namespaces/{NAMESPACE}/pods"
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _fresh_pod(recorded: Path, out: Path) -> str:
    """Write the recorded running pod as created just now (every timestamp shifted); returns its name."""
    pods = json.loads((recorded / "pods-revision-running.json").read_text())
    created = datetime.fromisoformat(pods["items"][0]["metadata"]["creationTimestamp"])
    shift = datetime.now(UTC).replace(microsecond=0) - created

    def moved(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: moved(value) for key, value in node.items()}
        if isinstance(node, list):
            return [moved(value) for value in node]
        if isinstance(node, str) and STAMP.fullmatch(node):
            return (datetime.fromisoformat(node) + shift).strftime("%Y-%m-%dT%H:%M:%SZ")
        return node

    (out / "pods-fresh.json").write_text(json.dumps(moved(pods)))
    return pods["items"][0]["metadata"]["name"]


def _cluster_cold_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, predictor: Target, prometheus_url: str | None
) -> tuple[dict[str, Any], str]:
    """One cold request of ``cold_start.run`` on the replayed cluster; the breakdown and the pod's name."""
    from dr_deploy import cluster
    from loadtest.campaign import Campaign
    from loadtest.images import ImageSource
    from loadtest.scenarios import cold_start
    from loadtest.scenarios.options import ColdStartOptions
    from tests.deploy import replay

    answers = tmp_path / "recorded"
    answers.mkdir()
    for name in (
        "inferenceservice-mobilenet-graviton.json",
        "revision-scale-to-zero.json",
        "pods-empty.json",
    ):
        shutil.copy(replay.RECORDED / name, answers / name)
    pod = _fresh_pod(replay.RECORDED, answers)
    monkeypatch.setattr(replay, "RECORDED", answers)
    api, _ = replay.api_with(
        {
            ("GET", ISVC_PATH): ["inferenceservice-mobilenet-graviton.json"],
            ("GET", REVISION_PATH): ["revision-scale-to-zero.json"],
            # wait_scaled_to_zero sees no pod, then the request has started the fresh one.
            ("GET", PODS_PATH): ["pods-empty.json", "pods-fresh.json"],
        }
    )
    monkeypatch.setattr(cluster, "api_client", lambda: api)
    target = Target(
        model="mobilenet",
        url=predictor.url,
        pool="graviton",
        mode="knative",
        extra={"namespace": NAMESPACE, "inference_service": GRAVITON},
    )
    campaign = Campaign(
        scenario="cold-start",
        targets=[target],
        images=ImageSource.synthetic(count=1, size=256),
        run_dir=tmp_path,
        environment_label="test",
        prometheus_url=prometheus_url,
        quiet=True,
    )
    try:
        cold_start.run(campaign, ColdStartOptions(cold_requests=1, warm_after=0, metrics_timeout=30))
    finally:
        campaign.recorder.close()
    (breakdown,) = campaign.cold_start
    return breakdown, pod


def test_cluster_cold_start_reads_the_fresh_pods_figures_from_prometheus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, predictor: Target
) -> None:
    """On a cluster the fresh pod's start-up gauges come from Prometheus by its name, not the gateway."""
    expected = server_startup_metrics(httpx.get(f"{predictor.base_url}/metrics", timeout=10).text)
    pod = json.loads(
        (Path(__file__).parents[2] / "deploy" / "recorded" / "pods-revision-running.json").read_text()
    )["items"][0]["metadata"]["name"]
    scrape = ScrapeTarget(
        job="dr-serving",
        address=urlsplit(predictor.base_url).netloc,
        labels={"namespace": NAMESPACE, "pod": pod},
    )
    with LocalPrometheus([scrape], scrape_interval=1.0) as prometheus:
        breakdown, fresh = _cluster_cold_start(tmp_path, monkeypatch, predictor, prometheus.url)
    assert fresh == pod
    assert (breakdown["kind"], breakdown["pod"], breakdown["error"]) == ("cluster scale from zero", pod, "")
    assert breakdown["server_startup_s"] == expected["dr_startup_seconds"]
    assert breakdown["model_load_s"] == expected["dr_model_load_seconds"]
    assert breakdown["server_figures_from"] == f"Prometheus {prometheus.url}: pod {NAMESPACE}/{pod}"
    assert breakdown["first_response_server_prediction_ms"] > 0


def test_cluster_cold_start_without_prometheus_says_why_figures_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, predictor: Target
) -> None:
    """No ``--prometheus-url``: the request is measured, the server figures are empty with the reason."""
    breakdown, _ = _cluster_cold_start(tmp_path, monkeypatch, predictor, None)
    assert breakdown["error"] == "" and breakdown["total_s"] > 0
    assert (breakdown["server_startup_s"], breakdown["model_load_s"]) == (None, None)
    assert breakdown["server_figures_from"].startswith("missing: no --prometheus-url")
