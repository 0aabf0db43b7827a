"""Run a package's ``__init__`` only when a name it defines is first used (KServe's, in the predictor).

``kserve/__init__.py`` (kserve 0.21, lines 17-133) imports, besides the model server, the Kubernetes client
(``.api.kserve_client`` → ``kubernetes``, ``requests``, OAuth, websockets), the OpenAPI client and ~100
generated ``kserve.models`` classes. The predictor uses none of them: it imports submodules
(``kserve.model``, ``kserve.model_server``, ``kserve.protocol…``) and no submodule on that path reads a name
of the package's own namespace. ``defer_package_init("kserve")``, run by ``serving/__init__``, therefore
puts the package into ``sys.modules`` without running its ``__init__`` (submodules import through its
``__path__``) and gives it a module ``__getattr__`` (PEP 562): the first access to a name that is not a
submodule (``kserve.Model``, ``from kserve import KServeClient``) runs the real ``__init__`` in the
package's namespace and answers from it, so every name KServe exports still works, just later.
``importlib.util.LazyLoader`` cannot do this on Python 3.11: the import statement reads a lazy module's
``__spec__``, which executes it.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

__all__ = ["defer_package_init", "init_deferred"]


def defer_package_init(name: str) -> bool:
    """Register package ``name`` without running its ``__init__``; False if imported or not installed."""
    if name in sys.modules:
        return False
    spec = importlib.util.find_spec(name)
    if spec is None:
        return False
    if spec.loader is None or spec.submodule_search_locations is None:
        raise ValueError(f"Expected an importable package, got {name!r}.")
    module = importlib.util.module_from_spec(spec)

    def __getattr__(attribute: str) -> object:
        # A submodule: let the import system load it (``from kserve import model_server`` asks here first).
        if attribute.startswith("__") or importlib.util.find_spec(f"{name}.{attribute}") is not None:
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
        init_deferred(module)
        return getattr(module, attribute)

    module.__dict__["__getattr__"] = __getattr__
    module.__dict__["__dr_deferred_init__"] = True
    sys.modules[name] = module
    return True


def init_deferred(module: ModuleType) -> None:
    """Run the ``__init__`` that ``defer_package_init`` held back (once; a no-op otherwise)."""
    if not module.__dict__.pop("__dr_deferred_init__", False):
        return
    deferred_getattr = module.__dict__.pop("__getattr__")
    spec = module.__spec__
    assert spec is not None and spec.loader is not None
    try:
        spec.loader.exec_module(module)
    except BaseException:
        # The package stays deferred, so the next access retries and fails as loudly (lite: no kubernetes).
        module.__dict__.update(__getattr__=deferred_getattr, __dr_deferred_init__=True)
        raise
