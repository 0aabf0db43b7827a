"""charts/tools/verify_pins.py offline: the URL templates name the assets upstream's release scripts publish,
and the script, run for real against a local HTTP server, reports present and missing assets correctly."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from chartkit import ROOT

sys.path.insert(0, str(ROOT / "charts" / "tools"))
import verify_pins

# (owner/repo, tag variable, asset) as upstream publishes them, each read at the pinned tag:
UPSTREAM_ASSETS = {
    # cert-manager make/manifests.mk:34,55-59 (static manifest attached to the GitHub release)
    "CERT_MANAGER_URL": ("cert-manager/cert-manager", "CERT_MANAGER_VERSION", "cert-manager.yaml"),
    # knative/serving hack/generate-yamls.sh:52,56 + hack/release.sh:23-28 (ARTIFACTS_TO_PUBLISH)
    "KNATIVE_CRDS_URL": ("knative/serving", "KNATIVE_SERVING_VERSION", "serving-crds.yaml"),
    "KNATIVE_CORE_URL": ("knative/serving", "KNATIVE_SERVING_VERSION", "serving-core.yaml"),
    # knative-extensions/net-kourier hack/release.sh:25,31
    "KOURIER_URL": ("knative-extensions/net-kourier", "KNATIVE_KOURIER_VERSION", "kourier.yaml"),
    # kserve hack/release/generate-install.sh:97-100 + publish-release.sh:158-164 (install/$VERSION/*)
    "KSERVE_CRDS_URL": ("kserve/kserve", "KSERVE_VERSION", "kserve-crds.yaml"),
    "KSERVE_URL": ("kserve/kserve", "KSERVE_VERSION", "kserve.yaml"),
    "KSERVE_RESOURCES_URL": ("kserve/kserve", "KSERVE_VERSION", "kserve-cluster-resources.yaml"),
    # kubernetes-sigs/metrics-server .github/workflows/release.yaml:26-31, Makefile:128
    "METRICS_SERVER_URL": ("kubernetes-sigs/metrics-server", "METRICS_SERVER_VERSION", "components.yaml"),
}
TAG_FORMATS = {
    "CERT_MANAGER_VERSION": r"v\d+\.\d+\.\d+",
    "KNATIVE_SERVING_VERSION": r"knative-v\d+\.\d+\.\d+",
    "KNATIVE_KOURIER_VERSION": r"knative-v\d+\.\d+\.\d+",
    "KSERVE_VERSION": r"v\d+\.\d+\.\d+",
    "METRICS_SERVER_VERSION": r"v\d+\.\d+\.\d+",
    "KUBE_PROMETHEUS_STACK_VERSION": r"\d+\.\d+\.\d+",
}


def test_url_templates_name_upstream_release_assets() -> None:
    """Every installer URL is github.com/<repo>/releases/download/${TAG}/<asset> as upstream publishes it."""
    templates = verify_pins.url_templates()
    assert set(templates) == {*UPSTREAM_ASSETS, "KUBE_PROMETHEUS_STACK_CHART"}
    for name, (repo, tag, asset) in UPSTREAM_ASSETS.items():
        assert templates[name] == f"https://github.com/{repo}/releases/download/${{{tag}}}/{asset}", name


def test_pins_have_upstream_tag_formats_and_expand() -> None:
    """Each pin has the tag format of its project, and every URL expands without an unknown variable."""
    import re

    pins = verify_pins.versions()
    for name, pattern in TAG_FORMATS.items():
        assert re.fullmatch(pattern, pins[name]), name
    urls = verify_pins.pinned_urls()
    assert urls["KUBE_PROMETHEUS_STACK_CHART"].endswith(
        f"kube-prometheus-stack-{pins['KUBE_PROMETHEUS_STACK_VERSION']}.tgz"
    )
    assert all("${" not in url for url in urls.values())
    with pytest.raises(KeyError, match="NOT_PINNED is used in a URL"):
        verify_pins.expand("https://x/${NOT_PINNED}", pins)


class _Assets(http.server.BaseHTTPRequestHandler):
    present: ClassVar[set[str]] = set()

    def do_HEAD(self) -> None:
        self.send_response(200 if self.path in self.present else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def release_server() -> Iterator[tuple[str, set[str]]]:
    """A local HTTP server on 127.0.0.1 answering HEAD 200 for the paths in the returned set, else 404."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Assets)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Assets.present = set()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Assets.present
    finally:
        server.shutdown()
        server.server_close()


def test_script_reports_missing_assets_and_exits_1(release_server: tuple[str, set[str]]) -> None:
    """All assets present: exit 0; KServe assets missing (unreleased tag): exit 1, one MISSING line each."""
    base, present = release_server
    paths = {url.replace("https://github.com", "") for url in verify_pins.pinned_urls().values()}
    present |= paths
    script = [sys.executable, str(ROOT / "charts" / "tools" / "verify_pins.py"), "--base", base]
    ok = subprocess.run(script, capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("ok     ") == len(paths)
    present -= {p for p in paths if "/kserve/kserve/" in p}
    bad = subprocess.run(script, capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 1
    missing = [line for line in bad.stdout.splitlines() if line.startswith("MISSING")]
    assert len(missing) == 3 and all(" 404 KSERVE_" in line for line in missing)
    assert bad.stderr.startswith("Error: 3 pinned asset(s) missing")


def test_verify_pins_is_a_make_target_outside_make_test() -> None:
    """`make verify-pins` runs the script; `make test` does not depend on it (it needs the network)."""
    cluster_mk = (ROOT / "make" / "cluster.mk").read_text()
    assert "verify-pins:" in cluster_mk and "charts/tools/verify_pins.py" in cluster_mk
    makefiles = "".join(p.read_text() for p in [ROOT / "Makefile", *Path(ROOT / "make").glob("*.mk")])
    test_rule = [line for line in makefiles.splitlines() if line.startswith("test:")]
    assert test_rule and all("verify-pins" not in line for line in test_rule)
