"""``dr_deploy.cluster`` and the cluster side of ``dr-serving deploy``, against a real kubernetes ApiClient.

The client's connection pool is replaced by ``Replay``, which answers each request from the JSON files in
``recorded/`` (see recorded/README.md) and keeps the requests it saw, so URLs, query parameters and the
client's own model deserialisation are exercised as against an API server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from replay import RECORDED, api_with

from dr_cli.main import main
from dr_deploy import cluster, commands
from loadtest.targets import parse_targets

ISVC_PATH = "/apis/serving.kserve.io/v1beta1/namespaces/dr/inferenceservices"
PODS_PATH = "/api/v1/namespaces/dr/pods"
REVISIONS_PATH = "/apis/serving.knative.dev/v1/namespaces/dr/revisions"
GRAVITON = "dr-serving-mobilenet-graviton"
REVISION = f"{GRAVITON}-predictor-00001"


class Clock:
    """Deterministic monotonic time for the wait loops: ``sleep`` advances it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_list_inference_services_reads_labels_status_and_env() -> None:
    """States come from the chart's labels, the Ready condition, status.url and the container env."""
    api, replay = api_with({("GET", ISVC_PATH): ["inferenceservices-pending.json"]})
    amd64, graviton = cluster.list_inference_services(api, "dr", release="dr-serving")
    assert (amd64.name, amd64.model, amd64.pool, amd64.arch, amd64.mode) == (
        "dr-serving-mobilenet-amd64",
        "mobilenet",
        "amd64",
        "amd64",
        "knative",
    )
    assert amd64.ready and amd64.url == "http://dr-serving-mobilenet-amd64-predictor.dr.example.com"
    assert amd64.latest_ready_revision == "dr-serving-mobilenet-amd64-predictor-00001"
    assert amd64.env["DR_INSTANCE_TYPE"] == "m5.xlarge"
    assert not graviton.ready and "didn't match Pod's node affinity/selector" in graviton.reason
    ((method, path, query),) = replay.requests
    assert (method, path) == ("GET", ISVC_PATH)
    assert query["labelSelector"] == [
        "app.kubernetes.io/component=predictor,dr-serving/model,app.kubernetes.io/instance=dr-serving"
    ]


def test_wait_ready_polls_until_every_service_is_ready() -> None:
    """wait_ready returns once all are Ready, sleeping ``poll`` seconds between lists."""
    api, replay = api_with(
        {
            ("GET", ISVC_PATH): [
                "inferenceservices-pending.json",
                "inferenceservices-pending.json",
                "inferenceservices-ready.json",
            ]
        }
    )
    clock = Clock()
    states = cluster.wait_ready(api, "dr", timeout=60, poll=5, clock=clock, sleep=clock.sleep)
    assert [s.name for s in states] == ["dr-serving-mobilenet-amd64", GRAVITON]
    assert all(s.ready for s in states)
    assert clock.sleeps == [5, 5]
    assert len(replay.requests) == 3


def test_wait_ready_times_out_naming_the_pending_service() -> None:
    """The TimeoutError names each InferenceService that is not Ready and why."""
    api, _ = api_with({("GET", ISVC_PATH): ["inferenceservices-pending.json"]})
    clock = Clock()
    with pytest.raises(TimeoutError) as caught:
        cluster.wait_ready(api, "dr", timeout=10, poll=4, clock=clock, sleep=clock.sleep)
    message = str(caught.value)
    assert message.startswith(f"InferenceServices not Ready after 10 s: {GRAVITON}: Revision ")
    assert "dr-serving-mobilenet-amd64" not in message
    assert clock.sleeps == [4, 4, 4]


def test_wait_ready_reports_when_nothing_is_installed() -> None:
    """No InferenceService at all is its own clear error."""
    api, _ = api_with({("GET", ISVC_PATH): ["inferenceservices-empty.json"]})
    clock = Clock()
    with pytest.raises(TimeoutError, match=r"No InferenceService matching .* appeared in namespace 'dr'"):
        cluster.wait_ready(api, "dr", release="other", timeout=0, clock=clock, sleep=clock.sleep)


