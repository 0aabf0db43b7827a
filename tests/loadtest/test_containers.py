"""``loadtest.containers``: memory sizes, the chart's profile CPUs, and what the docker runtime refuses.

The containers themselves run in ``tests/image/test_lab_runtime.py`` (real engine, real image).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dr_cli.main import build_parser
from loadtest.containers import (
    ContainerFleet,
    LabContainer,
    _Life,
    _timestamp,
    chart_profile_cpus,
    memory_bytes,
)
from loadtest.emulation import ALL_POOLS, ARM64_EMULATED, DEFAULT_POOLS, UNPRICED, default_pool_names
from loadtest.report.prices import load_prices
from loadtest.scenarios.options import UsageError
from loadtest.spec import CampaignSpec, LocalTargets
from loadtest.targets import Target


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("1Gi", 1024**3),
        ("512Mi", 512 * 1024**2),
        ("2G", 2 * 10**9),
        ("1.5Gi", 3 * 1024**3 // 2),
        ("8M", 8 * 10**6),
    ],
)
def test_memory_sizes_are_kubernetes_quantities(size: str, expected: int) -> None:
    assert memory_bytes(size) == expected


@pytest.mark.parametrize(
    ("size", "message"), [("1GB", "not a size"), ("lots", "not a size"), ("4Mi", "minimum")]
)
def test_bad_memory_sizes_are_refused(size: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        memory_bytes(size)


def test_profile_cpus_come_from_the_chart() -> None:
    assert chart_profile_cpus() == {"1Gi": 0.5, "2Gi": 1.0, "3Gi": 1.5}
    assert chart_profile_cpus(Path("no/such/values.yaml")) == {}


def test_engine_timestamps_keep_nanoseconds() -> None:
    assert _timestamp("2026-11-30T16:45:50.123456789Z") == pytest.approx(1796057150.123456789, abs=1e-6)
    assert _timestamp("0001-01-01T00:00:00Z") is None and _timestamp("") is None


def test_fleet_plans_flavour_profile_and_cpus(tmp_path: Path) -> None:
    lite, full = tmp_path / "lite", tmp_path / "full"
    lite.mkdir(), full.mkdir()
    (lite / "model.tflite").write_bytes(b"x")
    pool = DEFAULT_POOLS[default_pool_names()[0]]
    fleet = ContainerFleet(
        {"a": lite, "b": full},
        [pool.with_memory_profile("1Gi"), pool.with_memory_profile("768Mi")],
        image_suffix="test",
    )
    planned = {(c.target.model, c.memory_profile): c for _, _, c in fleet._planned}
    assert planned["a", "1Gi"].flavour == "lite" and planned["b", "1Gi"].flavour == "full"
    assert planned["a", "1Gi"].image.endswith("-lite-test") and planned["b", "1Gi"].image.endswith(
        "-full-test"
    )
    assert planned["a", "1Gi"].cpus == min(0.5, len(pool.cpus))  # the chart's 1Gi profile
    assert planned["a", "768Mi"].cpus == len(pool.cpus)  # no chart profile: the pool's cores
    assert planned["a", "768Mi"].memory_limit == 768 * 1024**2
    assert fleet.images == sorted({c.image for c in planned.values()})


@pytest.mark.parametrize(("precision", "flavour"), [("int8", "lite"), ("bf16", "full"), ("fp32", "full")])
def test_precision_picks_the_image_that_runs_it_and_reaches_the_predictor(
    tmp_path: Path, precision: str, flavour: str
) -> None:
    pool = DEFAULT_POOLS[default_pool_names()[0]]
    fleet = ContainerFleet({"m": tmp_path}, [pool], precision=precision)  # no model.tflite
    _, model, container = fleet._planned[0]
    assert container.flavour == flavour
    env = fleet.container_env(pool, model, container)
    assert env["DR_PRECISION"] == precision and env["DR_POOL"] == pool.name
    # As in the chart: the predictor sizes its threads by the CPU limit unless --threads asks for a count.
    variables = {"OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "DR_THREADS"}
    assert not variables & env.keys()
    counted = ContainerFleet({"m": tmp_path}, [pool], precision=precision, threads=1)
    assert counted.container_env(pool, model, container)["DR_THREADS"] == "1"


@pytest.mark.skipif(ARM64_EMULATED not in ALL_POOLS, reason="an arm64 host has no emulated pool")
def test_arm64_emulated_pool_runs_lite_only_and_is_priced_as_nothing(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    pool = ALL_POOLS[ARM64_EMULATED]
    assert pool.docker_only and pool.arch == "arm64" and ARM64_EMULATED not in default_pool_names()
    with pytest.raises(ValueError, match="arm64 lite image only"):
        ContainerFleet({"b": full}, [pool])
    (full / "model.tflite").write_bytes(b"x")
    fleet = ContainerFleet({"b": full}, [pool])
    container = fleet._planned[0][2]
    assert container.emulated and container.image.endswith("-lite-arm64")
    assert container.target.instance_type == UNPRICED and container.target.price_per_hour == 0.0
    prices = load_prices()
    assert prices.price_for(instance_type=UNPRICED, pool=ARM64_EMULATED, memory_profile="2Gi") is None


def test_docker_flags_reach_the_spec_and_survive_json() -> None:
    ns = build_parser().parse_args(
        ["lab", "run", "warm-up", "--runtime", "docker", "--image-suffix", "test", "--image-flavour", "full",
         "--pull-bandwidth", "25", "--memory-profiles", "1Gi,512Mi"]
    )  # fmt: skip
    spec = CampaignSpec.from_args(ns)
    assert spec.targets == LocalTargets(
        runtime="docker",
        image_suffix="test",
        flavour="full",
        pull_mb_per_s=25.0,
        memory_profiles=("1Gi", "512Mi"),
    )
    assert CampaignSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (LocalTargets(runtime="docker", memory_profiles=("1GB",)), "not a size"),
        (LocalTargets(runtime="docker", pull_mb_per_s=0.0), "--pull-bandwidth"),
    ]
    + ([(LocalTargets(pools=(ARM64_EMULATED,)), "--runtime docker")] if ARM64_EMULATED in ALL_POOLS else []),
)
def test_docker_runtime_checks(targets: LocalTargets, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        targets.check()


def test_container_report_peak_steady_and_cpu() -> None:
    target = Target(model="m", url="http://127.0.0.1:1", pool="p", memory_profile="1Gi")
    container = LabContainer(
        target=target, image="i", flavour="lite", arch="amd64", memory_profile="1Gi",
        memory_limit=1024**3, cpus=0.5, name="c",
    )  # fmt: skip
    mib = 1024**2
    life = _Life(started=0.0, ready=2.0, kernel_peak=300 * mib)
    life.working_set = [(1.0, 250 * mib), (2.5, 100 * mib), (3.0, 110 * mib), (3.5, 120 * mib)]
    # Cumulative since the cgroup was created at 0 s: 0.2 s of CPU before the first sample.
    life.cpu_ns = [(1.0, 200_000_000), (2.0, 600_000_000), (3.0, 800_000_000)]
    container.lives.append(life)
    container.status = "running"
    item = container.report()
    assert item["peak_mib"] == 300 and item["peak_source"].startswith("kernel")
    assert item["steady_working_set_mib"] == 110  # the median once ready, the start-up spike left out
    assert item["peak_working_set_mib"] == 250
    assert item["cpu_seconds"] == 0.8 and item["cpu_mean_cores"] == 0.267 and item["cpu_peak_cores"] == 0.4
    container.status = "oom-killed"
    assert container.report()["peak_mib"] == 1024 and container.report()["peak_pct_of_limit"] == 100
