"""The published figures the report puts beside ours (medians in ms), from docs/shared published-figures.

Real-time figures are per SageMaker instance type (4 vCPU, 25 sequential requests 5 s apart); serverless
figures per memory size (warm: 1 discarded + 25 requests; cold: 10 requests 15 min apart).
"""

from __future__ import annotations

__all__ = ["COURSE_PROJECT", "INSTANCES", "SERVERLESS", "SPEEDUPS", "published_for"]

#: instance type → model → (prediction ms, full ms)
INSTANCES: dict[str, dict[str, tuple[float, float]]] = {
    "m4.xlarge": {"mobilenet": (80, 282), "vgg19": (350, 549)},
    "m5.xlarge": {"mobilenet": (61, 262), "vgg19": (205, 392)},
    "m6g.xlarge": {"mobilenet": (87, 289), "vgg19": (390, 593)},
    "c7g.xlarge": {"mobilenet": (71, 264), "vgg19": (305, 504)},
}

#: memory size → model → {"warm": (prediction, full), "cold": (prediction, full)}
SERVERLESS: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "1Gi": {
        "mobilenet": {"warm": (177, 465), "cold": (9519, 20266)},
        "vgg19": {"warm": (1587, 1890), "cold": (4347, 16480)},
    },
    "2Gi": {
        "mobilenet": {"warm": (91, 363), "cold": (5032, 12559)},
        "vgg19": {"warm": (586, 864), "cold": (2292, 10969)},
    },
    "3Gi": {
        "mobilenet": {"warm": (72, 336), "cold": (5053, 12536)},
        "vgg19": {"warm": (387, 666), "cold": (2037, 10421)},
    },
}

#: (faster, slower) instance types → model → (prediction speed-up, full-latency speed-up or None)
SPEEDUPS: dict[tuple[str, str], dict[str, tuple[float, float | None]]] = {
    ("m5.xlarge", "m6g.xlarge"): {"vgg19": (1.92, None), "mobilenet": (1.42, None)},
    ("m5.xlarge", "m4.xlarge"): {"vgg19": (1.71, 1.50), "mobilenet": (1.32, 1.09)},
    ("c7g.xlarge", "m6g.xlarge"): {"vgg19": (1.27, None), "mobilenet": (1.23, None)},
}

#: Course project (Vertex AI under load): requests → (median ms, p95 ms, error %)
COURSE_PROJECT: dict[int, tuple[float, float, float]] = {200: (191, 259, 0.0), 500: (175, 255, 0.0)}


def _model_key(model: str) -> str | None:
    name = model.lower()
    if "vgg" in name:
        return "vgg19"
    if "mobilenet" in name:
        return "mobilenet"
    return None


def published_for(model: str, *, instance_type: str, memory_profile: str | None, phase: str) -> dict | None:
    """The published (prediction, full) medians comparable to one of our groups, with where they come from."""
    key = _model_key(model)
    if key is None:
        return None
    if memory_profile and memory_profile in SERVERLESS and phase in ("warm", "cold"):
        prediction, full = SERVERLESS[memory_profile][key][phase]
        return {
            "source": f"serverless {memory_profile} {phase}",
            "prediction_ms": prediction,
            "full_ms": full,
        }
    instance = instance_type.removeprefix("ml.")
    if instance in INSTANCES and phase == "warm":
        prediction, full = INSTANCES[instance][key]
        return {"source": f"ml.{instance} real-time", "prediction_ms": prediction, "full_ms": full}
    return None