def test_endpoints_route_through_the_ingress_with_host_headers() -> None:
    """Each endpoint: the ingress URL, the Host of status.url, and pool facts from the chart's env."""
    api, _ = api_with({("GET", ISVC_PATH): ["inferenceservices-ready.json"]})
    found = cluster.endpoints(api, "dr", ingress_url="http://127.0.0.1:8080/")
    graviton = found[1]
    assert graviton.to_dict() == {
        "inference_service": GRAVITON,
        "model": "mobilenet",
        "pool": "graviton",
        "arch": "arm64",
        "mode": "knative",
        "instance_type": "c7g.xlarge",
        "memory_profile": "2Gi",
        "price_per_hour": 0.174,
        "url": "http://127.0.0.1:8080",
        "host": f"{GRAVITON}-predictor.dr.example.com",
        "service_url": f"http://{GRAVITON}-predictor.dr.example.com",
    }


def test_endpoints_are_load_lab_targets() -> None:
    """The endpoint listing parses as load-lab targets (loadtest.targets), one per model and pool."""
    api, _ = api_with({("GET", ISVC_PATH): ["inferenceservices-ready.json"]})
    targets = parse_targets({"endpoints": [e.to_dict() for e in cluster.endpoints(api, "dr")]})
    assert [t.name for t in targets] == ["mobilenet@amd64+2Gi/knative", "mobilenet@graviton+2Gi/knative"]
    assert targets[0].host == "dr-serving-mobilenet-amd64-predictor.dr.example.com"
    assert targets[1].price_per_hour == 0.174


def test_wait_scaled_to_zero_watches_the_latest_revision() -> None:
    """It finds the revision, then polls its pods until none is left, and returns the seconds waited."""
    api, replay = api_with(
        {
            ("GET", f"{ISVC_PATH}/{GRAVITON}"): ["inferenceservice-mobilenet-graviton.json"],
            ("GET", f"{REVISIONS_PATH}/{REVISION}"): ["revision-scale-to-zero.json"],
            ("GET", PODS_PATH): [
                "pods-revision-running.json",
                "pods-revision-running.json",
                "pods-empty.json",
            ],
        }
    )
    clock = Clock()
    waited = cluster.wait_scaled_to_zero(
        api, "dr", GRAVITON, timeout=120, poll=3, clock=clock, sleep=clock.sleep
    )
    assert waited == 6
    pod_queries = [query for method, path, query in replay.requests if path == PODS_PATH]
    assert pod_queries[0]["labelSelector"] == [f"serving.knative.dev/revision={GRAVITON}-predictor-00001"]
    assert len(pod_queries) == 3


def test_wait_scaled_to_zero_times_out_naming_the_pods() -> None:
    """Pods that stay past the timeout are named in the error."""
    api, _ = api_with(
        {
            ("GET", f"{ISVC_PATH}/{GRAVITON}"): ["inferenceservice-mobilenet-graviton.json"],
            ("GET", f"{REVISIONS_PATH}/{REVISION}"): ["revision-scale-to-zero.json"],
            ("GET", PODS_PATH): ["pods-revision-running.json"],
        }
    )
    clock = Clock()
    with pytest.raises(
        TimeoutError, match=r"still has 1 pod\(s\) after 4 s: dr-serving-mobilenet-graviton-pre"
    ):
        cluster.wait_scaled_to_zero(api, "dr", GRAVITON, timeout=4, poll=2, clock=clock, sleep=clock.sleep)


def test_standard_mode_has_no_revision_to_scale_to_zero() -> None:
    """A Standard-mode InferenceService has no Knative revision: a LookupError says so."""
    api, _ = api_with({("GET", f"{ISVC_PATH}/{GRAVITON}"): ["inferenceservice-standard.json"]})
    with pytest.raises(LookupError, match="has no ready Knative revision"):
        cluster.latest_revision(api, "dr", GRAVITON)


