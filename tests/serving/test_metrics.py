"""The dr_* metrics: names, types, labels from the contract; node labels from the environment."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from serving import metrics
from serving.launcher import PredictorProcess, free_port

#: This checkout, first on the predictor child's path so that it runs the code under test.
CHECKOUT = Path(__file__).resolve().parents[2]


def worktree_pythonpath() -> str:
    """``PYTHONPATH`` for a child process: this checkout first."""
    return os.pathsep.join(p for p in (str(CHECKOUT), os.environ.get("PYTHONPATH", "")) if p)


CONTRACT = {
    "dr_model_load_seconds": ("gauge", {"model", "backend"}),
    "dr_startup_seconds": ("gauge", {"model", "backend"}),
    "dr_inference_batch_seconds": ("histogram", {"model", "backend", "pool", "arch", "instance_type"}),
    "dr_inference_image_seconds": ("histogram", {"model", "backend", "pool", "arch", "instance_type"}),
    "dr_batch_size": ("histogram", {"model"}),
    "dr_inference_call_images": ("histogram", {"model"}),
    "dr_predictions": ("counter", {"model", "grade"}),
    "dr_rejected_requests": ("counter", {"model", "reason"}),
    "dr_model_info": (
        "gauge",
        {"model", "backend", "precision", "architecture", "pool", "arch", "instance_type", "mode"},
    ),
}


def _families() -> dict[str, object]:
    return {
        family.name: family for family in text_string_to_metric_families(generate_latest(REGISTRY).decode())
    }


def test_every_contract_metric_is_registered_with_its_type_and_labels() -> None:
    label_sets = {
        "dr_model_load_seconds": {"model": "m", "backend": "savedmodel"},
        "dr_startup_seconds": {"model": "m", "backend": "savedmodel"},
        "dr_batch_size": {"model": "m"},
        "dr_inference_call_images": {"model": "m"},
        "dr_predictions": {"model": "m", "grade": "2"},
        "dr_rejected_requests": {"model": "m", "reason": "test"},
    }
    node = {"pool": "p", "arch": "amd64", "instance_type": "t"}
    metrics.MODEL_LOAD_SECONDS.labels(**label_sets["dr_model_load_seconds"]).set(1.5)
    metrics.STARTUP_SECONDS.labels(**label_sets["dr_startup_seconds"]).set(2.5)
    metrics.BATCH_SECONDS.labels(model="m", backend="savedmodel", **node).observe(0.01)
    metrics.IMAGE_SECONDS.labels(model="m", backend="savedmodel", **node).observe(0.01)
    metrics.BATCH_SIZE.labels(**label_sets["dr_batch_size"]).observe(1)
    metrics.CALL_IMAGES.labels(**label_sets["dr_inference_call_images"]).observe(3)
    metrics.PREDICTIONS.labels(**label_sets["dr_predictions"]).inc()
    metrics.REJECTED_REQUESTS.labels(**label_sets["dr_rejected_requests"]).inc()
    metrics.MODEL_INFO.labels(
        model="m", backend="savedmodel", precision="fp32", architecture="x", mode="local", **node
    ).set(1)
    families = _families()
    for name, (kind, labels) in CONTRACT.items():
        family = families[name]
        assert family.type == kind, name
        sample_labels = {key for sample in family.samples for key in sample.labels if key != "le"}
        assert sample_labels == labels, name
    assert any(sample.name == "dr_predictions_total" for sample in families["dr_predictions"].samples)


def test_counter_increments_exactly() -> None:
    child = metrics.REJECTED_REQUESTS.labels(model="m", reason="exact")
    before = REGISTRY.get_sample_value("dr_rejected_requests_total", {"model": "m", "reason": "exact"}) or 0.0
    child.inc()
    child.inc()
    after = REGISTRY.get_sample_value("dr_rejected_requests_total", {"model": "m", "reason": "exact"})
    assert after == before + 2


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ("x86_64", "amd64"),
        ("AMD64", "amd64"),
        ("aarch64", "arm64"),
        ("arm64", "arm64"),
        ("riscv64", "riscv64"),
    ],
    ids=["x86_64", "windows-amd64", "aarch64", "arm64", "other"],
)
def test_normalise_arch(machine: str, expected: str) -> None:
    assert metrics.normalise_arch(machine) == expected


def test_node_labels_defaults() -> None:
    labels = metrics.node_labels({})
    assert labels == metrics.NodeLabels(
        pool="local", arch=metrics.normalise_arch(platform.machine()), instance_type="unknown", mode="local"
    )
    assert labels.as_labels() == {"pool": "local", "arch": labels.arch, "instance_type": "unknown"}


def test_node_labels_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DR_POOL", "graviton")
    monkeypatch.setenv("DR_ARCH", "aarch64")
    monkeypatch.setenv("DR_INSTANCE_TYPE", "c7g.xlarge")
    monkeypatch.setenv("DR_MODE", "knative")
    monkeypatch.setenv("DR_NODE_NAME", "worker-2")
    assert metrics.node_labels() == metrics.NodeLabels(
        pool="graviton", arch="arm64", instance_type="c7g.xlarge", mode="knative", node="worker-2"
    )


def test_a_metrics_port_serves_the_metrics_and_the_http_port_refuses_them(
    mobilenet_dir: Path, tmp_path: Path
) -> None:
    """DR_METRICS_PORT: the real predictor serves dr_* metrics there; the HTTP port's /metrics answers 404."""
    metrics_port = free_port()
    env = {"DR_METRICS_PORT": str(metrics_port), "PYTHONPATH": worktree_pythonpath()}
    with (
        PredictorProcess(mobilenet_dir, env=env, log_path=tmp_path / "predictor.log") as predictor,
        httpx.Client(timeout=30.0, trust_env=False) as http,
    ):
        assert http.get(predictor.url + "/metrics").status_code == 404
        assert http.get(predictor.url + "/v2/health/ready").status_code == 200
        answer = http.get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert answer.status_code == 200
    families = {family.name: family for family in text_string_to_metric_families(answer.text)}
    (startup,) = families["dr_startup_seconds"].samples
    assert startup.labels["model"] == "mobilenet" and startup.value > 0


def test_a_taken_metrics_port_stops_the_predictor_with_one_clear_line(
    mobilenet_dir: Path, tmp_path: Path
) -> None:
    """A metrics port already bound: the process exits 1 naming the port, before loading the model."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"DR_METRICS_PORT": str(port), "PYTHONPATH": worktree_pythonpath()}
        predictor = PredictorProcess(mobilenet_dir, env=env, log_path=tmp_path / "predictor.log").start()
        with pytest.raises(
            RuntimeError, match=f"exited with code 1: Error: Expected to serve metrics on 127.0.0.1:{port}"
        ):
            predictor.wait_ready(timeout=120)
        predictor.stop()
