"""dr-serving: grade fundus photographs for diabetic retinopathy inside a KServe model server."""

from __future__ import annotations

from serving.deferred import defer_package_init

__all__ = ["__version__"]

__version__ = "0.1.0"

# KServe's own __init__ imports its Kubernetes client and OpenAPI models, which no route uses; its submodules
# (model server, REST, protocol) import as usual and every name it exports still works on first use.
defer_package_init("kserve")
