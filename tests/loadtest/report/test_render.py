"""The report's load-generator line: where the load came from, its CPU, and the saturation warning."""

from __future__ import annotations

from loadtest.report.render import generator_text


def test_generator_line_names_the_source_and_warns_when_saturated() -> None:
    calm = {
        "kind": "local-workers",
        "workers": 2,
        "pool": None,
        "cpu_max_percent": {"master": 12.0, "worker-0": 40.5, "worker-1": 38.0},
        "cpu_threshold_percent": 90,
        "locust_cpu_warning": False,
        "saturated": False,
    }
    text = generator_text(calm)
    assert text.startswith(
        "Locust master + 2 local worker processes; highest CPU: master 12 %, worker-0 40.5 %"
    )
    assert "WARNING" not in text
    busy = {
        **calm,
        "kind": "cluster-workers",
        "pool": "loadgen",
        "saturated": True,
        "locust_cpu_warning": True,
    }
    text = generator_text(busy)
    assert text.startswith("Locust master + 2 in-cluster workers on node pool loadgen")
    assert "WARNING: the load generator was saturated (CPU ≥ 90 % and Locust warned)" in text
    assert "more --workers" in text
    assert generator_text({"kind": "local-process", "cpu_max_percent": {"process": 97.0}, "saturated": True})
    assert "before the generator was" in generator_text(None)
