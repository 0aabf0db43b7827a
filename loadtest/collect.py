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
import json
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

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
    """Run ``command`` in the pod's first container over the exec API; its stdout (errors raise).

    The client's websocket speaks ``v5.channel.k8s.io`` / ``v4.channel.k8s.io`` (kubernetes
    ``stream/ws_client.py:33-41``): every frame's first byte names the channel (1 stdout, 2 stderr, 3 the
    command's final ``Status``). The status is read here rather than through ``returncode``, which expects an
    exit-code cause and raises on the ``InternalError`` a runtime answers when the executable is missing
    (kubelet ``cri/streaming/remotecommand/exec.go:45-80``).
    """
    from kubernetes import client as k8s
    from kubernetes.client.rest import ApiException
    from kubernetes.stream import stream
    from kubernetes.stream.ws_client import ERROR_CHANNEL

    try:
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
    except ApiException as exc:
        raise RuntimeError(
            f"Could not exec into pod {pod} in namespace {namespace!r}: {_refusal(exc)}"
        ) from exc
    stdout, stderr = [], []
    try:
        while response.is_open():
            response.update(timeout=5)
            if response.peek_stdout():
                stdout.append(response.read_stdout())
            if response.peek_stderr():
                stderr.append(response.read_stderr())
        status_text = response.read_channel(ERROR_CHANNEL)
    finally:
        response.close()
        # When the server closed first, websocket-client's close() returns early (websocket/_core.py:557 in
        # 1.9.2) and leaves the TCP socket open: shut it down here.
        response.sock.shutdown()
    _check_status(status_text, command, pod, "".join(stderr).strip())
    return "".join(stdout)


def _refusal(exc: ApiException) -> str:
    """The API server's words for a refused exec upgrade, from websocket-client's handshake error.

    The client wraps ``Handshake status <code> <reason> -+-+- <headers> -+-+- <body>`` (websocket-client
    ``_handshake.py:174``) in an ``ApiException`` without a status; the body is the server's ``Status``.
    """
    text = str(exc.reason)
    head, _, rest = text.partition(" -+-+- ")
    body = rest.rpartition(" -+-+- ")[2]
    start, end = body.find("{"), body.rfind("}")
    try:
        message = json.loads(body[start : end + 1]).get("message") if start >= 0 else None
    except ValueError:
        message = None
    head = head.removeprefix("Handshake status ")
    hint = "; exec needs the 'create' verb on pods/exec" if head.startswith("403") else ""
    return f"{head}: {message}{hint}" if message else f"{text}{hint}"


def _check_status(text: str, command: list[str], pod: str, stderr: str) -> None:
    """Raise with the command's stderr (or the runtime's message) unless the ``Status`` says Success."""
    if not text:
        raise RuntimeError(f"The exec stream of pod {pod} closed before {command[0]} reported how it ended.")
    try:
        status = json.loads(text)
    except ValueError as exc:
        raise RuntimeError(f"The exec stream of pod {pod} ended with an unreadable status: {text!r}") from exc
    if status.get("status") == "Success":
        return
    causes = (status.get("details") or {}).get("causes") or []
    codes = [c.get("message") for c in causes if c.get("reason") == "ExitCode"]
    if status.get("reason") == "NonZeroExitCode" and codes:
        raise RuntimeError(f"{command[0]} in pod {pod} exited with {codes[0]}: {stderr or 'no stderr'}")
    raise RuntimeError(f"{command[0]} could not run in pod {pod}: {status.get('message') or text}")


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
