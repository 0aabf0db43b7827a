"""``dr-serving deploy …``: the Helm release (pyhelm3) and the cluster (kubernetes client) from a shell.

    dr-serving deploy install|upgrade [-f VALUES]... [--set KEY=VALUE]... [--wait]
    dr-serving deploy uninstall | template [-f VALUES]...
    dr-serving deploy preflight [-f VALUES]... [--set KEY=VALUE]...   (one line per problem with its fix)
    dr-serving deploy wait | endpoints [--output table|yaml|json]     (the release's InferenceServices)
    dr-serving deploy wait-zero NAME | pod-timeline NAME              (cold-start measurements)

Exit codes: 0 success, 1 runtime failure (Helm, API, timeout), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from dr_cli.errors import CliError

__all__ = ["parse_set", "register"]

DEFAULT_NAMESPACE = "dr-serving"
DEFAULT_RELEASE = "dr-serving"


def _error(message: str, *, code: int = 1) -> Exception:
    return CliError(message, code=code)


def parse_set(assignments: Sequence[str]) -> dict[str, Any]:
    """Turn ``--set a.b=value`` items into nested values; each value is read as a YAML scalar."""
    values: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise _error(f"--set expects KEY=VALUE with a dotted KEY, got {item!r}.", code=2)
        node = values
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise _error(
                    f"--set {item!r} nests under {part!r}, which an earlier --set made a value.", code=2
                )
            node = child
        node[leaf] = yaml.safe_load(raw) if raw else ""
    return values


def _cluster_api(args: argparse.Namespace) -> Any:
    from dr_deploy.cluster import api_client

    try:
        return api_client(kubeconfig=args.kubeconfig, context=args.context)
    except RuntimeError as exc:
        raise _error(str(exc)) from exc


def _spec(args: argparse.Namespace) -> Any:
    from dr_deploy.release import ReleaseSpec

    return ReleaseSpec(
        name=args.release,
        namespace=args.namespace,
        chart=Path(args.chart),
        values_files=tuple(Path(p) for p in args.values),
        values=parse_set(args.set),
    )


def _manager(args: argparse.Namespace) -> Any:
    from dr_deploy.release import ReleaseManager

    # pyhelm3 logs each failed helm command as a warning; the one-line error below already says what failed.
    logging.getLogger("pyhelm3").setLevel(logging.ERROR)
    try:
        return ReleaseManager(helm=args.helm, kubeconfig=args.kubeconfig, kubecontext=args.context)
    except (FileNotFoundError, AssertionError) as exc:
        raise _error(f"No usable helm binary ({exc}); run: make tools") from exc


def _guard(action: Callable[[], int]) -> int:
    """Run an action, turning Helm, API, timeout and lookup failures into one-line CLI errors."""
    from kubernetes.client.exceptions import ApiException

    try:
        return action()
    except ApiException as exc:
        raise _error(f"Kubernetes API answered {exc.status} {exc.reason}.") from exc
    except (RuntimeError, TimeoutError, LookupError, FileNotFoundError, ValueError) as exc:
        raise _error(str(exc)) from exc


def _install(args: argparse.Namespace) -> int:
    def run() -> int:
        spec = _spec(args)
        print(f">> helm upgrade --install {spec.name} {spec.chart} --namespace {spec.namespace}", flush=True)
        info = _manager(args).install_or_upgrade(spec, wait=args.wait, timeout=args.helm_timeout)
        print(f"release {info.name} in {info.namespace}: revision {info.revision}, {info.status}")
        return 0

    return _guard(run)


def _uninstall(args: argparse.Namespace) -> int:
    def run() -> int:
        print(f">> helm uninstall {args.release} --namespace {args.namespace}", flush=True)
        _manager(args).uninstall(args.release, args.namespace, timeout=args.helm_timeout)
        print(f"release {args.release} uninstalled from {args.namespace}")
        return 0

    return _guard(run)


def _template(args: argparse.Namespace) -> int:
    def run() -> int:
        objects = _manager(args).template(_spec(args))
        if args.output == "json":
            print(json.dumps(objects, indent=2))
        else:
            sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False, explicit_start=True))
        return 0

    return _guard(run)


def _preflight(args: argparse.Namespace) -> int:
    from dr_deploy.preflight import check, requirements

    def run() -> int:
        spec = _spec(args)
        needs = requirements(_manager(args).template(spec), spec.namespace)
        problems = check(_cluster_api(args), needs)
        for problem in problems:
            print(problem.line())
        if problems:
            raise _error(f"preflight found {len(problems)} problem(s); fix them before `helm install`.")
        checked = "KServe, " + (
            "Knative flags and image resolution" if needs.mode == "knative" else "metrics-server"
        )
        workloads = sum(len(pool.workloads) for pool in needs.pools)
        print(f"preflight: no problems ({checked}, nodes for {workloads} workload(s), PVCs).")
        return 0

    return _guard(run)


def _wait(args: argparse.Namespace) -> int:
    from dr_deploy.cluster import wait_ready

    def run() -> int:
        states = wait_ready(_cluster_api(args), args.namespace, release=args.release, timeout=args.timeout)
        for state in states:
            where = f"{state.model} on {state.pool}, {state.mode}"
            print(f"{state.name}: Ready ({where}) {state.url or ''}".rstrip())
        return 0

    return _guard(run)


def _endpoints(args: argparse.Namespace) -> int:
    from dr_deploy.cluster import endpoints

    def run() -> int:
        found = endpoints(
            _cluster_api(args), args.namespace, release=args.release, ingress_url=args.ingress_url
        )
        rows = [e.to_dict() for e in found]
        if args.output == "json":
            print(json.dumps({"endpoints": rows}, indent=2))
        elif args.output == "yaml":
            sys.stdout.write(yaml.safe_dump({"endpoints": rows}, sort_keys=False))
        else:
            for e in found:
                reach = (
                    f"Host: {e.host or '-'}"
                    if e.port_forward is None
                    else f"(from outside: {e.port_forward})"
                )
                print(f"{e.model:<12} {e.pool:<10} {e.mode:<9} {e.url}  {reach}")
        return 0

    return _guard(run)


def _wait_zero(args: argparse.Namespace) -> int:
    from dr_deploy.cluster import wait_scaled_to_zero

    def run() -> int:
        waited = wait_scaled_to_zero(_cluster_api(args), args.namespace, args.name, timeout=args.timeout)
        print(f"{args.name}: 0 pods after {waited:.1f} s")
        return 0

    return _guard(run)


def _pod_timeline(args: argparse.Namespace) -> int:
    from dr_deploy.cluster import pod_timelines

    def run() -> int:
        timelines = pod_timelines(_cluster_api(args), args.namespace, args.name)
        if not timelines:
            raise LookupError(f"InferenceService {args.name!r} has no pods in namespace {args.namespace!r}.")
        if args.output == "json":
            print(json.dumps([t.to_dict() for t in timelines], indent=2))
            return 0
        for timeline in timelines:
            parts = ", ".join(
                f"{key.removesuffix('_seconds')} {value:.0f} s" if value is not None else f"{key} n/a"
                for key, value in timeline.durations().items()
            )
            print(f"{timeline.pod} on {timeline.node or '?'}: {parts}")
        return 0

    return _guard(run)


def _add_cluster_arguments(parser: argparse.ArgumentParser, *, release_default: str | None) -> None:
    parser.add_argument(
        "--namespace", "-n", default=DEFAULT_NAMESPACE, help="namespace (default: %(default)s)"
    )
    parser.add_argument("--release", default=release_default, help="Helm release name (default: %(default)s)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")


def _add_release_arguments(parser: argparse.ArgumentParser, *, values: bool = True) -> None:
    from dr_deploy.release import CHART_DIR

    _add_cluster_arguments(parser, release_default=DEFAULT_RELEASE)
    parser.add_argument("--helm", help="helm executable (default: bin/helm, else helm on PATH)")
    parser.add_argument("--helm-timeout", default="10m", help="helm --timeout (default: %(default)s)")
    if values:
        parser.add_argument(
            "--chart", default=str(CHART_DIR), help="chart folder (default: the project's chart)"
        )
        parser.add_argument(
            "-f",
            "--values",
            action="append",
            default=[],
            metavar="FILE",
            help="values file (repeatable, in order)",
        )
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="one value (repeatable, wins last)",
        )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dr-serving deploy`` and its sub-commands."""
    deploy = subparsers.add_parser(
        "deploy",
        help="install the chart and inspect the cluster",
        description="Install the dr-serving chart (pyhelm3) and inspect its InferenceServices.",
    )
    commands = deploy.add_subparsers(dest="deploy_command", metavar="COMMAND", required=True)

    for name, text in (("install", "install or upgrade the release"), ("upgrade", "same as install")):
        command = commands.add_parser(name, help=text)
        _add_release_arguments(command)
        command.add_argument("--wait", action="store_true", help="let helm wait for built-in objects")
        command.set_defaults(func=_install)

    command = commands.add_parser("uninstall", help="uninstall the release (a missing release is fine)")
    _add_release_arguments(command, values=False)
    command.set_defaults(func=_uninstall)

    command = commands.add_parser("template", help="render the chart through pyhelm3 and print the objects")
    _add_release_arguments(command)
    command.add_argument("--output", "-o", choices=("yaml", "json"), default="yaml", help="output format")
    command.set_defaults(func=_template)

    command = commands.add_parser(
        "preflight",
        help="check the cluster for what would keep the release from running (exit 1 if anything)",
    )
    _add_release_arguments(command)
    command.set_defaults(func=_preflight)

    command = commands.add_parser("wait", help="wait until every InferenceService of the release is Ready")
    _add_cluster_arguments(command, release_default=None)
    command.add_argument("--timeout", type=float, default=600.0, help="seconds (default: %(default)s)")
    command.set_defaults(func=_wait)

    command = commands.add_parser("endpoints", help="URL and Host header per model and pool")
    _add_cluster_arguments(command, release_default=None)
    command.add_argument(
        "--ingress-url",
        default="http://127.0.0.1:8080",
        help="cluster ingress base URL (default: %(default)s)",
    )
    command.add_argument("--output", "-o", choices=("table", "yaml", "json"), default="table", help="format")
    command.set_defaults(func=_endpoints)

    command = commands.add_parser("wait-zero", help="wait until an InferenceService's revision has no pods")
    command.add_argument("name", help="InferenceService name")
    _add_cluster_arguments(command, release_default=None)
    command.add_argument("--timeout", type=float, default=300.0, help="seconds (default: %(default)s)")
    command.set_defaults(func=_wait_zero)

    command = commands.add_parser("pod-timeline", help="pod start-up phases of an InferenceService's pods")
    command.add_argument("name", help="InferenceService name")
    _add_cluster_arguments(command, release_default=None)
    command.add_argument("--output", "-o", choices=("table", "json"), default="table", help="format")
    command.set_defaults(func=_pod_timeline)