def test_pod_timeline_splits_a_cold_start() -> None:
    """A V1Pod built by the client from recorded JSON gives the named cold-start phases."""
    document = json.loads((RECORDED / "pods-revision-running.json").read_text())["items"][0]
    pod = client.ApiClient().deserialize(json.dumps(document), "V1Pod", "application/json")
    timeline = cluster.pod_timeline(pod)
    assert timeline.created == datetime(2026, 11, 23, 15, 20, 3, tzinfo=UTC)
    assert timeline.node == "dr-serving-worker2"
    assert timeline.durations() == {
        "scheduling_seconds": 0.0,
        "initialization_seconds": 2.0,
        "container_start_seconds": 2.0,
        "model_ready_seconds": 5.0,
        "total_seconds": 9.0,
    }
    assert timeline.to_dict()["ready"] == "2026-11-23T15:20:12+00:00"


def test_pod_timelines_are_oldest_first_and_tolerate_starting_pods() -> None:
    """Pods of an InferenceService, oldest first; a pod still creating has no later phases yet."""
    api, replay = api_with({("GET", PODS_PATH): ["pods-inferenceservice.json"]})
    cold, starting = cluster.pod_timelines(api, "dr", GRAVITON)
    assert cold.total_seconds == 9.0
    assert starting.scheduling_seconds == 1.0
    assert starting.initialization_seconds is None and starting.total_seconds is None
    assert replay.requests[0][2]["labelSelector"] == [f"serving.kserve.io/inferenceservice={GRAVITON}"]


def test_api_errors_reach_the_caller() -> None:
    """A 404 from the API server surfaces as the client's ApiException."""
    api, _ = api_with({("GET", f"{ISVC_PATH}/nope"): ["status-not-found.json"]})
    with pytest.raises(ApiException) as caught:
        cluster.latest_revision(api, "dr", "nope")
    assert caught.value.status == 404


@pytest.fixture
def cli_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[tuple[str, str], list[str]]]:
    """Routes for the ApiClient that ``dr-serving deploy`` builds (instead of one from a kubeconfig)."""
    routes: dict[tuple[str, str], list[str]] = {}
    monkeypatch.setattr(commands, "_cluster_api", lambda args: api_with(routes)[0])
    yield routes


