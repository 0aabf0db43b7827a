"""``CampaignSpec``: built from the real parser, checked, and carried to the child as JSON without loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dr_cli.main import build_parser
from loadtest.scenarios.options import (
    SCENARIO_OPTIONS,
    ColdStartOptions,
    RampOptions,
    ShapeOptions,
    UsageError,
    WarmUpOptions,
)
from loadtest.spec import (
    CampaignSpec,
    GeneratorSpec,
    ImageSpec,
    LocalTargets,
    PrometheusSpec,
    ReportSpec,
    TargetFile,
    UrlTarget,
    parse_model_dirs,
)


def _spec(*argv: str) -> CampaignSpec:
    return CampaignSpec.from_args(build_parser().parse_args(["lab", "run", *argv]))


def test_defaults_of_the_command_line_are_the_dataclass_defaults() -> None:
    for name, cls in SCENARIO_OPTIONS.items():
        spec = _spec(name)
        assert spec.scenario == cls()
        assert spec.scenario_name == name
        if name != "memory":  # the memory experiment has targets of its own (below)
            assert spec == CampaignSpec(scenario=cls())


def test_memory_defaults_to_the_published_models_and_sizes_on_containers() -> None:
    from loadtest.emulation import default_pool_names

    spec = _spec("memory")
    assert spec.targets == LocalTargets(
        models={"mobilenet": Path("models/mobilenet"), "vgg19": Path("models/vgg19")},
        pools=tuple(default_pool_names()[:1]),
        memory_profiles=("1Gi", "2Gi", "3Gi"),
        runtime="docker",
    )
    assert spec.scenario.warm_up() == WarmUpOptions(requests=25, interval=0.2, discard=1)
    assert spec.scenario.cold_start() == ColdStartOptions(cold_requests=3, warm_after=0)


def test_memory_needs_the_docker_runtime() -> None:
    with pytest.raises(UsageError, match="--runtime docker"):
        _spec("memory", "--runtime", "process", "--model-dir", ".").check()


def test_flags_land_in_typed_fields() -> None:
    spec = _spec(
        "ramp",
        "--users",
        "10,20",
        "--step-seconds",
        "3",
        "--model-dir",
        "vgg=models/vgg19",
        "--model-dir",
        "models/mobilenet",
        "--pools",
        "x86-4cpu",
        "--memory-profiles",
        "1Gi,2Gi",
        "--protocol",
        "v2",
        "--images",
        "photos",
        "--seed",
        "7",
        "--no-prometheus",
        "--no-report",
        "--quiet",
    )
    assert spec.scenario == RampOptions(users=(10, 20), step_seconds=3.0)
    assert spec.targets == LocalTargets(
        models={"vgg": Path("models/vgg19"), "mobilenet": Path("models/mobilenet")},
        pools=("x86-4cpu",),
        memory_profiles=("1Gi", "2Gi"),
    )
    assert (spec.protocol, spec.seed, spec.quiet) == ("v2", 7, True)
    assert spec.images == ImageSpec(folder=Path("photos"))
    assert spec.prometheus == PrometheusSpec(start=False)
    assert spec.report == ReportSpec(write=False, print=False)


def test_url_and_target_file() -> None:
    assert _spec("warm-up", "--url", "http://127.0.0.1:9", "--model", "m").targets == UrlTarget(
        url="http://127.0.0.1:9", model="m"
    )
    assert _spec("cold-start", "--targets", "t.yaml").targets == TargetFile(path=Path("t.yaml"))


@pytest.mark.parametrize(
    "spec",
    [
        CampaignSpec(scenario=WarmUpOptions(requests=3, interval=0.0, discard=0)),
        CampaignSpec(
            scenario=ColdStartOptions(cold_requests=2, namespace="ns"),
            targets=TargetFile(path=Path("targets.yaml")),
            prometheus=PrometheusSpec(url="http://127.0.0.1:9090"),
        ),
        CampaignSpec(
            scenario=RampOptions(users=(1, 2)),
            targets=LocalTargets(pools=("x86-4cpu",), memory_profiles=("1Gi",), run_id="0123abcd"),
            images=ImageSpec(folder=Path("photos"), count=3, size=64),
            report=ReportSpec(print=False),
            seed=4,
            out=Path("elsewhere"),
        ),
        CampaignSpec(
            scenario=ShapeOptions(shape="spike", settings=(("seconds", "3"), ("peak", "4"))),
            targets=UrlTarget(url="http://127.0.0.1:1"),
            protocol="v2",
            quiet=True,
        ),
        CampaignSpec(
            scenario=RampOptions(users=(500,)),
            targets=UrlTarget(url="http://127.0.0.1:1"),
            workers=4,
            generator=GeneratorSpec(external=True, bind="0.0.0.0", port=5557, pool="loadgen"),
        ),
    ],
    ids=["warm-up", "cold-start-file", "ramp-local", "shape-url", "workers-external"],
)
def test_json_round_trip_is_exact(spec: CampaignSpec) -> None:
    assert CampaignSpec.from_json(spec.to_json()) == spec
    assert CampaignSpec.from_json(spec.to_json()).to_json() == spec.to_json()


def test_model_dirs_default_and_names() -> None:
    assert parse_model_dirs(None) == {"mobilenet": Path("models/mobilenet")}
    assert parse_model_dirs(["a/b/vgg19", "m=x"]) == {"vgg19": Path("a/b/vgg19"), "m": Path("x")}


def test_check_rejects_what_cannot_work(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="Unknown emulated pool"):
        CampaignSpec(
            scenario=WarmUpOptions(), targets=LocalTargets(models={"m": tmp_path}, pools=("sparc",))
        ).check()
    with pytest.raises(UsageError, match="Model directory"):
        CampaignSpec(scenario=WarmUpOptions(), targets=LocalTargets(models={"m": tmp_path / "no"})).check()
    with pytest.raises(UsageError, match="absolute http"):
        CampaignSpec(scenario=WarmUpOptions(), targets=UrlTarget(url="ftp://x")).check()
    with pytest.raises(UsageError, match="Image folder"):
        CampaignSpec(
            scenario=WarmUpOptions(),
            targets=LocalTargets(models={"m": tmp_path}),
            images=ImageSpec(folder=tmp_path / "none"),
        ).check()
    CampaignSpec(scenario=WarmUpOptions(), targets=LocalTargets(models={"m": tmp_path})).check()
    with pytest.raises(UsageError, match=r"--threads expects 0 \(automatic\) to 256, got -1"):
        CampaignSpec(
            scenario=WarmUpOptions(), targets=LocalTargets(models={"m": tmp_path}, threads=-1)
        ).check()
    with pytest.raises(UsageError, match="--workers must be 0"):
        CampaignSpec(scenario=WarmUpOptions(), targets=UrlTarget(url="http://x:1"), workers=-1).check()
    with pytest.raises(UsageError, match="External workers need"):
        CampaignSpec(
            scenario=WarmUpOptions(),
            targets=UrlTarget(url="http://x:1"),
            generator=GeneratorSpec(external=True),
        ).check()


def test_backend_and_precision_flags_become_the_predictors_flags() -> None:
    spec = _spec("warm-up", "--backend", "litert", "--precision", "int8")
    assert spec.targets == LocalTargets(backend="litert", precision="int8")
    assert spec.targets.serve_args() == ("--backend", "litert", "--precision", "int8")
    assert LocalTargets().serve_args() == ("--backend", "auto", "--precision", "fp32")
    threads = _spec("warm-up", "--threads", "1").targets
    assert threads.serve_args() == ("--backend", "auto", "--precision", "fp32", "--threads", "1")
    assert CampaignSpec.from_json(spec.to_json()) == spec


def test_check_names_what_a_backend_and_precision_need(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"")

    def check(**fields: Any) -> None:
        CampaignSpec(scenario=WarmUpOptions(), targets=LocalTargets(models={"m": tmp_path}, **fields)).check()

    with pytest.raises(UsageError, match=r"no model\.tflite .*: dr-serving model convert /"):
        check(backend="litert")
    with pytest.raises(
        UsageError, match=r"no model\.int8\.tflite .*: dr-serving model convert --quantize int8 /"
    ):
        check(precision="int8")
    with pytest.raises(UsageError, match="'litert' or 'auto' for precision 'int8'"):
        check(backend="savedmodel", precision="int8")
    with pytest.raises(UsageError, match="'savedmodel' or 'auto' for precision 'bf16'"):
        check(backend="litert", precision="bf16")
    with pytest.raises(UsageError, match=r"--image-flavour lite \(LiteRT\) or full"):
        check(backend="litert", runtime="docker")
    with pytest.raises(UsageError, match="--precision int8 runs in the lite image, not --image-flavour full"):
        check(precision="int8", runtime="docker", flavour="full")
    check(backend="savedmodel", precision="bf16")
    check(precision="int8", runtime="docker")
    (tmp_path / "model.tflite").write_bytes(b"x")
    check(backend="litert")
    (tmp_path / "model.int8.tflite").write_bytes(b"x")
    check(precision="int8")


def test_workers_flag() -> None:
    assert _spec("ramp", "--workers", "3").workers == 3
    assert _spec("warm-up").workers == 0
    spec = _spec(
        "ramp",
        "--workers",
        "8",
        "--external-workers",
        "--master-bind",
        "0.0.0.0",
        "--master-port",
        "5557",
        "--generator-pool",
        "loadgen",
    )
    assert spec.generator == GeneratorSpec(external=True, bind="0.0.0.0", port=5557, pool="loadgen")


def test_scenario_options_validate() -> None:
    with pytest.raises(UsageError, match="--step-seconds"):
        _spec("ramp", "--step-seconds", "0")
    with pytest.raises(UsageError, match="--discard"):
        _spec("warm-up", "--discard", "-1")
