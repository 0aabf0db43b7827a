"""The editable price table (``loadtest/prices.yaml``) and cost per inference."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DEFAULT_PRICES", "PriceTable", "load_prices"]

DEFAULT_PRICES = Path(__file__).resolve().parent.parent / "prices.yaml"


@dataclass(frozen=True, kw_only=True)
class PriceTable:
    """USD per hour per instance type, USD per second per serverless memory size, and local pool stand-ins."""

    instances: dict[str, float]
    serverless: dict[str, float] = field(default_factory=dict)
    local_pools: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def price_for(self, group: dict[str, Any]) -> dict[str, Any] | None:
        """How one group of requests is priced: ``{"basis", "per_second", "priced_as"}`` or ``None``."""
        profile = group.get("memory_profile")
        if profile and profile in self.serverless:
            return {
                "basis": "serverless",
                "per_second": self.serverless[profile],
                "priced_as": f"serverless {profile}",
            }
        instance = str(group.get("instance_type") or "").removeprefix("ml.")
        stand_in = ""
        if instance not in self.instances and group.get("pool") in self.local_pools:
            instance, stand_in = self.local_pools[group["pool"]], " (stand-in for an emulated pool)"
        if instance in self.instances:
            return {
                "basis": "instance",
                "per_second": self.instances[instance] / 3600.0,
                "per_hour": self.instances[instance],
                "priced_as": f"{instance}{stand_in}",
            }
        return None

    def cost_per_inference(self, group: dict[str, Any]) -> dict[str, Any] | None:
        """Cost of one inference: price per second × median latency, and (instances) per hour ÷ throughput."""
        price = self.price_for(group)
        p50 = (group.get("client_ms") or {}).get("p50")
        if price is None or p50 is None:
            return None
        cost = {**price, "usd_sequential": price["per_second"] * p50 / 1000.0}
        throughput = group.get("throughput_rps")
        if price["basis"] == "instance" and throughput and group.get("users_max", 1) > 1:
            cost["usd_at_throughput"] = price["per_hour"] / 3600.0 / throughput
        return cost


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
