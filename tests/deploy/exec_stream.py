"""The pod exec endpoint of an API server on 127.0.0.1: the websocket protocol the kubernetes client speaks.

A real ``websockets`` server that accepts ``GET /api/v1/namespaces/<ns>/pods/<pod>/exec?command=...`` with the
``v5.channel.k8s.io`` (or ``v4``) subprotocol and answers as the API server relays the kubelet: every write of
the command becomes one binary frame whose first byte is the channel (apimachinery
``util/httpstream/wsstream/conn.go`` ``write``: 1 stdout, 2 stderr), then the command's meta/v1 ``Status`` as
JSON on channel 3 (kubelet ``cri/streaming/remotecommand/exec.go:45-80``), then a normal close. The
``Status`` bodies are recorded files (``recorded/exec-status-*.json``). The command itself either runs here
(``python`` is this interpreter; paths in ``paths`` are mapped to local folders, as the pod's volumes) or the
answer is a recorded status alone (what a runtime says when the executable is missing).
"""

from __future__ import annotations

import http
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

RECORDED = Path(__file__).with_name("recorded")
STDOUT, STDERR, ERROR = 1, 2, 3
#: What io.Copy hands the websocket per write (its 32 KiB buffer): one frame each.
CHUNK = 32 * 1024


@dataclass
class ExecRequest:
    """One exec request as the endpoint received it."""

    path: str
    query: dict[str, list[str]]
    offered_protocols: list[str]


@dataclass
class ExecEndpoint:
    """Serve the exec API on 127.0.0.1 in a thread; ``host`` is the ``Configuration.host`` for a client."""

    protocol: str = "v5.channel.k8s.io"
    paths: dict[str, Path] = field(default_factory=dict)
    #: A recorded status to answer with instead of running the command (e.g. ``exec-status-not-found.json``).
    status_only: str | None = None
    #: A recorded ``Status`` to refuse the upgrade with, and its HTTP code (e.g. RBAC's 403).
    refuse: tuple[int, str] | None = None
    requests: list[ExecRequest] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    _server: Server | None = None
    _thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """``http://127.0.0.1:<port>`` (the client turns it into ``ws://``)."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.socket.getsockname()[1]}"

    def __enter__(self) -> ExecEndpoint:
        self._server = serve(
            self._handle,
            "127.0.0.1",
            0,
            subprotocols=[self.protocol],  # type: ignore[list-item]
            process_request=self._process_request,
            compression=None,
            max_size=None,
            close_timeout=0.1,
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._thread.join(timeout=10)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.requests.append(self._parse(request))
        if self.refuse is None:
            return None
        code, name = self.refuse
        response = connection.respond(http.HTTPStatus(code), (RECORDED / name).read_text(encoding="utf-8"))
        response.headers["Content-Type"] = "application/json"
        return response

    @staticmethod
    def _parse(request: Request) -> ExecRequest:
        parts = urlsplit(request.path)
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p]
        return ExecRequest(parts.path, parse_qs(parts.query), offered)

    def _handle(self, connection: ServerConnection) -> None:
        command = self.requests[-1].query.get("command", [])
        for frame in self._answer(command):
            self.frames.append(frame)
            connection.send(frame)
        connection.close()

    def _answer(self, command: list[str]) -> Iterator[bytes]:
        if self.status_only is not None:
            yield bytes([ERROR]) + (RECORDED / self.status_only).read_bytes().strip()
            return
        argv = [sys.executable if command[0] == "python" else command[0]]
        argv += [str(self.paths.get(arg, arg)) for arg in command[1:]]
        result = subprocess.run(argv, capture_output=True, check=False, timeout=60)
        stdout = [result.stdout[i : i + CHUNK] for i in range(0, len(result.stdout), CHUNK)]
        # stderr arrives between stdout writes, as it does from a running process.
        middle = len(stdout) // 2
        for chunk in stdout[:middle]:
            yield bytes([STDOUT]) + chunk
        if result.stderr:
            yield bytes([STDERR]) + result.stderr
        for chunk in stdout[middle:]:
            yield bytes([STDOUT]) + chunk
        recorded = {0: "exec-status-success.json", 1: "exec-status-exit-1.json"}
        if result.returncode not in recorded:
            raise AssertionError(f"No recorded status for exit code {result.returncode}: {result.stderr!r}")
        yield bytes([ERROR]) + (RECORDED / recorded[result.returncode]).read_bytes().strip()
