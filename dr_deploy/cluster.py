"""Cluster knowledge for ``dr-serving deploy`` and the load lab, built on the ``kubernetes`` client.

- ``list_inference_services`` / ``wait_ready``: the release's InferenceServices and their Ready condition.
- ``endpoints``: one ``Endpoint`` per (model x pool): Knative mode, the ingress URL to send to and the Host
  header to route by; Standard mode, the in-cluster Service URL and the port-forward that reaches it.
- ``wait_scaled_to_zero``: block until a Knative revision has no pods (the start of a cold-start measurement).
- ``pod_timeline`` / ``pod_timelines``: pod condition timestamps as a ``PodTimeline`` whose durations split a
  cold start into scheduling, init (storage initializer), container start (image pull) and model load.

Every function takes a ``kubernetes.client.ApiClient`` (``api_client()`` builds one from kubeconfig or the
in-cluster service account), so tests can hand in a client whose transport replays recorded API answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from kubernetes import client, config

__all__ = [
    "DEFAULT_INGRESS_URL",
    "Endpoint",
    "InferenceServiceState",
    "PodTimeline",
    "api_client",
    "endpoints",
    "latest_revision",
    "list_inference_services",
    "pod_timeline",
    "pod_timelines",
    "release_selector",
    "revision_min_scale",
    "revision_pods",
    "wait_ready",
    "wait_scaled_to_zero",
]

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
KNATIVE_GROUP, KNATIVE_VERSION = "serving.knative.dev", "v1"
MIN_SCALE = "autoscaling.knative.dev/min-scale"
PREDICTOR_CONTAINER = "kserve-container"
#: Kourier on kind (kind-config.yaml maps its NodePort here).
DEFAULT_INGRESS_URL = "http://127.0.0.1:8080"


def api_client(*, kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """Build an API client from a kubeconfig (default location unless given) or the in-cluster account."""
    try:
        cfg = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
    except config.ConfigException as exc:
        try:
            cfg = client.Configuration()
            config.load_incluster_config(client_configuration=cfg)
        except config.ConfigException:
            raise RuntimeError(
                f"No Kubernetes configuration found ({exc}); set KUBECONFIG or pass --kubeconfig."
            ) from exc
    return client.ApiClient(cfg)


def release_selector(release: str | None) -> str:
    """Label selector for the chart's InferenceServices, of one release or of all.

    Selects on the release (``app.kubernetes.io/instance``) and the component, never on the chart name, which
    ``nameOverride`` changes; ``dr-serving/model`` is a label only this chart sets.
    """
    selector = "app.kubernetes.io/component=predictor,dr-serving/model"
    return f"{selector},app.kubernetes.io/instance={release}" if release else selector


@dataclass(frozen=True, kw_only=True)
class InferenceServiceState:
    """One InferenceService as the chart labelled it, with its Ready condition and URL."""

    name: str
    namespace: str
    model: str
    pool: str
    arch: str
    mode: str
    ready: bool
    url: str | None
    address_url: str | None
    reason: str | None
    latest_ready_revision: str | None
    env: dict[str, str]

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> InferenceServiceState:
        """Read the state from an InferenceService object as the API returns it."""
        meta, status = obj["metadata"], obj.get("status") or {}
        labels = meta.get("labels") or {}
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
        predictor = (status.get("components") or {}).get("predictor") or {}
        containers = obj.get("spec", {}).get("predictor", {}).get("containers") or [{}]
        env = {e["name"]: e["value"] for e in containers[0].get("env") or [] if "value" in e}
        return cls(
            name=meta["name"],
            namespace=meta.get("namespace", ""),
            model=labels.get("dr-serving/model", meta["name"]),
            pool=labels.get("dr-serving/pool", "unknown"),
            arch=labels.get("dr-serving/arch", "unknown"),
            mode=labels.get("dr-serving/mode", "unknown"),
            ready=ready.get("status") == "True",
            url=status.get("url"),
            address_url=(status.get("address") or {}).get("url"),
            reason=ready.get("message") or ready.get("reason"),
            latest_ready_revision=predictor.get("latestReadyRevision"),
            env=env,
        )


def list_inference_services(
    api: client.ApiClient, namespace: str, *, release: str | None = None
) -> list[InferenceServiceState]:
    """The chart's InferenceServices in ``namespace`` (of ``release`` if given), sorted by name."""
    answer = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, label_selector=release_selector(release)
    )
    states = [InferenceServiceState.from_object(item) for item in answer.get("items", [])]
    return sorted(states, key=lambda s: s.name)


