"""Both image flavours, built from the Dockerfile and run as the chart runs them, serve like the predictor."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from dr_image.containers import Container, docker
from serving.client import build_request
from serving.metadata import DEFAULT_CLASS_NAMES
from serving.zoo.synthetic import encode_image, make_fundus_image
from tests.image.conftest import MALLOC, process_status, python_in

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def fundus_jpeg() -> bytes:
    """A synthetic fundus photograph of grade 2, as a JPEG."""
    return encode_image(make_fundus_image(2, size=512, seed=7))


def _metrics(container: Container) -> dict[str, list[tuple[dict[str, str], float]]]:
    answer = httpx.get(f"{container.url}/metrics", timeout=10)
    assert answer.status_code == 200
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def test_predicts_a_grade_from_a_raw_jpeg(running: Container, fundus_jpeg: bytes) -> None:
    answer = running.predict(fundus_jpeg)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    (prediction,) = body["predictions"]
    assert prediction["grade"] in range(5)
    assert prediction["label"] == DEFAULT_CLASS_NAMES[prediction["grade"]]
    assert len(prediction["probabilities"]) == 5
    assert sum(prediction["probabilities"]) == pytest.approx(1.0, abs=1e-3)
    assert answer.headers["X-DR-Backend"] == running.backend
    assert answer.headers["X-DR-Model"] == "mobilenet"
    assert answer.headers["X-DR-Pool"] == "amd64"


def test_metrics_count_predictions_with_the_backend_label(running: Container, fundus_jpeg: bytes) -> None:
    before = _metrics(running)
    assert running.predict(fundus_jpeg).status_code == 200
    after = _metrics(running)

    def predictions(samples: dict[str, list[tuple[dict[str, str], float]]]) -> float:
        counters = samples.get("dr_predictions_total", [])
        return sum(value for labels, value in counters if labels["model"] == "mobilenet")

    assert predictions(after) == predictions(before) + 1
    (info_labels, info_value), *_ = after["dr_model_info"]
    assert info_value == 1
    assert info_labels["backend"] == running.backend
    assert info_labels["pool"] == "amd64"
    assert any(labels["backend"] == running.backend for labels, _ in after["dr_startup_seconds"])


def test_runs_as_uid_10001_on_a_read_only_root(running: Container) -> None:
    status = process_status(running)
    assert set(status["Uid"].split()) == {"10001"}
    assert set(status["Gid"].split()) == {"10001"}
    write = docker("exec", running.name, "python", "-c", "open('/opt/probe', 'w')", check=False)
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr


def test_threads_follow_the_containers_cpu_limit(running: Container, fundus_jpeg: bytes) -> None:
    """At half a CPU (the smallest profile) the model runs on one thread, not one per CPU the host has.

    TensorFlow alone would size its pools by the host's CPUs; the container's own threads show what it did.
    """
    assert running.profile["cpus"] == "0.5"
    assert running.predict(fundus_jpeg).status_code == 200
    assert "on 1 CPU thread in" in running.logs()
    if running.flavour == "full":
        read = "import glob; print(*(open(path).read() for path in glob.glob('/proc/1/task/*/comm')))"
        names = docker("exec", running.name, "python", "-c", read).stdout.split()
        assert names.count("tf_Compute") == 1, names  # TensorFlow's pool between ops


def _counts(container: Container) -> tuple[float, float]:
    """(requests KServe has preprocessed, predictions answered) for the mobilenet model."""
    samples = _metrics(container)
    read = sum(v for labels, v in samples.get("request_preprocess_seconds_count", []) if labels)
    answered = sum(v for _, v in samples.get("dr_predictions_total", []))
    return read, answered


class Burst:
    """``count`` concurrent predictions of one image, started at once; ``join`` gives statuses and errors."""

    def __init__(self, container: Container, image: bytes, *, count: int) -> None:
        self._results: list[int] = []
        self._errors: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send, args=(container, image)) for _ in range(count)]
        for thread in self._threads:
            thread.start()

    def _send(self, container: Container, image: bytes) -> None:
        try:
            status = container.predict(image, timeout=120).status_code
        except httpx.HTTPError as exc:
            with self._lock:
                self._errors.append(repr(exc))
            return
        with self._lock:
            self._results.append(status)

    def join(self) -> tuple[list[int], list[str]]:
        """Wait for every request; returns (HTTP statuses, transport errors)."""
        for thread in self._threads:
            thread.join(timeout=120)
        return self._results, self._errors


class HeldRequest:
    """A prediction whose body the client holds back until ``finish``: in flight as long as the test wants.

    It asks ``Expect: 100-continue``; uvicorn answers ``100 Continue`` when the application first reads the
    body, so once the constructor returns the request is inside the server (its guard is reading the body).
    """

    def __init__(self, container: Container, image: bytes) -> None:
        request = build_request("v1", container.model_name, image)
        self.body = request.body
        self.sock = socket.create_connection(("127.0.0.1", container.port), timeout=30)
        head = [f"POST {request.path} HTTP/1.1", "Host: 127.0.0.1", "Expect: 100-continue"]
        head += [f"{key}: {value}" for key, value in request.headers.items()]
        head += [f"Content-Length: {len(self.body)}", "", ""]
        self.sock.sendall("\r\n".join(head).encode("latin-1"))
        self.interim = self._read_until(b"\r\n\r\n")

    def _read_until(self, marker: bytes) -> bytes:
        data = b""
        while marker not in data and (chunk := self.sock.recv(65536)):
            data += chunk
        return data

    def finish(self) -> tuple[int, bytes]:
        """Send the body, read the answer until the server closes; (status, raw answer)."""
        self.sock.sendall(self.body)
        chunks = []
        while chunk := self.sock.recv(65536):
            chunks.append(chunk)
        self.sock.close()
        answer = b"".join(chunks)
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
        return status, answer


def _wait_for_log(container: Container, text: str, timeout: float = 30) -> str:
    """The container's logs once ``text`` appears in them (or after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    logs = container.logs()
    while text not in logs and time.monotonic() < deadline:
        time.sleep(0.05)
        logs = container.logs()
    return logs