def test_cli_endpoints_yaml_is_a_target_file(cli_api, capsys: pytest.CaptureFixture[str]) -> None:
    """``dr-serving deploy endpoints -o yaml`` prints a document the load lab reads as targets."""
    cli_api[("GET", ISVC_PATH)] = ["inferenceservices-ready.json"]
    assert main(["deploy", "endpoints", "--namespace", "dr", "--output", "yaml"]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    assert [t.pool for t in parse_targets(document)] == ["amd64", "graviton"]


def test_cli_wait_timeout_is_one_error_line(cli_api, capsys: pytest.CaptureFixture[str]) -> None:
    """A timeout prints one ``Error:`` line and exits 1."""
    cli_api[("GET", ISVC_PATH)] = ["inferenceservices-pending.json"]
    assert main(["deploy", "wait", "-n", "dr", "--timeout", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: InferenceServices not Ready after 0 s: {GRAVITON}: ")
    assert err.count("\n") == 1


def test_cli_pod_timeline_json(cli_api, capsys: pytest.CaptureFixture[str]) -> None:
    """``dr-serving deploy pod-timeline NAME -o json`` prints timestamps and durations per pod."""
    cli_api[("GET", PODS_PATH)] = ["pods-inferenceservice.json"]
    assert main(["deploy", "pod-timeline", GRAVITON, "-n", "dr", "-o", "json"]) == 0
    (cold, starting) = json.loads(capsys.readouterr().out)
    assert cold["model_ready_seconds"] == 5.0 and cold["scheduled"] == "2026-11-23T15:20:03+00:00"
    assert starting["ready"] is None


def test_cli_api_error_is_one_line(cli_api, capsys: pytest.CaptureFixture[str]) -> None:
    """An API error becomes ``Error: Kubernetes API answered 404 ...`` with exit code 1."""
    cli_api[("GET", f"{ISVC_PATH}/nope")] = ["status-not-found.json"]
    assert main(["deploy", "wait-zero", "nope", "-n", "dr"]) == 1
    assert capsys.readouterr().err == "Error: Kubernetes API answered 404 Not Found.\n"


def test_wait_scaled_to_zero_accepts_a_given_revision() -> None:
    """With ``revision=`` no InferenceService lookup is made; the given revision's pods are watched."""
    api, replay = api_with(
        {
            ("GET", f"{REVISIONS_PATH}/r-00002"): ["revision-scale-to-zero.json"],
            ("GET", PODS_PATH): ["pods-empty.json"],
        }
    )
    clock = Clock()
    waited = cluster.wait_scaled_to_zero(
        api, "dr", GRAVITON, revision="r-00002", clock=clock, sleep=clock.sleep
    )
    assert waited == 0
    (_, (_, path, query)) = replay.requests
    assert (path, query["labelSelector"]) == (PODS_PATH, ["serving.knative.dev/revision=r-00002"])


def test_wait_scaled_to_zero_fails_at_once_when_min_scale_keeps_pods() -> None:
    """Finding 17: a revision with min-scale 1 never reaches zero: say so at once, not after the timeout."""
    api, replay = api_with(
        {
            ("GET", f"{ISVC_PATH}/{GRAVITON}"): ["inferenceservice-mobilenet-graviton.json"],
            ("GET", f"{REVISIONS_PATH}/{REVISION}"): ["revision-min-scale-1.json"],
        }
    )
    clock = Clock()
    with pytest.raises(
        ValueError, match=r"keeps at least 1 pod\(s\) \(autoscaling.knative.dev/min-scale: 1\)"
    ):
        cluster.wait_scaled_to_zero(api, "dr", GRAVITON, timeout=900, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []
    assert [path for _, path, _ in replay.requests] == [
        f"{ISVC_PATH}/{GRAVITON}",
        f"{REVISIONS_PATH}/{REVISION}",
    ]


def test_release_selector_ignores_the_chart_name() -> None:
    """Finding 16: nameOverride changes app.kubernetes.io/name, so the selector never uses it."""
    selector = cluster.release_selector("lab")
    assert "app.kubernetes.io/name" not in selector
    assert selector.split(",") == [
        "app.kubernetes.io/component=predictor",
        "dr-serving/model",
        "app.kubernetes.io/instance=lab",
    ]


def test_release_selector_matches_a_renamed_chart() -> None:
    """The labels of an InferenceService rendered (real helm) with nameOverride satisfy the selector."""
    from dr_deploy.release import ReleaseManager, ReleaseSpec

    objects = ReleaseManager().template(ReleaseSpec(namespace="dr", values={"nameOverride": "retina"}))
    labels = next(o for o in objects if o["kind"] == "InferenceService")["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "retina"
    for term in cluster.release_selector("dr-serving").split(","):
        key, _, value = term.partition("=")
        assert key in labels and (not value or labels[key] == value)


def test_standard_endpoints_are_the_cluster_service_and_a_port_forward() -> None:
    """Finding 6: Standard mode's status.url is an istio-class Ingress host Kourier never serves (KServe
    <isvc>-<ns>.<domain>); the endpoint is the in-cluster Service and the port-forward that reaches it."""
    api, _ = api_with({("GET", ISVC_PATH): ["inferenceservices-standard.json"]})
    (endpoint,) = cluster.endpoints(api, "dr", release="dr-serving")
    assert endpoint.mode == "standard"
    assert endpoint.service_url == f"http://{GRAVITON}-dr.example.com"
    assert endpoint.url == f"http://{GRAVITON}-predictor.dr.svc.cluster.local"
    assert endpoint.host is None
    assert endpoint.port_forward == f"kubectl -n dr port-forward svc/{GRAVITON}-predictor 8081:80"
