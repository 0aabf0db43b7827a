"""``dr-serving cold-start``: a real predictor's start phases, the import profile, the pinned import set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from serving.coldstart import PHASES, import_profile, measure_once, phases
from serving.zoo.synthetic import encode_image, make_fundus_image

#: Third-party top-level packages a LiteRT predictor may hold at ready (dev venv; the image holds fewer).
#: A new one fails this test: decide then whether the serving path needs it. Heavy ones, and who brings
#: them: pandas (kserve.protocol.infer_type evaluates ``pd.DataFrame`` annotations at import), grpc,
#: grpc_tools (optional, ``grpc/__init__``; not in the lite image), google.protobuf (``kserve.model`` →
#: ``kserve.inference_client``, ``kserve.model_server`` → the gRPC server), rich/pygments/click
#: (``httpx._main``, the httpx CLI; click is also ``uvicorn.main``'s). kserve/__init__'s Kubernetes
#: client is deferred (``serving.deferred``), see ``FORBIDDEN_AT_READY``.
ALLOWED_AT_READY = frozenset(
    {
        # What a prediction needs: HTTP stack, decoding, LiteRT, metrics, KServe itself.
        *("PIL", "ai_edge_litert", "annotated_doc", "annotated_types", "anyio", "fastapi", "httptools"),
        *("kserve", "numpy", "orjson", "prometheus_client", "pydantic", "pydantic_core", "python_multipart"),
        *("simplejpeg", "starlette", "timing_asgi", "typing_extensions", "typing_inspection", "uvicorn"),
        *("idna", "packaging", "psutil", "yaml", "cloudevents", "deprecation", "six", "dateutil", "pytz"),
        *("watchfiles", "brotli", "httpx", "opentelemetry"),
        # Heavy and unused by any route (see above).
        *("pandas", "cython_runtime", "grpc", "grpc_interceptor", "grpc_tools", "google"),
        *("rich", "pygments", "click"),
        # Ours.
        *("serving", "dr_cli"),
    }
)
#: Never at ready: TensorFlow for a LiteRT model, what the other sub-commands import, and what only
#: kserve/__init__ imports (the Kubernetes client, its HTTP/OAuth/websocket stack, KServe's OpenAPI client).
FORBIDDEN_AT_READY = frozenset(
    {
        *("tensorflow", "keras", "matplotlib", "pyhelm3", "locust", "gevent", "scipy"),
        *("loadtest", "dr_deploy", "dr_image"),
        *("kubernetes", "durationpy", "oauthlib", "requests_oauthlib", "websocket", "requests", "urllib3"),
        *("tabulate", "aiohttp", "cryptography", "jwt", "pyasn1"),
    }
)


def _third_party(modules: list[str]) -> set[str]:
    """Top-level package names outside the standard library, private helpers (``_cython_*``...) left out."""
    tops = {name.split(".")[0] for name in modules}
    return {name for name in tops - set(sys.stdlib_module_names) if not name.startswith("_")}


def test_import_profile_reads_real_importtime_output() -> None:
    """``python -X importtime`` of real imports: packages with their self time summed, largest first."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import json, email.mime.text"],
        capture_output=True,
        text=True,
        check=True,
    )
    profile = import_profile(result.stderr, top=50)
    names = [name for name, _ in profile]
    assert {"json", "email"} <= set(names)
    seconds = [value for _, value in profile]
    assert seconds == sorted(seconds, reverse=True) and all(value >= 0 for value in seconds)
    assert len(import_profile(result.stderr, top=1)) == 1


def test_a_real_cold_start_has_ordered_phases_and_only_the_pinned_imports(mobilenet_int8_dir: Path) -> None:
    """LiteRT: spawn ≤ process start ≤ imports ≤ model ≤ ready ≤ answer; the import set is pinned."""
    photo = encode_image(make_fundus_image(2, size=256, seed=1), "JPEG")
    once = measure_once(mobilenet_int8_dir, backend="litert", model_name="mobilenet", photo=photo)
    marks = once["marks"]
    order = ["process_start", "imports_done", "model_loaded", "ready", "answered"]
    # /proc's start time has a 10 ms tick: the spawn mark may follow it by less than one tick.
    assert marks["spawned"] - 0.02 <= marks["process_start"]
    assert [marks[name] for name in order] == sorted(marks[name] for name in order)
    assert set(phases(marks)) == {name for name, _, _ in PHASES}
    loaded = _third_party(once["modules"])
    assert not loaded & FORBIDDEN_AT_READY
    assert loaded - ALLOWED_AT_READY == set(), (
        "new packages at ready: keep them off the start path or list them"
    )
    assert "serving.backends.litert" in once["modules"]
    assert not any(name.startswith(("kserve.api", "kserve.models.")) for name in once["modules"])


def test_bench_cold_start_is_the_cold_start_command_and_bench_alone_is_unchanged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``dr-serving bench cold-start`` and its alias ``dr-serving cold-start`` parse to the same run."""
    from dr_cli.main import build_parser, main
    from serving import bench, coldstart

    words = ["--runs", "3", "--backends", "litert", "--model-dir", "m"]
    nested = build_parser("bench").parse_args(["bench", "cold-start", *words])
    alias = build_parser("cold-start").parse_args(["cold-start", *words])
    assert nested.func is alias.func is coldstart.run
    for name in ("runs", "backends", "model_dir", "model_name", "out"):
        assert getattr(nested, name) == getattr(alias, name)
    plain = build_parser("bench").parse_args(["bench", "--models", "mobilenet"])
    assert plain.func is bench.run and plain.models == "mobilenet" and plain.measurement is None
    assert main(["bench", "cold-start", "--runs", "0", "--backends", "litert"]) == 1
    assert capsys.readouterr().err.strip() == "Error: Expected --runs of 1 or more, got 0."
