"""What a campaign sends requests to: one ``Target`` per model × pool × mode, with the URL to reach it.

Targets come from a YAML/JSON file (a list, or a mapping with a ``targets`` or ``endpoints`` list), from the
output of ``dr-serving deploy endpoints --output yaml|json`` (same shape), or are built locally by the
emulation. Each entry has ``model``, ``url`` and optionally ``pool``, ``mode``, ``arch``, ``instance_type``,
``memory_profile``, ``price_per_hour`` and ``host`` (the Host header a Knative ingress routes on).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Target", "load_targets", "parse_targets"]

# Alternative spellings accepted in target files (the deploy command's endpoint listing uses some of them).
_ALIASES = {
    "host_header": "host",
    "hostname": "host",
    "endpoint": "url",
    "instanceType": "instance_type",
    "memoryProfile": "memory_profile",
    "pricePerHour": "price_per_hour",
    "name": "model",
}


@dataclass(frozen=True, kw_only=True)
class Target:
    """One predictor to measure: a model served on one node pool in one deployment mode."""

    model: str
    url: str
    pool: str = "local"
    mode: str = "local"
    arch: str = "unknown"
    instance_type: str = "unknown"
    memory_profile: str | None = None
    price_per_hour: float | None = None
    host: str | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"Target url must be an absolute http(s) URL, got {self.url!r}.")
        if not self.model:
            raise ValueError("Target model must be a non-empty model name.")

    @property
    def name(self) -> str:
        """A short unique label: ``model@pool/mode`` (plus the memory profile when there is one)."""
        profile = self.memory_profile or ""
        profile = f"+{profile}" if profile and not self.pool.endswith(profile) else ""
        return f"{self.model}@{self.pool}{profile}/{self.mode}"

    @property
    def base_url(self) -> str:
        """The URL without a trailing slash."""
        return self.url.rstrip("/")

    def labels(self) -> dict[str, str]:
        """The labels every request to this target carries."""
        return {
            "target": self.name,
            "model": self.model,
            "pool": self.pool,
            "arch": self.arch,
            "instance_type": self.instance_type,
            "mode": self.mode,
        }

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping (the form target files use)."""
        data = asdict(self)
        return {key: value for key, value in data.items() if value not in (None, {})}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Target:
        """Build a target from one mapping of a target file."""
        if not isinstance(data, Mapping):
            raise ValueError(f"Each target must be a mapping with at least 'model' and 'url', got {data!r}.")
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        extra: dict[str, str] = {}
        for key, value in data.items():
            key = _ALIASES.get(key, key)
            if key == "extra" and isinstance(value, Mapping):  # ``to_dict`` of a target with extra keys
                extra.update({str(k): str(v) for k, v in value.items()})
            elif key in known:
                values[key] = value
            else:
                extra[str(key)] = str(value)
        missing = [name for name in ("model", "url") if not values.get(name)]
        if missing:
            raise ValueError(f"Target {dict(data)!r} lacks {', '.join(missing)}.")
        if values.get("price_per_hour") is not None:
            values["price_per_hour"] = float(values["price_per_hour"])
        for key in ("model", "url", "pool", "mode", "arch", "instance_type", "memory_profile", "host"):
            if values.get(key) is not None:
                values[key] = str(values[key])
        return cls(**values, extra=extra)

    def __repr__(self) -> str:
        host = f", host={self.host!r}" if self.host else ""
        return f"Target({self.name!r}, url={self.url!r}{host})"


def parse_targets(document: Any) -> list[Target]:
    """Turn a parsed target document (list, or mapping holding ``targets``/``endpoints``) into targets."""
    items: Iterable[Any]
    if isinstance(document, Mapping):
        for key in ("targets", "endpoints"):
            if key in document:
                items = document[key] or []
                break
        else:
            raise ValueError(
                "A target document must be a list or a mapping with a 'targets' or 'endpoints' list."
            )
    elif isinstance(document, list):
        items = document
    else:
        raise ValueError(f"A target document must be a list or a mapping, got {type(document).__name__}.")
    targets = [Target.from_dict(item) for item in items]
    if not targets:
        raise ValueError("The target document lists no targets.")
    names = [t.name for t in targets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"Target names must be unique, got duplicates {duplicates!r}.")
    return targets


def load_targets(path: str | Path) -> list[Target]:
    """Read targets from a YAML or JSON file (``-`` is not accepted: pass a file)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"Cannot read the target file {str(path)!r}: {exc.strerror}.") from exc
    if path.suffix == ".json":
        document = json.loads(text)
    else:
        import yaml

        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"The target file {str(path)!r} is not valid YAML: {exc}.") from exc
    return parse_targets(document)