def wait_ready(
    api: client.ApiClient,
    namespace: str,
    *,
    release: str | None = None,
    timeout: float = 600.0,
    poll: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[InferenceServiceState]:
    """Wait until every InferenceService of the release is Ready; raises TimeoutError naming the others."""
    deadline = clock() + timeout
    while True:
        states = list_inference_services(api, namespace, release=release)
        pending = [s for s in states if not s.ready]
        if states and not pending:
            return states
        if clock() >= deadline:
            if not states:
                raise TimeoutError(
                    f"No InferenceService matching {release_selector(release)!r} appeared in namespace "
                    f"{namespace!r} within {timeout:g} s."
                )
            details = "; ".join(f"{s.name}: {s.reason or 'no Ready condition yet'}" for s in pending)
            raise TimeoutError(f"InferenceServices not Ready after {timeout:g} s: {details}.")
        sleep(poll)


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """How to reach one (model x pool).

    Knative mode: POST to ``url`` (the ingress) with the ``host`` header (from ``status.url``). Standard mode:
    KServe's ``status.url`` (``<isvc>-<namespace>.<domain>``) is served by an Ingress of class ``istio``
    (kserve v0.20.0 reconcilers/ingress/kube_ingress_reconciler.go:106-141), which Kourier does not serve, so
    ``url`` is the in-cluster Service (``status.address.url``), ``host`` is None and ``port_forward`` is the
    command that makes it reachable on 127.0.0.1:8081.
    """

    inference_service: str
    model: str
    pool: str
    arch: str
    mode: str
    instance_type: str
    memory_profile: str | None
    price_per_hour: float | None
    url: str
    host: str | None
    service_url: str | None
    port_forward: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping in the form load-lab target files use."""
        return {key: value for key, value in asdict(self).items() if value is not None}


def endpoints(
    api: client.ApiClient,
    namespace: str,
    *,
    release: str | None = None,
    ingress_url: str = DEFAULT_INGRESS_URL,
) -> list[Endpoint]:
    """One endpoint per InferenceService: Knative, ``ingress_url`` plus the host of its ``status.url``;
    Standard, its in-cluster address and the port-forward to reach it (see ``Endpoint``)."""
    found = []
    for state in list_inference_services(api, namespace, release=release):
        price = state.env.get("DR_PRICE_PER_HOUR")
        common = {
            "inference_service": state.name,
            "model": state.model,
            "pool": state.pool,
            "arch": state.arch,
            "mode": state.mode,
            "instance_type": state.env.get("DR_INSTANCE_TYPE", "unknown"),
            "memory_profile": state.env.get("DR_MEMORY_PROFILE"),
            "price_per_hour": float(price) if price else None,
        }
        if state.mode == "standard":
            found.append(
                Endpoint(
                    **common,
                    url=state.address_url or f"http://{state.name}-predictor.{namespace}.svc.cluster.local",
                    host=None,
                    service_url=state.url,
                    port_forward=f"kubectl -n {namespace} port-forward svc/{state.name}-predictor 8081:80",
                )
            )
        else:
            found.append(
                Endpoint(
                    **common,
                    url=ingress_url.rstrip("/"),
                    host=urlsplit(state.url).hostname if state.url else None,
                    service_url=state.url,
                )
            )
    return found


def latest_revision(api: client.ApiClient, namespace: str, name: str) -> str:
    """The latest ready Knative revision of an InferenceService's predictor."""
    obj = client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    revision = InferenceServiceState.from_object(obj).latest_ready_revision
    if not revision:
        raise LookupError(
            f"InferenceService {name!r} has no ready Knative revision (Standard mode, or not Ready yet?)."
        )
    return revision


def revision_min_scale(api: client.ApiClient, namespace: str, revision: str) -> int:
    """The revision's ``autoscaling.knative.dev/min-scale`` (0 when unset)."""
    obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
        KNATIVE_GROUP, KNATIVE_VERSION, namespace, "revisions", revision
    )
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(MIN_SCALE, "0")
    try:
        return int(value)
    except ValueError:
        return 0


def revision_pods(api: client.ApiClient, namespace: str, revision: str) -> list[client.V1Pod]:
    """Pods of one Knative revision (terminating ones included)."""
    answer = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"serving.knative.dev/revision={revision}"
    )
    return list(answer.items)


