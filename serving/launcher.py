"""``PredictorProcess``: run ``python -m serving serve`` as a child process on a free local port.

Used by the tests, the benchmark and the load lab. The child's stdout and stderr go to a log file (a temporary
one unless ``log_path`` is given); ``wait_ready`` polls ``/v2/health/ready`` and the model's own route, and
``stop`` sends SIGTERM (the server finishes in-flight requests) before falling back to SIGKILL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["PredictorProcess", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class PredictorProcess:
    """A ``dr-serving serve`` child process serving ``model_dir`` on ``host:port``."""

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        *,
        model_name: str = "mobilenet",
        host: str = "127.0.0.1",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        cpus: Iterable[int] | None = None,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.model_dir = Path(model_dir).absolute()
        self.model_name = model_name
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.env = dict(env or {})
        self.extra_args = tuple(extra_args)
        self.cpus = None if cpus is None else sorted(set(cpus))
        self._own_log = log_path is None
        self.log_path = Path(log_path) if log_path is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._started_at: float | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:45123``."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The child's process id once started."""
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        """The child's exit code, ``None`` while it runs (or before it starts)."""
        return self._process.poll() if self._process is not None else None

    def command(self) -> list[str]:
        """The command line of the child."""
        return [
            sys.executable,
            "-m",
            "serving",
            "serve",
            f"--model-dir={self.model_dir}",
            f"--model-name={self.model_name}",
            f"--host={self.host}",
            f"--http-port={self.port}",
            *self.extra_args,
        ]

    def start(self) -> PredictorProcess:
        """Start the child (returns at once; see ``wait_ready``)."""
        if self._process is not None:
            raise RuntimeError(
                f"Expected a stopped predictor, got one already running as pid {self._process.pid}."
            )
        if self.log_path is None:
            handle, name = tempfile.mkstemp(prefix=f"dr-serving-{self.model_name}-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **self.env}
        with open(self.log_path, "ab") as log:
            self._started_at = time.perf_counter()
            self._process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        if self.cpus is not None:
            os.sched_setaffinity(self._process.pid, self.cpus)
        return self

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Block until the server and the model answer ready; returns seconds since ``start``."""
        if self._process is None or self._started_at is None:
            raise RuntimeError(
                "Expected a started predictor, got one that was never started; call start() first."
            )
        deadline = time.monotonic() + timeout
        routes = ("/v2/health/ready", f"/v1/models/{self.model_name}")
        while True:
            code = self._process.poll()
            if code is not None:
                reason = self.last_error()
                raise RuntimeError(
                    f"Expected the predictor to become ready, but it exited with code {code}: {reason}"
                )
            if all(_status(self.url + route) == 200 for route in routes):
                return time.perf_counter() - self._started_at
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Expected the predictor at {self.url} to be ready within {timeout:g} s, but it was not "
                    f"(log: {self.log_path})."
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; returns the exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def log_text(self) -> str:
        """Everything the child wrote so far."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def last_error(self) -> str:
        """The child's ``Error: ...`` line if it printed one, else its last log line."""
        lines = [line for line in self.log_text().splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("Error:")]
        if errors:
            return errors[-1]
        return lines[-1] if lines else "(no output)"

    def __enter__(self) -> PredictorProcess:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self._own_log and self.log_path is not None and exc_type is None:
            self.log_path.unlink(missing_ok=True)

    def __repr__(self) -> str:
        state = "not started" if self._process is None else f"pid {self._process.pid}"
        where = str(self.model_dir)
        return f"PredictorProcess({where!r}, model_name={self.model_name!r}, url={self.url!r}, {state})"


# Local health checks never go through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _status(url: str) -> int | None:
    try:
        with _OPENER.open(url, timeout=2.0) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None
