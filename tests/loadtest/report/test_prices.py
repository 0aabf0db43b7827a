from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.report.prices import DEFAULT_PRICES, load_prices
from loadtest.report.published import published_for


def test_default_prices_are_the_published_ones() -> None:
    prices = load_prices()
    assert prices.instances == {
        "m4.xlarge": 0.24,
        "m5.xlarge": 0.23,
        "m6g.xlarge": 0.1848,
        "c7g.xlarge": 0.174,
    }
    assert prices.serverless["2Gi"] == pytest.approx(0.00004)
    assert DEFAULT_PRICES.name == "prices.yaml"


def test_instance_and_serverless_costs() -> None:
    prices = load_prices()
    cost = prices.cost_per_inference(
        instance_type="ml.c7g.xlarge", pool="graviton", memory_profile=None, p50_ms=100.0
    )
    assert cost is not None and cost.price.priced_as == "c7g.xlarge"
    assert cost.usd_sequential == pytest.approx(0.174 / 3600 * 0.1)
    cost = prices.cost_per_inference(
        instance_type="m5.xlarge", pool="p", memory_profile="3Gi", p50_ms=336.0, throughput_rps=20.0, users=10
    )
    assert cost is not None and cost.price.basis == "serverless" and cost.usd_at_throughput is None
    assert cost.usd_sequential == pytest.approx(0.00006 * 0.336)
    cost = prices.cost_per_inference(
        instance_type="unknown",
        pool="x86-1cpu",
        memory_profile=None,
        p50_ms=50.0,
        throughput_rps=40.0,
        users=4,
    )
    assert cost is not None and cost.price.priced_as == "m4.xlarge (stand-in for an emulated pool)"
    assert cost.usd_at_throughput == pytest.approx(0.24 / 3600 / 40.0)
    assert (
        prices.cost_per_inference(instance_type="unknown", pool="p", memory_profile=None, p50_ms=1.0) is None
    )
    assert (
        prices.cost_per_inference(instance_type="m5.xlarge", pool="p", memory_profile=None, p50_ms=None)
        is None
    )


def test_published_figures_by_instance_and_memory() -> None:
    assert published_for("mobilenet", instance_type="m5.xlarge", memory_profile=None, phase="warm") == {
        "source": "ml.m5.xlarge real-time",
        "prediction_ms": 61,
        "full_ms": 262,
    }
    cold = published_for("vgg19-lite", instance_type="unknown", memory_profile="2Gi", phase="cold")
    assert cold == {"source": "serverless 2Gi cold", "prediction_ms": 2292, "full_ms": 10969}
    assert published_for("resnet", instance_type="m5.xlarge", memory_profile=None, phase="warm") is None


def test_bad_price_files(tmp_path: Path) -> None:
    (tmp_path / "text.yaml").write_text("instances: {m5.xlarge: cheap}\n")
    with pytest.raises(ValueError, match="must be a number"):
        load_prices(tmp_path / "text.yaml")
    with pytest.raises(ValueError, match="Cannot read the price table"):
        load_prices(tmp_path / "absent.yaml")