def test_sigterm_lets_in_flight_requests_finish(built_images: dict[str, str], served_model_dir: Path) -> None:
    """SIGTERM with requests in flight: every request the server has taken in is answered, then it exits 0.

    A burst the server has read in whole (KServe's preprocess counter) must be answered, before or after the
    signal. One more request is in flight for certain: the server has asked for its body (``100 Continue``)
    before the signal, and the body goes only once uvicorn logs that it is shutting down.
    """
    burst = 32
    image = encode_image(make_fundus_image(3, size=512, seed=11))
    with Container(image=built_images["lite"], flavour="lite", model_mount=served_model_dir) as container:
        container.wait_ready()
        read_before, _ = _counts(container)
        burst_run = Burst(container, image, count=burst)
        deadline = time.monotonic() + 60
        read = read_before
        while read - read_before < burst and time.monotonic() < deadline:
            read, _ = _counts(container)
        assert read - read_before == burst, "the server did not take in the whole burst within 60 s"
        held = HeldRequest(container, image)  # its body is due within the body timeout (30 s)
        assert held.interim.startswith(b"HTTP/1.1 100 Continue"), held.interim
        docker("kill", "--signal", "TERM", container.name)
        shutting_down = _wait_for_log(container, "Shutting down")
        status, answer = held.finish()
        results, errors = burst_run.join()
        exit_code = container.exit_code()
        logs = container.logs()

    assert "Shutting down" in shutting_down, shutting_down[-2000:]
    assert status == 200, answer[-2000:]
    assert b'"grade"' in answer and b"x-dr-backend: litert" in answer.lower()
    assert errors == [], logs[-2000:]
    assert results == [200] * burst
    assert exit_code == 0, logs[-2000:]


def test_sigterm_with_the_charts_drain_loses_no_request(
    built_images: dict[str, str], served_model_dir: Path
) -> None:
    """With DR_DRAIN_SECONDS (as the chart sets in Standard mode), SIGTERM mid-burst resets no request.

    Without a drain uvicorn closes its listener at once and resets connections it has not read yet; with one,
    readiness answers 503 while every request of the burst is still served, then the container exits 0.
    """
    burst = 40
    image = encode_image(make_fundus_image(2, size=512, seed=5))
    env = {"DR_DRAIN_SECONDS": "4"}
    with Container(
        image=built_images["lite"], flavour="lite", model_mount=served_model_dir, env=env
    ) as container:
        container.wait_ready()
        burst_run = Burst(container, image, count=burst)
        docker("kill", "--signal", "TERM", container.name)
        deadline = time.monotonic() + 3  # the handler runs on the server's thread: poll briefly
        readiness = httpx.get(f"{container.url}/v2/health/ready", timeout=30).status_code
        while readiness == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
            readiness = httpx.get(f"{container.url}/v2/health/ready", timeout=30).status_code
        results, errors = burst_run.join()
        exit_code = container.exit_code()
        logs = container.logs()

    assert errors == [], logs[-2000:]
    assert results == [200] * burst
    assert readiness == 503
    assert "draining for 4.0 s" in logs
    assert exit_code == 0, logs[-2000:]


