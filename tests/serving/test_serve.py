"""``ServeConfig.from_args``: flags over the environment over defaults, the drain period, usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dr_cli.main import build_parser
from serving.serve import ConfigError, ServeConfig


def _args(*flags: str) -> object:
    return build_parser().parse_args(["serve", *flags])


def test_flags_beat_the_environment_which_beats_the_defaults(tmp_path: Path) -> None:
    env = {
        "DR_MAX_INFLIGHT": "9",
        "DR_BODY_TIMEOUT_SECONDS": "12.5",
        "DR_DRAIN_SECONDS": "5",
        "DR_MAX_BATCH": "3",
    }
    config = ServeConfig.from_args(_args("--model-dir", str(tmp_path), "--max-batch", "2"), env)
    assert (config.limits.max_inflight, config.limits.body_timeout_seconds) == (9, 12.5)
    assert config.limits.max_batch == 2
    assert config.drain_seconds == 5.0
    assert (config.model_name, config.http_port, config.host) == (tmp_path.name, 8080, "0.0.0.0")
    flagged = ServeConfig.from_args(_args("--model-dir", str(tmp_path), "--drain-seconds", "0.5"), env)
    assert flagged.drain_seconds == 0.5


@pytest.mark.parametrize(
    ("flags", "env", "message", "code"),
    [
        (("--max-inflight", "0"), {}, "max_inflight to be a positive integer, got 0", 2),
        ((), {"DR_DRAIN_SECONDS": "soon"}, "DR_DRAIN_SECONDS to be a number of seconds, got 'soon'", 2),
        (("--drain-seconds", "-1"), {}, "drain period of 0 s or more, got -1.0", 2),
        (("--header-timeout-seconds", "0"), {}, "header_timeout_seconds to be a positive number", 2),
        ((), {"DR_METRICS_PORT": "ninety"}, "DR_METRICS_PORT to be a port number, got 'ninety'", 2),
        (("--metrics-port", "70000"), {}, "metrics port between 0 (off) and 65535, got 70000", 2),
        (("--metrics-port", "8080"), {}, "metrics port other than the HTTP port 8080, got 8080", 2),
    ],
    ids=[
        "zero-in-flight",
        "drain-not-a-number",
        "negative-drain",
        "zero-timeout",
        "metrics-port-not-a-number",
        "metrics-port-out-of-range",
        "metrics-port-is-http-port",
    ],
)
def test_bad_settings_are_usage_errors(
    tmp_path: Path, flags: tuple[str, ...], env: dict[str, str], message: str, code: int
) -> None:
    with pytest.raises(ConfigError) as info:
        ServeConfig.from_args(_args("--model-dir", str(tmp_path), *flags), env)
    assert message in str(info.value) and info.value.code == code


def test_metrics_port_flag_beats_the_environment_and_defaults_to_off(tmp_path: Path) -> None:
    model_dir = ("--model-dir", str(tmp_path))
    assert ServeConfig.from_args(_args(*model_dir), {}).metrics_port == 0
    assert ServeConfig.from_args(_args(*model_dir), {"DR_METRICS_PORT": "9102"}).metrics_port == 9102
    flagged = ServeConfig.from_args(_args(*model_dir, "--metrics-port", "0"), {"DR_METRICS_PORT": "9102"})
    assert flagged.metrics_port == 0


def test_a_missing_model_directory_is_a_runtime_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        ServeConfig.from_args(_args("--model-dir", str(tmp_path / "nope")), {})
    assert info.value.code == 1 and "does not exist" in str(info.value)


def test_micro_batching_comes_from_the_flags_then_the_environment_and_is_off_by_default(
    tmp_path: Path,
) -> None:
    assert (ServeConfig.from_args(_args("--model-dir", str(tmp_path)), {}).micro_batch) == 0
    env = {"DR_MICRO_BATCH": "8", "DR_MICRO_BATCH_WAIT_MS": "2.5"}
    config = ServeConfig.from_args(_args("--model-dir", str(tmp_path)), env)
    assert (config.micro_batch, config.micro_batch_wait_s) == (8, 0.0025)
    flagged = _args("--model-dir", str(tmp_path), "--micro-batch", "4", "--micro-batch-wait-ms", "0")
    chosen = ServeConfig.from_args(flagged, env)
    assert (chosen.micro_batch, chosen.micro_batch_wait_s) == (4, 0.0)
    with pytest.raises(ConfigError, match="Expected DR_MICRO_BATCH to be an integer, got 'eight'"):
        ServeConfig.from_args(_args("--model-dir", str(tmp_path)), {"DR_MICRO_BATCH": "eight"})
    with pytest.raises(
        ConfigError, match=r"DR_MICRO_BATCH_WAIT_MS \(or its flag\) between 0 and 1000, got -1\.0"
    ):
        ServeConfig.from_args(_args("--model-dir", str(tmp_path)), {"DR_MICRO_BATCH_WAIT_MS": "-1"})


def test_threads_come_from_the_flag_then_the_environment_and_follow_the_cpu_limit_by_default(
    tmp_path: Path,
) -> None:
    model_dir = ("--model-dir", str(tmp_path))
    assert ServeConfig.from_args(_args(*model_dir), {}).threads == 0
    assert ServeConfig.from_args(_args(*model_dir), {"DR_THREADS": "2"}).threads == 2
    assert ServeConfig.from_args(_args(*model_dir, "--threads", "1"), {"DR_THREADS": "2"}).threads == 1
    with pytest.raises(ConfigError, match="Expected DR_THREADS to be an integer, got 'two'"):
        ServeConfig.from_args(_args(*model_dir), {"DR_THREADS": "two"})
    with pytest.raises(ConfigError, match=r"DR_THREADS \(or its flag\) between 0 and 256, got -1"):
        ServeConfig.from_args(_args(*model_dir, "--threads", "-1"), {})


def test_request_logs_come_from_the_flag_then_the_environment_and_are_on_by_default(tmp_path: Path) -> None:
    model_dir = ("--model-dir", str(tmp_path))
    default = ServeConfig.from_args(_args(*model_dir), {})
    assert default.request_log is True and default.enable_latency_logging is True  # KServe's flag default
    off = ServeConfig.from_args(_args(*model_dir), {"DR_REQUEST_LOG": "off"})
    assert off.request_log is False and off.enable_latency_logging is False
    flagged = ServeConfig.from_args(_args(*model_dir, "--request-log", "on"), {"DR_REQUEST_LOG": "off"})
    assert flagged.request_log is True
    with pytest.raises(
        ConfigError, match=r"Expected DR_REQUEST_LOG to be one of \['on', 'off'\], got 'quiet'"
    ):
        ServeConfig.from_args(_args(*model_dir), {"DR_REQUEST_LOG": "quiet"})
