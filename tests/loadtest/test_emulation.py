from __future__ import annotations

import os
from pathlib import Path

import pytest

from loadtest.emulation import DEFAULT_POOLS, ENVIRONMENT, EmulatedPool, LocalFleet, machine_arch


def test_default_pools_cover_all_cores_and_one() -> None:
    cores = tuple(sorted(os.sched_getaffinity(0)))
    pools = list(DEFAULT_POOLS.values())
    assert pools[0].cpus == cores and pools[0].stands_for == "m5.xlarge"
    if len(cores) > 1:
        assert len(pools[1].cpus) == 1 and pools[1].stands_for == "m4.xlarge"
    assert f"emulation ({os.cpu_count()}-core machine, no cluster)" == ENVIRONMENT


def test_pool_environment_labels_the_predictor() -> None:
    pool = EmulatedPool(name="x86-1cpu", cpus=(1,), stands_for="m4.xlarge", memory_profile="2Gi")
    env = pool.env(model="mobilenet")
    assert (
        env["DR_POOL"] == "x86-1cpu" and env["DR_INSTANCE_TYPE"] == "m4.xlarge" and env["DR_MODE"] == "local"
    )
    assert env["DR_ARCH"] == machine_arch() and env["DR_MEMORY_PROFILE"] == "2Gi"
    # The predictor sizes its threads by the cores it is pinned to (serving.cpus), as a pod by its limit.
    assert not {"OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"} & env.keys()


@pytest.mark.parametrize(
    ("models", "pools", "message"),
    [
        ({}, [DEFAULT_POOLS[next(iter(DEFAULT_POOLS))]], "at least one model"),
        ({"m": Path("no/such/model")}, [DEFAULT_POOLS[next(iter(DEFAULT_POOLS))]], "does not exist"),
        ({"m": Path(".")}, [], "at least one emulated pool"),
    ],
    ids=["no-model", "missing-dir", "no-pool"],
)
def test_fleet_rejects_bad_setups(models: dict, pools: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LocalFleet(models, pools)


def test_memory_profiles_make_distinct_pools() -> None:
    pool = DEFAULT_POOLS[next(iter(DEFAULT_POOLS))]
    labelled = pool.with_memory_profile("2Gi")
    assert labelled.name == f"{pool.name}-2Gi" and labelled.cpus == pool.cpus
    assert labelled.env(model="m")["DR_MEMORY_PROFILE"] == "2Gi"
