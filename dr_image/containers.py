"""Run predictor containers the way the rendered chart runs them (image tests, ``dr_image.measure``, the lab).

Same arguments and environment as the chart's InferenceService (``serve --model-dir=/mnt/models
--model-name=... --http-port=8080 --backend=...``, ``DR_*``), uid 10001, read-only root with a tmpfs ``/tmp``,
all capabilities dropped, the smallest profile's limits (1 GiB, half a CPU), and a port published on 127.0.0.1
only (or, when the engine runs without a bridge, the host network with a free port).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from dr_image import images
from serving.client import build_request
from serving.launcher import free_port

ROOT = images.ROOT
#: The smallest resource profile of the chart (values.yaml profiles.1Gi).
SMALLEST_PROFILE = {"memory": "1g", "cpus": "0.5", "name": "1Gi"}
#: The non-root uid:gid of the image and the chart (securityContext.runAsUser/runAsGroup).
USER = "10001:10001"
BACKEND = {"full": "savedmodel", "lite": "litert"}


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a docker CLI command and capture its output."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        command = " ".join(args[:3])
        raise RuntimeError(f"docker {command} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def bridge_available() -> bool:
    """Whether the engine has its default bridge network (dockerd may run with ``--bridge=none``)."""
    return bool(docker("network", "ls", "--filter", "name=^bridge$", "-q", check=False).stdout.strip())


@dataclass
class Container:
    """A running predictor container and the URL it answers on."""

    image: str
    flavour: str
    arch: str = "amd64"
    model_name: str = "mobilenet"
    model_mount: Path | None = None
    model_dir: str = "/mnt/models"
    env: dict[str, str] = field(default_factory=dict)
    profile: dict[str, str] = field(default_factory=lambda: dict(SMALLEST_PROFILE))
    #: Extra writable bind mounts, ``{host path: container path}`` (``dr_image.coldstart``'s report folder).
    mounts: dict[Path, str] = field(default_factory=dict)
    #: Flags after the chart's (the route tests' ``--max-image-pixels``).
    extra_args: tuple[str, ...] = ()
    name: str = field(default_factory=lambda: f"dr-test-{uuid.uuid4().hex[:10]}")
    #: Extra /etc/hosts entries (``--add-host``), shared by containers that join this one's network.
    hosts: dict[str, str] = field(default_factory=dict)
    port: int = 0
    #: The port the predictor listens on inside its network namespace (8080, or ``port`` on the host network).
    inner_port: int = 0
    started_at: float = 0.0

    @property
    def backend(self) -> str:
        """The backend the chart selects for this flavour."""
        return BACKEND[self.flavour]

    @property
    def url(self) -> str:
        """Base URL of the predictor."""
        return f"http://127.0.0.1:{self.port}"

    def args(self, http_port: int) -> list[str]:
        """The container arguments, exactly as the chart renders them."""
        return [
            "serve",
            f"--model-dir={self.model_dir}",
            f"--model-name={self.model_name}",
            f"--http-port={http_port}",
            f"--backend={self.backend}",
            *self.extra_args,
        ]

    def run_options(self) -> tuple[list[str], int]:
        """``docker run``/``create`` options as the chart runs the predictor, and the port it listens on.

        Sets ``port`` (a free one) first; memory without swap (``--memory-swap`` = ``--memory``), as on
        a node.
        """
        self.port = free_port()
        options = ["--name", self.name, "--user", USER, "--read-only", "--tmpfs", "/tmp:rw,size=256m"]
        options += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        options += ["--memory", self.profile["memory"], "--memory-swap", self.profile["memory"]]
        options += ["--cpus", self.profile["cpus"]]
        options += images.emulation_run_options(self.arch)
        env = {
            "DR_POOL": self.arch,
            "DR_ARCH": self.arch,
            "DR_INSTANCE_TYPE": "m5.xlarge",
            "DR_PRICE_PER_HOUR": "0.23",
            "DR_MODE": "standard",
            "DR_MEMORY_PROFILE": self.profile["name"],
            "DR_NODE_NAME": "docker-host",
            "DR_POD_NAME": self.name,
            **self.env,
        }
        for key, value in env.items():
            options += ["--env", f"{key}={value}"]
        if self.model_mount is not None:
            options += ["--volume", f"{self.model_mount}:/mnt/models:ro"]
        for host, inside in self.mounts.items():
            options += ["--volume", f"{host}:{inside}:rw"]
        for host, address in self.hosts.items():
            options += ["--add-host", f"{host}:{address}"]
        if bridge_available():
            options += ["--publish", f"127.0.0.1:{self.port}:8080"]
            http_port = 8080
        else:
            options += ["--network", "host"]
            http_port = self.port
        return options, http_port

    def start(self) -> Container:
        """``docker run -d`` the container; returns self."""
        options, http_port = self.run_options()
        self.inner_port = http_port
        self.started_at = time.monotonic()
        docker("run", "--detach", *options, self.image, *self.args(http_port))
        return self

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Poll the chart's readiness route until 200; returns seconds since start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/v1/models/{self.model_name}", timeout=2).status_code == 200:
                    return time.monotonic() - self.started_at
            if not self.running():
                raise RuntimeError(f"container {self.name} exited before ready:\n{self.logs()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"container {self.name} not ready after {timeout:.0f} s:\n{self.logs()[-3000:]}")

    def first_prediction(self, image: bytes, *, timeout: float = 120.0) -> float:
        """Poll with a V1 prediction of ``image`` until one answers 200; returns seconds since start."""
        while (left := timeout - (time.monotonic() - self.started_at)) > 0:
            with contextlib.suppress(httpx.HTTPError):
                if self.predict(image, timeout=left).status_code == 200:
                    return time.monotonic() - self.started_at
            if not self.running():
                raise RuntimeError(f"{self.image} exited before answering:\n{self.logs()[-2000:]}")
            time.sleep(0.02)
        raise TimeoutError(f"{self.image} gave no prediction within {timeout:.0f} s:\n{self.logs()[-2000:]}")

    def predict(self, image: bytes, *, timeout: float = 60.0) -> httpx.Response:
        """POST one raw JPEG to the V1 predict route (built by the wire contract, ``serving.client``)."""
        request = build_request("v1", self.model_name, image)
        return httpx.post(
            f"{self.url}{request.path}", content=request.body, headers=request.headers, timeout=timeout
        )

    def running(self) -> bool:
        """Whether the container is still running."""
        result = docker("inspect", "-f", "{{.State.Running}}", self.name, check=False)
        return result.stdout.strip() == "true"

    def exit_code(self, timeout: float = 60.0) -> int:
        """Wait for the container to exit; returns its exit code."""
        return int(docker("wait", self.name, timeout=timeout).stdout.strip())

    def logs(self) -> str:
        """stdout and stderr of the container so far."""
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def remove(self) -> None:
        """Force-remove the container."""
        docker("rm", "--force", self.name, check=False)

    def __enter__(self) -> Container:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()
