"""A recording stand-in for ``kubectl`` and ``helm`` that fails the way the API server would.

Installed on PATH under both names by ``test_install_order.py``. State lives in the JSON file
``$STANDIN_STATE``: existing namespaces, CRDs applied and CRDs Established, objects present, and every command
line received. ``$STANDIN_ASSETS`` maps each release URL to what the real asset holds (namespaces it creates,
CRDs it defines,
namespaces its namespaced objects go to, custom kinds it instantiates, named objects later patched).

Failures reproduced (messages as kubectl prints them):
- a namespaced object into a missing namespace: ``Error from server (NotFound): namespaces "x" not found``;
- an object of a CRD that is not Established yet: ``error: resource mapping not found ... ensure CRDs are
  installed first`` (kubectl resolves every kind before it sends anything);
- patching or waiting on something that does not exist.
A CRD becomes Established only through ``kubectl wait crd ... --for=condition=Established`` (the conservative
reading of the race on a fresh cluster).
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import sys
from pathlib import Path
from typing import Any


def _load() -> tuple[Path, dict[str, Any], dict[str, Any]]:
    path = Path(os.environ["STANDIN_STATE"])
    assets = json.loads(Path(os.environ["STANDIN_ASSETS"]).read_text())
    return path, json.loads(path.read_text()), assets


def _fail(state_path: Path, state: dict[str, Any], message: str) -> int:
    state["failures"].append(message)
    state_path.write_text(json.dumps(state))
    print(message, file=sys.stderr)
    return 1


def _option(args: list[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _apply(asset: dict[str, Any], state: dict[str, Any]) -> str | None:
    """Apply one asset; returns the errors kubectl would print (it reports each failing object), or None."""
    errors = [
        f'error: resource mapping not found for name: "{kind}" namespace: "" from "-": no matches for kind '
        f'"{kind}"\nensure CRDs are installed first'
        for kind in asset.get("uses_kinds", [])
        if kind not in state["established"]
    ]
    created = state["namespaces"] + asset.get("namespaces", [])
    errors += [
        f'Error from server (NotFound): namespaces "{namespace}" not found'
        for namespace in asset.get("objects_in", [])
        if namespace not in created
    ]
    state["namespaces"] += [n for n in asset.get("namespaces", []) if n not in state["namespaces"]]
    state["crds"] += [c for c in asset.get("crds", []) if c not in state["crds"]]
    if errors:
        return "\n".join(errors)
    state["objects"] += [o for o in asset.get("objects", []) if o not in state["objects"]]
    return None


def kubectl(args: list[str], state: dict[str, Any], assets: dict[str, Any]) -> tuple[int, str]:
    """Run one kubectl command line against the state; returns (exit code, stdout) or an error message."""
    verb = args[0]
    namespace = _option(args, "-n") or _option(args, "--namespace")
    if namespace and verb in ("wait", "patch", "rollout", "get") and namespace not in state["namespaces"]:
        raise LookupError(f'Error from server (NotFound): namespaces "{namespace}" not found')
    if verb == "apply":
        source = _option(args, "-f")
        if source == "-":
            text = sys.stdin.read()
            target = next(
                (line.split(":", 1)[1].strip() for line in text.splitlines() if "namespace:" in line), None
            )
            if "kind: Namespace" in text:
                name = next(
                    line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("  name:")
                )
                state["namespaces"].append(name)
            elif target and target not in state["namespaces"]:
                raise LookupError(f'Error from server (NotFound): namespaces "{target}" not found')
            return 0, "applied from stdin\n"
        if source not in assets:
            raise LookupError(f"error: the path {source!r} is not a known release asset")
        error = _apply(assets[source], state)
        if error:
            raise LookupError(error)
        return 0, f"applied {source}\n"
    if verb == "create" and args[1] == "namespace":
        return 0, f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {args[2]}\n"
    if verb == "create" and args[1] == "configmap":
        return 0, f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {args[2]}\n  namespace: {namespace}\n"
    if verb == "label":
        return 0, sys.stdin.read()
    if verb == "wait":
        if "crd" in args[1:3] or args[1].startswith("crd/"):
            wanted = [args[1].split("/", 1)[1]] if args[1].startswith("crd/") else list(state["crds"])
            missing = [c for c in wanted if c not in state["crds"]]
            if missing:
                raise LookupError(
                    f'Error from server (NotFound): customresourcedefinitions "{missing[0]}" not found'
                )
            state["established"] += [c for c in wanted if c not in state["established"]]
        return 0, "condition met\n"
    if verb == "patch":
        kind, name = args[1], args[2]
        if f"{kind}/{name}" not in state["objects"]:
            raise LookupError(f'Error from server (NotFound): {kind} "{name}" not found')
        return 0, f"{kind}/{name} patched\n"
    if verb == "get" and args[1] == "configmap":
        if f"configmap/{args[2]}" not in state["objects"]:
            raise LookupError(f'Error from server (NotFound): configmaps "{args[2]}" not found')
        return 0, json.dumps({"domainTemplate": "{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}"})
    if verb == "rollout":
        return 0, "ok\n"
    raise LookupError(f"stand-in kubectl: unsupported command {' '.join(args)}")


def helm(args: list[str], state: dict[str, Any]) -> tuple[int, str]:
    """helm upgrade --install: the target namespace must exist unless --create-namespace is given."""
    namespace = _option(args, "--namespace") or "default"
    if "--create-namespace" in args:
        state["namespaces"] += [namespace] if namespace not in state["namespaces"] else []
    elif namespace not in state["namespaces"]:
        raise LookupError(f'Error: create: failed to create: namespaces "{namespace}" not found')
    return 0, "deployed\n"


def main() -> int:
    """Entry point under the names kubectl and helm."""
    args = sys.argv[1:]
    if args[-2:] == ["-f", "-"] or args[:2] == ["label", "--local"]:
        sys.stdin = io.StringIO(sys.stdin.read())  # read the pipe before taking the lock
    with open(os.environ["STANDIN_STATE"] + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _locked_main(args)


def _locked_main(args: list[str]) -> int:
    state_path, state, assets = _load()
    tool = os.environ.get("STANDIN_TOOL", "kubectl")
    state["calls"].append([tool, *args])
    try:
        code, out = helm(args, state) if tool == "helm" else kubectl(args, state, assets)
    except LookupError as exc:
        return _fail(state_path, state, str(exc))
    state_path.write_text(json.dumps(state))
    sys.stdout.write(out)
    return code


if __name__ == "__main__":
    sys.exit(main())
