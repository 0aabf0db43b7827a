"""``dr-serving lab collect``: copy run folders out of the in-cluster Locust master pod, like ``kubectl cp``.

The chart's load generator (``loadtest.enabled``) keeps run folders in the master pod's ``/runs`` emptyDir.
``kubectl cp`` runs ``tar`` in the container and streams it back over the exec API; here the pod's own Python
writes the tar (``tarfile``, so the image needs no tar binary) base64-encoded, because the Kubernetes
client's exec stream carries text, and ``extract_runs`` unpacks it with tarfile's ``data`` filter (no
absolute paths, no links out of the folder). Pod lookup goes through the REST API; only ``exec_in_pod`` uses
the websocket.
"""

from __future__ import annotations

import base64
import io
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubernetes import client

__all__ = [
    "MASTER_COMPONENT",
    "RUNS_DIR",
    "collect",
    "exec_in_pod",
    "extract_runs",
    "master_pod",
    "pack_command",
]

MASTER_COMPONENT = "loadtest-master"
#: Where the master pod keeps run folders (the chart's ``runs`` emptyDir).
RUNS_DIR = "/runs"

#: Runs inside the master pod: the newest run folder (or the one named) as a base64 tar on stdout.
_PACK = """
import base64, pathlib, sys, tarfile, io
root = pathlib.Path(sys.argv[1]); name = sys.argv[2]
runs = sorted(p.parent.name for p in root.glob('*/summary.json'))
if not runs: sys.exit('no run folder with a summary.json under ' + str(root))
if name == 'latest': name = runs[-1]
if name not in runs:
    sys.exit('no run folder ' + repr(name) + ' under ' + str(root) + ' (have: ' + ', '.join(runs) + ')')
buffer = io.BytesIO()
with tarfile.open(fileobj=buffer, mode='w:gz') as tar: tar.add(root / name, arcname=name)
sys.stdout.write(base64.b64encode(buffer.getvalue()).decode('ascii'))
"""


def pack_command(run: str = "latest", *, runs_dir: str = RUNS_DIR) -> list[str]:
    """The command run in the master container: ``python -c PACK RUNS_DIR RUN``."""
    return ["python", "-c", _PACK, runs_dir, run]


def master_pod(api: client.ApiClient, namespace: str, release: str) -> str:
    """The name of the release's running Locust master pod."""
    from kubernetes import client as k8s

    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component={MASTER_COMPONENT}"
    pods = k8s.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items
    running = [p for p in pods if p.status is not None and p.status.phase == "Running"]
    if not running:
        raise RuntimeError(
            f"No running load-test master pod in namespace {namespace!r} ({selector}); install the chart "
            "with loadtest.enabled=true (make deploy DEPLOY_ARGS='--set loadtest.enabled=true')."
        )
    return str(running[0].metadata.name)


def exec_in_pod(api: client.ApiClient, namespace: str, pod: str, command: list[str]) -> str:
    """Run ``command`` in the pod's first container over the exec API; its stdout (errors raise)."""
    from kubernetes import client as k8s
    from kubernetes.stream import stream

    response = stream(
        k8s.CoreV1Api(api).connect_get_namespaced_pod_exec,
        pod,
        namespace,
        command=command,
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    stdout, stderr = [], []
    while response.is_open():
        response.update(timeout=5)
        if response.peek_stdout():
            stdout.append(response.read_stdout())
        if response.peek_stderr():
            stderr.append(response.read_stderr())
    response.close()
    if response.returncode:
        raise RuntimeError(
            f"{command[0]} in pod {pod} failed: {''.join(stderr).strip() or response.returncode}"
        )
    return "".join(stdout)


def extract_runs(encoded: str, out: Path) -> Path:
    """Unpack the base64 tar the pod wrote into ``out``; returns the run folder."""
    try:
        data = base64.b64decode(encoded.strip(), validate=True)
    except ValueError as exc:
        raise RuntimeError(f"The master pod's answer is not a base64 tar: {exc}") from exc
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tops = {Path(member.name).parts[0] for member in tar.getmembers()}
        if len(tops) != 1:
            raise RuntimeError(f"Expected one run folder in the tar, got {sorted(tops)!r}.")
        tar.extractall(out, filter="data")
    return out / tops.pop()


def collect(
    api: client.ApiClient, *, namespace: str, release: str, run: str = "latest", out: Path = Path("runs")
) -> Path:
    """Copy one run folder (default the newest) out of the master pod into ``out``; returns its local path."""
    pod = master_pod(api, namespace, release)
    return extract_runs(exec_in_pod(api, namespace, pod, pack_command(run)), out)
