"""Cold start: K requests per target, each sent only once the target is at zero, with where the time went.

Locally the predictor process is stopped, started again, and the request is held until it is ready (as
Knative's activator holds it); the breakdown is process start → ready (of which the server's own
``dr_startup_seconds`` and ``dr_model_load_seconds``) → first response. With the docker runtime the container
is stopped (scale to zero) and started again: container start (``docker start`` → the engine's
``State.StartedAt``) → process start → model loaded → ready → first answer; the image pull, absent locally, is
estimated from the compressed image size at a stated bandwidth. On a cluster the lab waits for zero pods of
the revision, sends the request through the ingress, and decomposes it with the pod's condition timestamps
(scheduled → initialized → containers ready) plus the server's start-up and model-load gauges, read from
Prometheus by the pod's name (``loadtest/pod_startup.py``; ``server_figures_from`` says where they came from
or why they are missing). Cold requests are labelled ``cold``; ``--warm-after`` warm requests follow each one
for comparison.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from loadtest.campaign import Campaign
from loadtest.containers import ContainerFleet, server_startup_metrics
from loadtest.pod_startup import PodStartup, wait_pod_startup
from loadtest.protocols import build_request, read_answer
from loadtest.scenarios.options import ColdStartOptions
from loadtest.targets import Target

__all__ = ["ColdStartError", "check", "run", "server_startup_metrics"]


class ColdStartError(RuntimeError):
    """A cold request did not get a prediction."""


def _context(campaign: Campaign, target: Target, phase: str) -> dict[str, Any]:
    return {
        **target.labels(),
        "scenario": campaign.scenario,
        "protocol": campaign.protocol,
        "phase": phase,
        "users": 1,
    }


def _post(session: requests.Session, campaign: Campaign, target: Target, timeout: float) -> requests.Response:
    prepared = build_request(campaign.protocol, target.model, campaign.images.next(), host=target.host)
    return session.post(
        target.base_url + prepared.path, data=prepared.body, headers=prepared.headers, timeout=timeout
    )


def _send(
    session: requests.Session,
    campaign: Campaign,
    target: Target,
    *,
    phase: str,
    timeout: float,
    before: Any = None,
) -> dict[str, Any]:
    """Send one request timed as a whole (with ``before()``, e.g. waiting for readiness) and record it."""
    facts: dict[str, Any] = {}
    with campaign.environment.events.request.measure(
        phase.upper(), f"{target.name} {phase}", context=_context(campaign, target, phase)
    ) as meta:
        start = time.monotonic()
        if before is not None:
            facts.update(before())
        sent = time.monotonic()
        response = _post(session, campaign, target, timeout)
        facts["request_s"] = time.monotonic() - sent
        facts["total_s"] = time.monotonic() - start
        meta["response"] = response
        meta["response_length"] = len(response.content)
        answer = read_answer(response)
        facts["server_prediction_ms"] = answer.prediction_ms
        facts["server_ms"] = answer.server_ms
        if not answer.ok:
            raise ColdStartError(f"The {phase} request to {target.name} got no prediction: {answer.problem}.")
    facts["error"] = str(meta["exception"]) if meta["exception"] else ""
    return facts


def _local_cold(
    campaign: Campaign, target: Target, options: ColdStartOptions, session: requests.Session
) -> dict:
    fleet = campaign.fleet
    assert fleet is not None
    fleet.stop_target(target)
    holder: dict[str, Any] = {}

    def start_and_wait() -> dict[str, float]:
        start = time.monotonic()
        process = fleet.restart_target(target)
        holder["process"] = process
        return {
            "process_start_to_ready_s": process.wait_ready(options.ready_timeout) or time.monotonic() - start
        }

    facts = _send(
        session, campaign, target, phase="cold", timeout=options.ready_timeout, before=start_and_wait
    )
    try:
        metrics = session.get(f"{target.base_url}/metrics", timeout=10).text
        server = server_startup_metrics(metrics)
    except requests.RequestException:
        server = {}
    return {
        "target": target.name,
        "kind": "local process restart",
        "process_start_to_ready_s": round(facts.get("process_start_to_ready_s", 0.0), 3),
        "server_startup_s": server.get("dr_startup_seconds"),
        "model_load_s": server.get("dr_model_load_seconds"),
        "ready_to_first_response_s": round(facts.get("request_s", 0.0), 3),
        "first_response_server_prediction_ms": facts.get("server_prediction_ms"),
        "total_s": round(facts.get("total_s", 0.0), 3),
        "error": facts.get("error", ""),
    }


def _container_cold(
    campaign: Campaign, target: Target, options: ColdStartOptions, session: requests.Session
) -> dict:
    """Scale to zero (``docker stop``), then a request that starts the container and waits for ready."""
    fleet = campaign.fleet
    assert isinstance(fleet, ContainerFleet)
    fleet.stop_target(target)
    holder: dict[str, Any] = {}

    def start_and_wait() -> dict[str, float]:
        holder.update(fleet.cold_start(target, timeout=options.ready_timeout))
        return {}

    facts = _send(
        session, campaign, target, phase="cold", timeout=options.ready_timeout, before=start_and_wait
    )
    if holder:
        holder.update(fleet.startup_marks(target, holder))
    container_start = holder.get("container_start_s")
    startup = holder.get("server_startup_s")
    load = holder.get("model_load_s")
    ready_wait = holder.get("request_to_ready_s")
    overhead = None
    if ready_wait is not None and container_start is not None and startup is not None:
        overhead = round(max(ready_wait - container_start - startup, 0.0), 3)
    return {
        "target": target.name,
        "kind": "container start from zero (docker)",
        "container_start_s": container_start,
        "process_start_to_ready_s": round(startup, 3) if startup is not None else None,
        "imports_and_setup_s": round(startup - load, 3) if startup is not None and load is not None else None,
        "model_load_s": round(load, 3) if load is not None else None,
        "readiness_seen_after_s": overhead,
        "ready_to_first_response_s": round(facts.get("request_s", 0.0), 3),
        "first_response_server_prediction_ms": facts.get("server_prediction_ms"),
        "total_s": round(facts.get("total_s", 0.0), 3),
        "error": facts.get("error", ""),
    }


def _add_pull_estimates(campaign: Campaign, fleet: ContainerFleet, breakdowns: list[dict[str, Any]]) -> None:
    """Image pull is absent locally (the image is cached): add its estimate and the comparable total."""
    estimates: dict[str, dict[str, Any]] = {}
    for entry in breakdowns:
        image = fleet.containers[entry["target"]].image
        if image not in estimates:
            estimates[image] = fleet.pull_estimate(image)
        estimate = dict(estimates[image])
        note = estimate.pop("image_pull")
        settings = campaign.settings.setdefault("image_pull", note)
        if note not in settings:
            campaign.settings["image_pull"] = f"{settings}; {note}"
        entry.update(estimate)
        if "image_pull_estimate_s" in estimate and entry.get("total_s") is not None:
            entry["total_with_pull_estimate_s"] = round(
                entry["total_s"] + estimate["image_pull_estimate_s"], 3
            )


def _cluster_cold(
    campaign: Campaign, target: Target, options: ColdStartOptions, session: requests.Session
) -> dict:
    from dr_deploy import cluster

    api = cluster.api_client()
    namespace = options.namespace or target.extra.get("namespace") or "dr-serving"
    service = target.extra.get("inference_service") or target.model
    campaign.say(f"cold-start: waiting for {service} ({namespace}) to have zero pods …")
    waited = cluster.wait_scaled_to_zero(api, namespace, service, timeout=options.zero_timeout)
    sent_at = datetime.now(UTC)
    facts = _send(session, campaign, target, phase="cold", timeout=options.ready_timeout)
    answered_at = sent_at + timedelta(seconds=facts.get("total_s", 0.0))
    # Condition timestamps have 1 s resolution: the new pod is the newest one created around the request.
    fresh = [
        t
        for t in cluster.pod_timelines(api, namespace, service)
        if t.created >= sent_at - timedelta(seconds=2)
    ]
    breakdown: dict[str, Any] = {
        "target": target.name,
        "kind": "cluster scale from zero",
        "waited_for_zero_s": round(waited, 3),
    }
    # The gateway answers 404 on /metrics (the chart serves it on its own port to the monitoring namespaces):
    # the fresh pod's start-up gauges come from Prometheus, by the pod's name, once it has scraped the pod.
    server = PodStartup(figures={}, source=f"missing: no new pod of {service} was found")
    if fresh:
        timeline = fresh[-1]
        breakdown.update(pod=timeline.pod, node=timeline.node, **timeline.durations())
        if timeline.ready is not None:
            breakdown["ready_to_first_response_s"] = round((answered_at - timeline.ready).total_seconds(), 3)
        if campaign.prometheus_url:
            campaign.say(f"cold-start: waiting for Prometheus to scrape {timeline.pod} …")
        server = wait_pod_startup(
            campaign.prometheus_url,
            namespace=namespace,
            pod=timeline.pod,
            since=sent_at.timestamp(),
            timeout=options.metrics_timeout,
        )
    breakdown.update(
        **server.breakdown(),
        first_response_server_prediction_ms=facts.get("server_prediction_ms"),
        total_s=round(facts.get("total_s", 0.0), 3),
        error=facts.get("error", ""),
    )
    return breakdown


def check(options: ColdStartOptions, *, seed: int) -> None:
    """Nothing to check beyond ``ColdStartOptions.validate``."""


def run(campaign: Campaign, options: ColdStartOptions) -> None:
    """Measure ``cold_requests`` cold starts per target, each followed by ``warm_after`` warm requests."""
    campaign.settings.update(
        cold_requests=options.cold_requests,
        warm_after=options.warm_after,
        client_timeout_s=options.ready_timeout,
    )
    breakdowns = []
    total = len(campaign.targets) * options.cold_requests
    with requests.Session() as session, campaign.progress() as progress:
        task = progress.add_task("cold starts", total=total)
        for target in campaign.targets:
            for _ in range(options.cold_requests):
                if isinstance(campaign.fleet, ContainerFleet):
                    breakdown = _container_cold(campaign, target, options, session)
                elif campaign.fleet is not None:
                    breakdown = _local_cold(campaign, target, options, session)
                else:
                    breakdown = _cluster_cold(campaign, target, options, session)
                breakdowns.append(breakdown)
                for _ in range(options.warm_after):
                    _send(session, campaign, target, phase="warm", timeout=options.ready_timeout)
                progress.advance(task)
    if isinstance(campaign.fleet, ContainerFleet):
        _add_pull_estimates(campaign, campaign.fleet, breakdowns)
    campaign.cold_start.extend(breakdowns)
