"""``dr-serving lab in-cluster``: the chart's rendered ConfigMap, mounted as files the way the kubelet mounts
it, becomes the ``dr-serving lab run`` command line the real parser accepts (no shell in the image)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dr_cli.main import build_parser, main
from loadtest.incluster import campaign_argv
from tests.chart.chartkit import by_kind, render

VALUES = {
    "loadtest": {
        "enabled": True,
        "workers": 3,
        "masterPort": 6000,
        "pool": "loadgen-c7g",
        "scenario": "ramp",
        "args": ["--users=10,100,200,500", "--step-seconds=60"],
    }
}


def _mounted_configmap(tmp_path: Path) -> Path:
    (configmap,) = [
        o for o in by_kind(render(VALUES), "ConfigMap") if o["metadata"]["name"].endswith("-loadtest")
    ]
    folder = tmp_path / "loadtest-config"
    folder.mkdir()
    for key, value in configmap["data"].items():
        (folder / key).write_text(value, encoding="utf-8")
    return folder


def test_the_configmap_becomes_the_campaign_of_the_master(tmp_path: Path) -> None:
    config = _mounted_configmap(tmp_path)
    argv = campaign_argv(config)
    options = build_parser("lab").parse_args(argv)
    assert (options.scenario, options.targets) == ("ramp", str(config / "targets.yaml"))
    assert (options.workers, options.external_workers, options.master_port) == (3, True, 6000)
    assert (options.master_bind, options.generator_pool, options.out) == ("0.0.0.0", "loadgen-c7g", "/runs")
    assert options.prometheus is False
    assert (options.users, options.step_seconds) == ([10, 100, 200, 500], 60.0)


def test_scenario_and_flags_given_at_start_override_the_configmap(tmp_path: Path) -> None:
    config = _mounted_configmap(tmp_path)
    options = build_parser("lab").parse_args(
        campaign_argv(config, flags=["--master-bind", "127.0.0.1", "--step-seconds=5"])
    )
    assert (options.scenario, options.master_bind, options.step_seconds) == ("ramp", "127.0.0.1", 5.0)
    # Another scenario drops the ConfigMap's flags, which are the ramp's (warm-up has no --users).
    options = build_parser("lab").parse_args(
        campaign_argv(config, scenario="warm-up", flags=["--requests=5"])
    )
    assert (options.scenario, options.requests, options.workers) == ("warm-up", 5, 3)


def test_cold_start_is_refused_inside_the_cluster(tmp_path: Path) -> None:
    config = _mounted_configmap(tmp_path)
    with pytest.raises(
        RuntimeError, match=r"cold-start scenario cannot run in the load-test pods: .*Kubernetes API"
    ):
        campaign_argv(config, scenario="cold-start")


def test_a_missing_configmap_says_where_it_looked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "in-cluster", "--config", str(tmp_path / "nowhere"), "--", "--users=5"]) == 1
    assert (
        "nowhere/scenario is missing; is the chart's load-test ConfigMap mounted" in capsys.readouterr().err
    )