@pytest.mark.parametrize(
    "model_dir", ["/mnt/models", "/opt/dr-serving/model"], ids=["chart-path", "baked-path"]
)
def test_baked_model_serves_without_a_volume(
    baked_lite_image: str, fundus_jpeg: bytes, model_dir: str
) -> None:
    with Container(image=baked_lite_image, flavour="lite", model_dir=model_dir) as container:
        container.wait_ready()
        answer = container.predict(fundus_jpeg)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["grade"] in range(5)


def test_lite_image_has_no_tensorflow(built_images: dict[str, str]) -> None:
    probe = (
        "import importlib.util, sys, glob; "
        "found = [m for m in ('tensorflow', 'keras', 'tf_keras') if importlib.util.find_spec(m)]; "
        "found += glob.glob('/opt/venv/lib/python3*/site-packages/tensorflow*'); "
        "import serving, ai_edge_litert.interpreter, kserve.model_server; print(found)"
    )
    answer = python_in(built_images["lite"], probe)
    assert answer.stdout.strip() == "[]"


def test_lite_image_has_no_kubernetes_client_and_says_so(built_images: dict[str, str]) -> None:
    """docker/prune/lite.txt removed KServe's Kubernetes client: using it fails naming what is missing."""
    probe = (
        "import importlib.util, serving, kserve\n"
        "pruned = ('kubernetes', 'requests', 'grpc_tools', 'setuptools', 'cryptography', 'aiohttp')\n"
        "print(sorted(m for m in pruned if importlib.util.find_spec(m)))\n"
        "try:\n    kserve.KServeClient\nexcept ModuleNotFoundError as exc:\n    print(exc.name)"
    )
    answer = python_in(built_images["lite"], probe)
    assert answer.stdout.split() == ["[]", "requests"]


@pytest.mark.parametrize("flavour", ["lite", "full"])
def test_image_has_no_compilers_installers_or_caches(built_images: dict[str, str], flavour: str) -> None:
    probe = (
        "import glob, shutil; "
        "print([t for t in ('gcc', 'cc', 'c++', 'pip', 'pip3') if shutil.which(t)] "
        "+ glob.glob('/root/.cache/*') + glob.glob('/var/cache/apt/archives/*.deb') + glob.glob('/wheels'))"
    )
    answer = python_in(built_images[flavour], probe)
    assert answer.stdout.strip() == "[]"


def test_server_process_has_the_glibc_memory_settings(running: Container) -> None:
    environ = docker("exec", running.name, "cat", "/proc/1/environ").stdout.split("\0")
    assert {f"{key}={value}" for key, value in MALLOC.items()} <= set(environ)


@pytest.fixture(scope="module")
def large_png() -> bytes:
    """A 4000 px fundus photograph as PNG (5 MB): 64 MB of pixels, held by Pillow in 16 MiB blocks."""
    photo = make_fundus_image(2, size=512, seed=3).resize((4000, 4000), Image.Resampling.BILINEAR)
    return encode_image(photo, "PNG")


def _rss_mib(container: Container) -> float:
    return int(process_status(container)["VmRSS"].split()[0]) / 1024  # "123456 kB"


def test_large_photos_leave_no_memory_behind(
    running: Container, fundus_jpeg: bytes, large_png: bytes
) -> None:
    """After large photos, two at a time, RSS returns near idle: their pixels were mapped and given back.

    Pillow's 16 MiB blocks stay in the heap under a threshold above them (glibc's own rises to 32 MiB): with
    ``MALLOC_MMAP_THRESHOLD_=33554432`` these requests left +76 MiB (lite) and +61 MiB (full) behind, with
    the image's 4 MiB +3 MiB.
    """
    for _ in range(5):
        assert running.predict(fundus_jpeg).status_code == 200
    idle = _rss_mib(running)
    request = build_request("v1", "mobilenet", large_png)

    def send(_: int) -> int:
        url = f"{running.url}{request.path}"
        return httpx.post(url, content=request.body, headers=request.headers, timeout=120).status_code

    with ThreadPoolExecutor(2) as pool:
        assert set(pool.map(send, range(6))) == {200}
    for _ in range(5):
        assert running.predict(fundus_jpeg).status_code == 200
    time.sleep(1)
    assert _rss_mib(running) - idle < 32, f"idle {idle:.0f} MiB"
