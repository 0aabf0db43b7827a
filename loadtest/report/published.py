"""The published figures the report puts beside ours (medians in ms), from docs/shared published-figures.

Real-time figures are per SageMaker instance type (4 vCPU, 25 sequential requests 5 s apart); serverless
figures per memory size (warm: 1 discarded + 25 requests; cold: 10 requests 15 min apart).
"""

from __future__ import annotations

__all__ = [
    "COLD_FULL_OPTIMISED_S",
    "COURSE_PROJECT",
    "INSTANCES",
    "MODEL_SETUP_S",
    "SERVERLESS",
    "SPEEDUPS",
    "published_cold",
    "published_for",
]

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

#: memory size → model → ModelSetupTime (s): provisioning before the serverless container serves.
MODEL_SETUP_S: dict[str, dict[str, float]] = {
    "1Gi": {"mobilenet": 10.61, "vgg19": 10.79},
    "2Gi": {"mobilenet": 5.67, "vgg19": 6.89},
    "3Gi": {"mobilenet": 5.61, "vgg19": 6.52},
}

#: model → cold-start full latency (s) after image and memory optimisation (before: 26.59 / 22.63 s).
COLD_FULL_OPTIMISED_S: dict[str, float] = {"mobilenet": 12.48, "vgg19": 11.07}

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


def published_cold(model: str, memory_profile: str | None) -> dict[str, float]:
    """The published serverless cold start of ``model`` at ``memory_profile``: ``setup_s`` (ModelSetupTime)
    and ``cold_full_s`` (median cold full latency); empty when there is none."""
    key = _model_key(model)
    if key is None or memory_profile not in SERVERLESS:
        return {}
    return {
        "setup_s": MODEL_SETUP_S[memory_profile][key],
        "cold_full_s": SERVERLESS[memory_profile][key]["cold"][1] / 1000.0,
    }
