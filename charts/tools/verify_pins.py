"""Check that every release asset and chart version pinned in manifests/versions.env exists.

``make verify-pins``. The URLs are the ones manifests/install-addons.sh applies: its ``*_URL="..."``
lines with ``${VAR}`` filled in from versions.env, so the check cannot drift from the installer; plus
the kube-prometheus-stack chart archive of the pinned version. Each URL gets an HTTP HEAD (redirects
followed: GitHub release downloads redirect to their storage). Prints one line per URL and exits 1 if
any is missing. Needs the network, so it is not part of ``make test``; tests/chart/test_verify_pins.py
checks the URL templates offline and runs this script against a local server. The known-good fallback
pins are listed at the end of versions.env.
"""

from __future__ import annotations

import argparse
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ROOT / "manifests" / "versions.env"
INSTALLER = ROOT / "manifests" / "install-addons.sh"
CHART_ARCHIVE = (
    "https://github.com/prometheus-community/helm-charts/releases/download/"
    "kube-prometheus-stack-${KUBE_PROMETHEUS_STACK_VERSION}/kube-prometheus-stack-${KUBE_PROMETHEUS_STACK_VERSION}.tgz"
)


def versions(path: Path = VERSIONS) -> dict[str, str]:
    """The VAR=value pins of versions.env."""
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def url_templates(installer: Path = INSTALLER) -> dict[str, str]:
    """The installer's release-asset URL templates (``NAME_URL="https://..."``) plus the chart archive."""
    found = dict(re.findall(r'^([A-Z_]+_URL)="(https://[^"]+)"$', installer.read_text(), flags=re.MULTILINE))
    return {**found, "KUBE_PROMETHEUS_STACK_CHART": CHART_ARCHIVE}


def expand(template: str, pins: dict[str, str]) -> str:
    """Fill ``${VAR}`` from the pins; an unknown variable is an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in pins:
            raise KeyError(f"{name} is used in a URL but not pinned in {VERSIONS.name}")
        return pins[name]

    return re.sub(r"\$\{([A-Z_]+)\}", value, template)


def pinned_urls(pins: dict[str, str] | None = None) -> dict[str, str]:
    """Every URL the installer will fetch, by name."""
    pins = versions() if pins is None else pins
    return {name: expand(template, pins) for name, template in url_templates().items()}


def exists(url: str, *, timeout: float = 20.0) -> tuple[bool, str]:
    """HTTP HEAD ``url`` (redirects followed): (found, status text)."""
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "dr-serving-verify-pins"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return 200 <= answer.status < 400, str(answer.status)
    except urllib.error.HTTPError as exc:
        return False, str(exc.code)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return False, f"unreachable ({getattr(exc, 'reason', exc)})"


def main(argv: list[str] | None = None) -> int:
    """Check every pinned URL; exit 1 when one is missing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="replace https://github.com with this base URL (tests)")
    args = parser.parse_args(argv)
    missing = 0
    for name, url in pinned_urls().items():
        if args.base:
            url = url.replace("https://github.com", args.base.rstrip("/"))
        found, status = exists(url)
        missing += not found
        print(f"{'ok     ' if found else 'MISSING'} {status:>4} {name}: {url}")
    if missing:
        print(
            f"Error: {missing} pinned asset(s) missing; fix manifests/versions.env "
            "(known-good fallback at its end).",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
