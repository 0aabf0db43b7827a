"""The editable price table (``loadtest/prices.yaml``) and cost per inference."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from loadtest.emulation import UNPRICED

__all__ = ["DEFAULT_PRICES", "Cost", "Price", "PriceTable", "load_prices"]

DEFAULT_PRICES = Path(__file__).resolve().parent.parent / "prices.yaml"


@dataclass(frozen=True, kw_only=True)
class Price:
    """How one target is priced."""

    basis: Literal["serverless", "instance"]
    per_second: float
    """USD per second of use."""
    priced_as: str
    """e.g. ``m5.xlarge``, ``serverless 2Gi``, ``m4.xlarge (stand-in for an emulated pool)``."""
    per_hour: float | None = None
    """USD per hour (instances only)."""


@dataclass(frozen=True, kw_only=True)
class Cost:
    """The cost of one inference under a price."""

    price: Price
    usd_sequential: float
    """Price per second × median latency."""
    usd_at_throughput: float | None = None
    """Price per hour ÷ measured throughput (instances under load only)."""


@dataclass(frozen=True, kw_only=True)
class PriceTable:
    """USD per hour per instance type, USD per second per serverless memory size, and local pool stand-ins."""

    instances: dict[str, float]
    serverless: dict[str, float] = field(default_factory=dict)
    local_pools: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def price_for(self, *, instance_type: str, pool: str, memory_profile: str | None) -> Price | None:
        """How requests on one target are priced: serverless by memory size, else by instance type (or the
        instance an emulated pool stands in for); ``None`` when the table has no price for it."""
        if instance_type == UNPRICED:  # the arm64-emulated pool: QEMU on this machine has no price
            return None
        if memory_profile and memory_profile in self.serverless:
            return Price(
                basis="serverless",
                per_second=self.serverless[memory_profile],
                priced_as=f"serverless {memory_profile}",
            )
        instance = str(instance_type or "").removeprefix("ml.")
        stand_in = ""
        if instance not in self.instances and pool in self.local_pools:
            instance, stand_in = self.local_pools[pool], " (stand-in for an emulated pool)"
        if instance in self.instances:
            return Price(
                basis="instance",
                per_second=self.instances[instance] / 3600.0,
                per_hour=self.instances[instance],
                priced_as=f"{instance}{stand_in}",
            )
        return None

    def cost_per_inference(
        self,
        *,
        instance_type: str,
        pool: str,
        memory_profile: str | None,
        p50_ms: float | None,
        throughput_rps: float | None = None,
        users: int = 1,
    ) -> Cost | None:
        """Cost of one inference: price per second × median latency, and (instances under load, ``users`` > 1)
        price per hour ÷ throughput."""
        price = self.price_for(instance_type=instance_type, pool=pool, memory_profile=memory_profile)
        if price is None or p50_ms is None:
            return None
        at_throughput = None
        if price.per_hour is not None and throughput_rps and users > 1:
            at_throughput = price.per_hour / 3600.0 / throughput_rps
        return Cost(
            price=price, usd_sequential=price.per_second * p50_ms / 1000.0, usd_at_throughput=at_throughput
        )


def load_prices(path: str | Path | None = None) -> PriceTable:
    """Read a price table YAML (``None`` = the default ``loadtest/prices.yaml``)."""
    path = Path(path) if path else DEFAULT_PRICES
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ValueError(f"Cannot read the price table {str(path)!r}: {exc.strerror}.") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"The price table {str(path)!r} is not valid YAML: {exc}.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("instances"), dict):
        raise ValueError(f"The price table {str(path)!r} needs an 'instances' mapping of USD per hour.")
    try:
        instances = {str(k): float(v) for k, v in data["instances"].items()}
        serverless = {str(k): float(v) for k, v in (data.get("serverless") or {}).items()}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Every price in {str(path)!r} must be a number ({exc}).") from exc
    local = {str(k): str(v) for k, v in (data.get("local_pools") or {}).items()}
    try:
        source = str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        source = str(path)
    return PriceTable(instances=instances, serverless=serverless, local_pools=local, source=source)
