"""``defer_package_init``: KServe's model server without its Kubernetes client; deferred names still work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from serving.deferred import defer_package_init

CHECKOUT = Path(__file__).resolve().parents[2]

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: lab
  user: {token: not-a-real-token}
contexts:
- name: lab
  context: {cluster: lab, user: lab, namespace: dr}
current-context: lab
"""


def _child(code: str, tmp_path: Path, *, extra_path: Path | None = None) -> dict:
    """Run ``code`` in a fresh interpreter (this checkout first on the path); its last stdout line as JSON."""
    path = [str(CHECKOUT), *([str(extra_path)] if extra_path else []), os.environ.get("PYTHONPATH", "")]
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_model_server_imports_without_the_kubernetes_client(tmp_path: Path) -> None:
    """The predictor's KServe submodules load; kserve/__init__'s client, OpenAPI models, kubernetes do not."""
    seen = _child(
        """
        import json, sys
        import serving  # defers kserve/__init__
        assert vars(sys.modules["kserve"]).get("__dr_deferred_init__") is True
        from kserve import model_server
        from kserve.model import Model
        from kserve.protocol.rest.server import RESTServer
        import serving.http.kserve_app, serving.predictor
        print(json.dumps({
            "kubernetes": sorted(m for m in sys.modules if m.split(".")[0] == "kubernetes"),
            "client": "kserve.api.kserve_client" in sys.modules,
            "openapi_models": sum(m.startswith("kserve.models.") for m in sys.modules),
            "parser": model_server.parser.prog is not None,
        }))
        """,
        tmp_path,
    )
    assert seen == {"kubernetes": [], "client": False, "openapi_models": 0, "parser": True}


def test_a_deferred_name_runs_the_real_init_and_the_kserve_client_works(tmp_path: Path) -> None:
    """``kserve.KServeClient`` after deferral is KServe's own client, configured from a real kubeconfig."""
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    seen = _child(
        """
        import json, sys
        import serving  # defers kserve/__init__
        import kserve.model, kserve.model_server
        before = "kubernetes" in sys.modules
        import kserve
        client = kserve.KServeClient(config_file="kubeconfig")
        from kserve import V1beta1InferenceService
        print(json.dumps({
            "before": before,
            "after": "kubernetes" in sys.modules,
            "module": type(client).__module__,
            "host": client.api_instance.api_client.configuration.host,
            "same_model": kserve.Model is kserve.model.Model,
            "same_server": kserve.ModelServer is kserve.model_server.ModelServer,
            "isvc": V1beta1InferenceService(api_version="serving.kserve.io/v1beta1").api_version,
            "getattr_left": "__getattr__" in vars(kserve),
        }))
        """,
        tmp_path,
    )
    assert seen == {
        "before": False,
        "after": True,
        "module": "kserve.api.kserve_client",
        "host": "https://127.0.0.1:6443",
        "same_model": True,
        "same_server": True,
        "isvc": "serving.kserve.io/v1beta1",
        "getattr_left": False,
    }


def test_a_failing_init_fails_on_every_use_and_stays_deferred(tmp_path: Path) -> None:
    """An ``__init__`` that raises (the lite image has no kubernetes) raises again on the next use."""
    package = tmp_path / "site" / "heavy"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from .core import VALUE\nimport not_installed_anywhere\n")
    (package / "core.py").write_text("VALUE = 42\n")
    seen = _child(
        """
        import json
        from serving.deferred import defer_package_init
        defer_package_init("heavy")
        from heavy.core import VALUE
        import heavy
        errors = []
        for _ in range(2):
            try:
                heavy.anything
            except ModuleNotFoundError as exc:
                errors.append(exc.name)
        print(json.dumps({"value": VALUE, "errors": errors}))
        """,
        tmp_path,
        extra_path=tmp_path / "site",
    )
    assert seen == {"value": 42, "errors": ["not_installed_anywhere", "not_installed_anywhere"]}


def test_an_imported_or_missing_package_is_left_alone_and_a_module_is_refused() -> None:
    """Deferring what is imported or not installed changes nothing; a plain module has no ``__init__``."""
    assert defer_package_init("json") is False
    assert defer_package_init("no_such_package_dr") is False
    assert "no_such_package_dr" not in sys.modules
    assert "tabnanny" not in sys.modules
    with pytest.raises(ValueError, match="Expected an importable package, got 'tabnanny'"):
        defer_package_init("tabnanny")