def wait_scaled_to_zero(
    api: client.ApiClient,
    namespace: str,
    name: str,
    *,
    revision: str | None = None,
    timeout: float = 300.0,
    poll: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait until a revision (default: the latest of ``name``) has no pods; returns the seconds waited.

    Fails at once (ValueError) when the revision keeps a floor of pods: its
    ``autoscaling.knative.dev/min-scale`` annotation, which KServe writes from ``minReplicas``, is above 0.
    """
    revision = revision or latest_revision(api, namespace, name)
    floor = revision_min_scale(api, namespace, revision)
    if floor > 0:
        raise ValueError(
            f"Revision {revision!r} keeps at least {floor} pod(s) ({MIN_SCALE}: {floor}); it never scales to "
            f"zero. Install with knative.minReplicas=0."
        )
    start = clock()
    while True:
        pods = revision_pods(api, namespace, revision)
        if not pods:
            return clock() - start
        if clock() - start >= timeout:
            names = ", ".join(p.metadata.name for p in pods)
            raise TimeoutError(
                f"Revision {revision!r} still has {len(pods)} pod(s) after {timeout:g} s: {names}."
            )
        sleep(poll)


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    return (later - earlier).total_seconds() if later and earlier else None


@dataclass(frozen=True, kw_only=True)
class PodTimeline:
    """Pod condition timestamps (1 s resolution, from the API server) of one predictor pod.

    The durations split a cold start: ``created`` → ``scheduled`` (a node was chosen) → ``initialized``
    (init containers such as KServe's storage-initializer finished) → ``container_started``
    (kserve-container running: image pulled, process started) → ``containers_ready`` (readiness probe on
    the model route passed: model loaded) → ``ready`` (pod Ready, endpoints updated).
    """

    pod: str
    node: str | None
    created: datetime
    scheduled: datetime | None
    initialized: datetime | None
    container_started: datetime | None
    containers_ready: datetime | None
    ready: datetime | None

    @property
    def scheduling_seconds(self) -> float | None:
        """Creation to PodScheduled: waiting for a node (or for a new one to join)."""
        return _seconds(self.scheduled, self.created)

    @property
    def initialization_seconds(self) -> float | None:
        """PodScheduled to Initialized: init containers, mainly the storage initializer's model download."""
        return _seconds(self.initialized, self.scheduled)

    @property
    def container_start_seconds(self) -> float | None:
        """Initialized to kserve-container running: image pull and container start."""
        return _seconds(self.container_started, self.initialized)

    @property
    def model_ready_seconds(self) -> float | None:
        """kserve-container running to ContainersReady: server start and model load until the probe passes."""
        return _seconds(self.containers_ready, self.container_started)

    @property
    def total_seconds(self) -> float | None:
        """Creation to Ready: the whole pod start-up of a cold start."""
        return _seconds(self.ready, self.created)

    def durations(self) -> dict[str, float | None]:
        """The named durations, in the order they happen."""
        return {
            "scheduling_seconds": self.scheduling_seconds,
            "initialization_seconds": self.initialization_seconds,
            "container_start_seconds": self.container_start_seconds,
            "model_ready_seconds": self.model_ready_seconds,
            "total_seconds": self.total_seconds,
        }

    def to_dict(self) -> dict[str, Any]:
        """Timestamps as ISO 8601 strings plus the durations."""
        stamps = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}
        return {**stamps, **self.durations()}


def pod_timeline(pod: client.V1Pod) -> PodTimeline:
    """Read a ``PodTimeline`` from a pod's conditions and its kserve-container status."""
    conditions = {c.type: c.last_transition_time for c in pod.status.conditions or [] if c.status == "True"}
    started = None
    for status in pod.status.container_statuses or []:
        if status.name == PREDICTOR_CONTAINER and status.state and status.state.running:
            started = status.state.running.started_at
    return PodTimeline(
        pod=pod.metadata.name,
        node=pod.spec.node_name if pod.spec else None,
        created=pod.metadata.creation_timestamp,
        scheduled=conditions.get("PodScheduled"),
        initialized=conditions.get("Initialized"),
        container_started=started,
        containers_ready=conditions.get("ContainersReady"),
        ready=conditions.get("Ready"),
    )


def pod_timelines(api: client.ApiClient, namespace: str, name: str) -> list[PodTimeline]:
    """Timelines of every pod of InferenceService ``name``, oldest first."""
    answer = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"serving.kserve.io/inferenceservice={name}"
    )
    return sorted((pod_timeline(p) for p in answer.items), key=lambda t: t.created)
