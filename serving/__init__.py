"""dr-serving: grade fundus photographs for diabetic retinopathy inside a KServe model server."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
