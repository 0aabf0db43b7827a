"""``dr_deploy.placement``: the release's pools from the real helm render, against the nodes of the recorded
kind cluster (``recorded/nodes-kind.json``, read by a real kubernetes ApiClient through ``Replay``)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from replay import api_with

from dr_deploy.placement import inference_service_pool, loadtest_pools, node_problems
from dr_deploy.release import CHART_DIR, ReleaseManager, ReleaseSpec

KIND = CHART_DIR / "ci" / "kind-values.yaml"


def _render(**values: Any) -> list[dict[str, Any]]:
    return ReleaseManager().template(ReleaseSpec(namespace="dr", values_files=(Path(KIND),), values=values))


def _nodes(recorded: str = "nodes-kind.json") -> list[Any]:
    api, _ = api_with({("GET", "/api/v1/nodes"): [recorded]})
    return client.CoreV1Api(api).list_node().items


def test_loadtest_pool_sums_what_its_pods_request() -> None:
    """Master (1 × 500m, 1Gi) and workers (replicas × 1 CPU, 512Mi) share one pool with their total."""
    (pool,) = loadtest_pools(_render(loadtest={"enabled": True, "workers": 3}))
    assert pool.workloads == ("dr-serving-loadtest-master", "dr-serving-loadtest-worker")
    assert pool.requests == {"cpu": Decimal("3.5"), "memory": Decimal(2**30 + 3 * 512 * 2**20)}
    assert pool.tolerations == (
        {"key": "dr-serving/pool", "operator": "Equal", "value": "loadgen", "effect": "NoSchedule"},
    )
    assert loadtest_pools(_render()) == []


@pytest.mark.parametrize(("workers", "problems"), [(2, 0), (3, 0), (4, 1)])
def test_capacity_is_the_fitting_nodes_allocatable(workers: int, problems: int) -> None:
    """The recorded loadgen worker allocates 4 CPUs: 0.5 + 3 × 1 fit, 0.5 + 4 × 1 do not."""
    objects = _render(loadtest={"enabled": True, "workers": workers})
    found = node_problems(_nodes(), loadtest_pools(objects))
    assert len(found) == problems
    if problems:
        assert found[0].line() == (
            "capacity: dr-serving-loadtest-master and dr-serving-loadtest-worker request cpu 4.5 (the nodes "
            "allocate 4) on pool loadgen, more than its 1 node(s) can hold, so some of their pods stay "
            "Pending. Fix: set fewer loadtest.workers or smaller loadtest.workerResources/masterResources "
            "requests, or add nodes to the pool (kind: every node reports the host's cores)."
        )


def test_predictor_pools_need_a_matching_node_only() -> None:
    """An InferenceService's pool has no request total: only the node match is checked."""
    isvcs = [o for o in _render() if o["kind"] == "InferenceService"]
    pools = [inference_service_pool(isvc) for isvc in isvcs]
    assert [p.requests for p in pools] == [{}, {}]
    assert node_problems(_nodes(), pools) == []
    (missing,) = node_problems(_nodes("nodes-amd64-only.json"), pools)
    assert missing.check == "nodes" and "dr-serving-mobilenet-graviton stays Pending" in missing.message
