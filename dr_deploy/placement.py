"""Where the release's pods must land, and whether the cluster's nodes can take them.

A ``Pool`` is one placement (node selector + tolerations) with the workloads that share it: each
InferenceService on its own, the load generator's master and workers together (``loadtest.enabled``), with
what the load generator's pods request in total. ``node_problems`` finds, for each pool, the schedulable
nodes whose labels match and whose NoSchedule/NoExecute taints are tolerated, and says when there are none,
or when their allocatable CPU or memory, all together, is less than the pool's pods request (then some stay
Pending whatever else runs there; on kind every node reports the host's cores).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity

from dr_deploy.problems import Problem

__all__ = ["Pool", "inference_service_pool", "loadtest_pools", "node_problems"]

#: Resources whose requests are compared with the nodes' allocatable amounts.
RESOURCES = ("cpu", "memory")


@dataclass(frozen=True, kw_only=True)
class Pool:
    """Where some workloads' pods must land, what they request in total (when known), and the fix."""

    workloads: tuple[str, ...]
    pool: str
    node_selector: Mapping[str, str]
    tolerations: tuple[Mapping[str, Any], ...]
    fix: str
    requests: Mapping[str, Decimal] = field(default_factory=dict)


def inference_service_pool(isvc: Mapping[str, Any]) -> Pool:
    """The placement of one rendered InferenceService's predictor."""
    name, predictor = isvc["metadata"]["name"], isvc["spec"]["predictor"]
    pool = isvc["metadata"].get("labels", {}).get("dr-serving/pool", name)
    return Pool(
        workloads=(name,),
        pool=pool,
        node_selector=dict(predictor.get("nodeSelector") or {}),
        tolerations=tuple(predictor.get("tolerations") or ()),
        fix=f"add such a node (group), or set pools.{pool}.enabled=false.",
    )


def _pod_requests(pod: Mapping[str, Any], replicas: int) -> dict[str, Decimal]:
    total = dict.fromkeys(RESOURCES, Decimal(0))
    for container in pod.get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        for resource in RESOURCES:
            if resource in requests:
                total[resource] += parse_quantity(requests[resource]) * replicas
    return total


def loadtest_pools(objects: Iterable[Mapping[str, Any]]) -> list[Pool]:
    """The load generator's master and worker Deployments, one pool per placement they share."""
    placements: dict[str, tuple[dict[str, Any], list[str], dict[str, Decimal]]] = {}
    for obj in objects:
        template = (obj.get("spec") or {}).get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if obj.get("kind") != "Deployment" or "dr-serving/loadtest-pool" not in labels:
            continue
        pod = template.get("spec") or {}
        placement = {
            "pool": labels["dr-serving/loadtest-pool"],
            "node_selector": dict(pod.get("nodeSelector") or {}),
            "tolerations": tuple(pod.get("tolerations") or ()),
        }
        _, names, requests = placements.setdefault(
            json.dumps(placement, sort_keys=True), (placement, [], dict.fromkeys(RESOURCES, Decimal(0)))
        )
        names.append(obj["metadata"]["name"])
        for resource, amount in _pod_requests(pod, int(obj["spec"].get("replicas", 1))).items():
            requests[resource] += amount
    return [
        Pool(
            workloads=tuple(names),
            **placement,
            requests=requests,
            fix="add a node (group) with that label and a taint loadtest.tolerations tolerates (kind: "
            "kind-config.yaml's loadgen worker: make kind-down kind-up), or set loadtest.nodeSelector.",
        )
        for placement, names, requests in placements.values()
    ]


def _tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Any) -> bool:
    for toleration in tolerations:
        if toleration.get("effect") and toleration["effect"] != taint.effect:
            continue
        if toleration.get("operator") == "Exists" and (
            not toleration.get("key") or toleration["key"] == taint.key
        ):
            return True
        if toleration.get("key") == taint.key and toleration.get("value") == taint.value:
            return True
    return False


def _fits(node: Any, pool: Pool) -> bool:
    return (
        not (node.spec and node.spec.unschedulable)
        and all((node.metadata.labels or {}).get(k) == v for k, v in pool.node_selector.items())
        and all(
            _tolerates(pool.tolerations, taint)
            for taint in (node.spec.taints if node.spec else None) or []
            if taint.effect in ("NoSchedule", "NoExecute")
        )
    )


def _amount(resource: str, value: Decimal) -> str:
    if resource == "memory":
        return f"{value / 2**30:.3g}Gi"
    return f"{value.normalize():f}"


def _capacity_problem(pool: Pool, nodes: list[Any]) -> Problem | None:
    """A problem when the fitting nodes' allocatable amounts, summed, are below the pool's requests."""
    allocatable = [(node.status.allocatable or {}) if node.status else {} for node in nodes]
    short = []
    for resource, wanted in pool.requests.items():
        if not wanted or not all(resource in amounts for amounts in allocatable):
            continue
        offered = sum((parse_quantity(amounts[resource]) for amounts in allocatable), Decimal(0))
        if offered < wanted:
            short.append(
                f"{resource} {_amount(resource, wanted)} (the nodes allocate {_amount(resource, offered)})"
            )
    if not short:
        return None
    return Problem(
        "capacity",
        f"{' and '.join(pool.workloads)} request {', '.join(short)} on pool {pool.pool}, more than its "
        f"{len(nodes)} node(s) can hold, so some of their pods stay Pending.",
        "set fewer loadtest.workers or smaller loadtest.workerResources/masterResources requests, or add "
        "nodes to the pool (kind: every node reports the host's cores).",
    )


def node_problems(nodes: list[Any], pools: Iterable[Pool]) -> list[Problem]:
    """For each pool: no node it may use, or too little allocatable CPU/memory on those nodes."""
    problems = []
    for pool in pools:
        fits = [node for node in nodes if _fits(node, pool)]
        if not fits:
            wanted = ", ".join(f"{k}={v}" for k, v in pool.node_selector.items()) or "any labels"
            stay = "stays" if len(pool.workloads) == 1 else "stay"
            problems.append(
                Problem(
                    "nodes",
                    f"no schedulable node has {wanted} with taints that pool {pool.pool} tolerates, so "
                    f"{' and '.join(pool.workloads)} {stay} Pending.",
                    pool.fix,
                )
            )
        elif (capacity := _capacity_problem(pool, fits)) is not None:
            problems.append(capacity)
    return problems
