"""``DRModel``: the only ``kserve.Model`` subclass — load, then preprocess → predict → postprocess.

``preprocess`` decodes the body with the codec of the route it came through (or a raw V1 body) and turns its
images into one float32 batch on the decode executor (``limits.decode_slots`` threads: at most that many
images are decoded at once); ``predict`` calls the backend on a dedicated one-thread inference executor, so
the event loop never blocks on TensorFlow, or, with ``micro_batch`` > 1 (``--micro-batch``), hands the batch
to a ``MicroBatcher`` that runs the waiting requests' images through the backend in one call;
``postprocess`` grades, records metrics, sets the ``X-DR-*`` response headers and lets the codec shape the
answer. Each request's time is split where it is spent (see ``Timings`` and ``docs/architecture.md``): body
read (measured by the middleware), decode (incl. the wait for a decode slot), queue (the wait for the
inference thread or the batcher), prediction (the backend call alone, shared with the other requests of its
micro-batch), postprocess.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from kserve.model import Model

from serving.backends import Backend, describe_model, load_backend
from serving.client import (
    HEADER_ARCH,
    HEADER_BACKEND,
    HEADER_BODY_MS,
    HEADER_DECODE_MS,
    HEADER_INSTANCE_TYPE,
    HEADER_MODE,
    HEADER_MODEL,
    HEADER_NODE,
    HEADER_POOL,
    HEADER_POSTPROCESS_MS,
    HEADER_PRECISION,
    HEADER_PREDICTION_MS,
    HEADER_QUEUE_MS,
    HEADER_SERVER_MS,
)
from serving.errors import ExplanationUnavailable, InvalidRequest, ModelLoadError, NotReady, Ungradable
from serving.explain import Explainer, overlay_png
from serving.gradability import DEFAULT_POLICY, Assessment, assess, model_input_is_retina
from serving.gradability import HEADER as HEADER_UNGRADABLE
from serving.grading import Grading, grade_batch
from serving.http.middleware import ARRIVAL_HEADER, BODY_NS_HEADER
from serving.imaging import decode_image
from serving.limits import Limits
from serving.metadata import ModelMetadata
from serving.metrics import (
    BATCH_SECONDS,
    BATCH_SIZE,
    CALL_IMAGES,
    IMAGE_SECONDS,
    MODEL_INFO,
    MODEL_LOAD_SECONDS,
    PHASE_SECONDS,
    PREDICTIONS,
    UNGRADABLE_IMAGES,
    NodeLabels,
    node_labels,
)
from serving.micro_batch import MicroBatcher
from serving.preprocess import prepare_pixels
from serving.protocol import V1, Batch, Codec, Encoded, ImageBatch, TensorBatch, Timings, v2
from serving.tensor import scale, to_png

__all__ = ["ARRIVAL_HEADER", "DRModel", "Predicted", "Prepared"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """A request after ``preprocess``: the model-ready batch, its codec, and the time spent so far."""

    tensor: np.ndarray
    codec: Codec
    request_id: str | None
    arrival_ns: int
    body_ns: int
    decode_ns: int
    #: The gradability gate's verdict per image under the ``flag`` policy (empty otherwise).
    assessments: tuple[Assessment, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Predicted:
    """A batch after ``predict``: probabilities, the wait for the inference thread and the backend time."""

    prepared: Prepared
    probabilities: np.ndarray
    queue_s: float
    prediction_s: float


class DRModel(Model):
    """A DR classifier served by KServe: any compatible SavedModel (or LiteRT file) in ``model_dir``."""

    def __init__(
        self,
        name: str,
        *,
        model_dir: str | os.PathLike[str],
        limits: Limits,
        backend: str = "auto",
        precision: str = "fp32",
        node: NodeLabels | None = None,
        gradability: str = DEFAULT_POLICY,
        micro_batch: int = 0,
        micro_batch_wait_s: float = 0.0,
        threads: int = 0,
    ) -> None:
        """``micro_batch`` > 1: gather up to that many waiting images into one backend call, waiting at most
        ``micro_batch_wait_s`` for more after the first (0: only what is already queued); 0 or 1: one call
        per request. ``threads``: CPU threads per backend call, 0 to follow the CPU limit."""
        super().__init__(name, return_response_headers=True)
        if micro_batch < 0 or micro_batch_wait_s < 0 or threads < 0:
            raise ValueError(
                "Expected micro_batch >= 0, micro_batch_wait_s >= 0 and threads >= 0, "
                f"got {micro_batch}, {micro_batch_wait_s} and {threads}."
            )
        self.threads = threads
        self.micro_batch = micro_batch
        self.micro_batch_wait_s = micro_batch_wait_s
        self._batcher: MicroBatcher | None = None
        self.model_dir = Path(model_dir)
        self.backend_kind = backend
        self.precision = precision
        self.limits = limits
        self.gradability = gradability
        self.node = node or node_labels()
        self.backend: Backend | None = None
        self.metadata: ModelMetadata | None = None
        self.load_seconds: float | None = None
        self._inference = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dr-inference")
        self._decoding = ThreadPoolExecutor(max_workers=limits.decode_slots, thread_name_prefix="dr-decode")
        # Explanations run on their own thread: a :predict never queues behind one.
        self._explaining = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dr-explain")
        self._explainer: Explainer | None = None

    def load(self) -> bool:
        """Load the backend, run one warm-up batch, record the load time, then report ready."""
        started = time.perf_counter()
        try:
            declared = ModelMetadata.load(self.model_dir) if self.model_dir.is_dir() else None
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from exc
        backend = load_backend(
            self.model_dir,
            declared,
            kind=self.backend_kind,
            precision=self.precision,
            num_threads=self.threads or None,
        )
        metadata = describe_model(self.model_dir, declared, backend)
        height, width = metadata.input_size
        probabilities = backend.predict(np.zeros((1, height, width, 3), dtype=np.float32))
        if probabilities.shape != (1, metadata.num_classes):
            raise ModelLoadError(
                f"Expected the warm-up batch to give probabilities shaped [1, {metadata.num_classes}], "
                f"got {list(probabilities.shape)!r}."
            )
        self.backend, self.metadata = backend, metadata
        if self.micro_batch > 1:
            self._batcher = MicroBatcher(
                backend,
                max_batch=self.micro_batch,
                max_wait_s=self.micro_batch_wait_s,
                on_call=lambda images, seconds, kind=backend.name: self._observe_call(kind, images, seconds),
            )
        self.load_seconds = time.perf_counter() - started
        MODEL_LOAD_SECONDS.labels(model=self.name, backend=backend.name).set(self.load_seconds)
        MODEL_INFO.labels(
            model=self.name,
            backend=backend.name,
            precision=backend.precision,
            architecture=metadata.architecture,
            mode=self.node.mode,
            **self.node.as_labels(),
        ).set(1)
        logger.info(
            "Loaded %s from %s with backend %s (%s) on %s in %.2f s: input %r %dx%d, scaling %r, output %r.",
            self.name,
            self.model_dir,
            backend.name,
            backend.precision,
            "1 CPU thread" if backend.num_threads == 1 else f"{backend.num_threads} CPU threads",
            self.load_seconds,
            metadata.input.name,
            height,
            width,
            metadata.scaling,
            metadata.output.name,
        )
        self.ready = True
        return self.ready

    def stop(self) -> None:
        """Release the inference and decode threads; the model reports not ready."""
        self.ready = False
        if self._batcher is not None:
            self._batcher.close()
        self._inference.shutdown(wait=True, cancel_futures=False)
        self._decoding.shutdown(wait=True, cancel_futures=False)
        self._explaining.shutdown(wait=True, cancel_futures=False)

    def decode(self, codec: Codec, body: Any, headers: dict[str, str]) -> Batch:
        """Decode one request body with ``codec``, within this model's limits and input size."""
        return codec.decode(body, headers, limits=self.limits, input_size=self._require_metadata().input_size)

    # -- the three request steps ------------------------------------------------------------------------

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Prepared:
        """Decode the body (if the route has not) and turn its images into one scaled float32 batch."""
        started_ns = time.perf_counter_ns()
        metadata = self._require_metadata()
        headers = headers or {}
        if isinstance(payload, Encoded):
            batch = self.decode(payload.codec, payload.body, headers)
        elif isinstance(payload, ImageBatch | TensorBatch):
            batch = payload
        elif isinstance(payload, bytes | bytearray | dict | list):
            batch = self.decode(V1, payload, headers)
        else:
            raise InvalidRequest(f"Expected a V1, V2 or SageMaker request, got {type(payload).__name__}.")
        assessments: tuple[Assessment, ...] = ()
        if isinstance(batch, TensorBatch):
            tensor = batch.tensor
        else:
            loop = asyncio.get_running_loop()
            tensor, assessments = await loop.run_in_executor(
                self._decoding, self._images_to_tensor, batch.images, metadata
            )
        return Prepared(
            tensor=tensor,
            codec=batch.codec,
            request_id=batch.request_id,
            arrival_ns=_header_ns(headers, ARRIVAL_HEADER, default=started_ns),
            body_ns=_header_ns(headers, BODY_NS_HEADER, default=0),
            decode_ns=time.perf_counter_ns() - started_ns,
            assessments=assessments,
        )

    async def predict(
        self,
        payload: Prepared,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Predicted:
        """Run the backend on the batch on the inference thread; time the wait and the call apart."""
        backend = self._require_backend()
        submitted = time.perf_counter()
        if self._batcher is not None:
            batched = await asyncio.wrap_future(self._batcher.submit(payload.tensor))
            return Predicted(
                prepared=payload,
                probabilities=batched.outputs,
                queue_s=batched.started - submitted,
                prediction_s=batched.ended - batched.started,
            )

        def call() -> tuple[np.ndarray, float, float]:
            started = time.perf_counter()
            probabilities = backend.predict(payload.tensor)
            ended = time.perf_counter()
            self._observe_call(backend.name, len(payload.tensor), ended - started)
            return probabilities, started, ended

        loop = asyncio.get_running_loop()
        probabilities, started, ended = await loop.run_in_executor(self._inference, call)
        return Predicted(
            prepared=payload,
            probabilities=probabilities,
            queue_s=started - submitted,
            prediction_s=ended - started,
        )

    def postprocess(
        self,
        result: Predicted,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Grade each image, record metrics and headers, and let the request's codec shape the answer."""
        started_ns = time.perf_counter_ns()
        metadata, backend = self._require_metadata(), self._require_backend()
        prepared = result.prepared
        timings = Timings(
            body_ms=prepared.body_ns / 1e6,
            decode_ms=prepared.decode_ns / 1e6,
            queue_ms=result.queue_s * 1000,
            prediction_ms=result.prediction_s * 1000,
            server_ms=(started_ns - prepared.arrival_ns) / 1e6,
        )
        gradings = grade_batch(result.probabilities, metadata)
        if prepared.assessments:
            gradings = [
                replace(grading, gradable=verdict.gradable, ungradable_reason=verdict.reason)
                for grading, verdict in zip(gradings, prepared.assessments, strict=True)
            ]
        answer = prepared.codec.encode(
            gradings, model=self.name, request_id=prepared.request_id, timings=timings
        )
        postprocess_ms = (time.perf_counter_ns() - started_ns) / 1e6
        self._observe(gradings, backend=backend.name, timings=timings, postprocess_ms=postprocess_ms)
        if response_headers is not None:
            response_headers.update(self.response_headers(timings, postprocess_ms=postprocess_ms))
            response_headers.update(self.ungradable_headers(prepared.assessments))
        return answer

    # -- helpers the server uses ------------------------------------------------------------------------

    def response_headers(self, timings: Timings, *, postprocess_ms: float) -> dict[str, str]:
        """The ``X-DR-*`` headers of a prediction answer."""
        headers = {
            HEADER_MODEL: self.name,
            HEADER_BACKEND: self.backend.name if self.backend is not None else "none",
            HEADER_PRECISION: self.backend.precision if self.backend is not None else "none",
            HEADER_PREDICTION_MS: f"{timings.prediction_ms:.3f}",
            HEADER_SERVER_MS: f"{timings.server_ms:.3f}",
            HEADER_BODY_MS: f"{timings.body_ms:.3f}",
            HEADER_DECODE_MS: f"{timings.decode_ms:.3f}",
            HEADER_QUEUE_MS: f"{timings.queue_ms:.3f}",
            HEADER_POSTPROCESS_MS: f"{postprocess_ms:.3f}",
            HEADER_POOL: self.node.pool,
            HEADER_ARCH: self.node.arch,
            HEADER_INSTANCE_TYPE: self.node.instance_type,
            HEADER_MODE: self.node.mode,
        }
        if self.node.node:
            headers[HEADER_NODE] = self.node.node
        return headers

    def ungradable_headers(self, assessments: tuple[Assessment, ...]) -> dict[str, str]:
        """``X-DR-Ungradable``: the reason codes of the flagged images, comma-separated (none: no header)."""
        reasons = [verdict.reason or "" for verdict in assessments if not verdict.gradable]
        return {HEADER_UNGRADABLE: ",".join(reasons)} if reasons else {}

    async def preprocessed_png(self, body: Any, *, headers: dict[str, str]) -> bytes:
        """The processed model input for one image (V1 raw or JSON body), as PNG bytes."""
        metadata = self._require_metadata()
        batch = self.decode(V1, body, headers)
        if len(batch.images) != 1:
            raise InvalidRequest(f"Expected exactly one image to inspect, got {len(batch.images)}.")

        def render() -> bytes:
            image = decode_image(batch.images[0], limits=self.limits, downscale_to=metadata.input_size)
            return to_png(prepare_pixels(image, metadata))

        return await asyncio.get_running_loop().run_in_executor(self._decoding, render)

    async def explain_images(self, body: Any, *, headers: dict[str, str]) -> dict[str, Any]:
        """Grade each image (V1 raw or JSON body) with a Grad-CAM heat map, as numbers and a PNG overlay."""
        metadata, backend = self._require_metadata(), self._require_backend()
        if backend.name != "savedmodel":
            raise ExplanationUnavailable(
                "Expected a SavedModel backend for explanations (Grad-CAM needs TensorFlow), "
                f"got {backend.name!r}."
            )
        batch = self.decode(V1, body, headers)
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        pixels, _ = await loop.run_in_executor(self._decoding, self._images_to_pixels, batch.images, metadata)
        if self._explainer is None:
            self._explainer = Explainer(
                self.model_dir, input_name=backend.input_spec.name, output_name=backend.output_name
            )
        explainer = self._explainer
        scaled = scale(pixels, scaling=metadata.scaling)
        probabilities, heatmaps = await loop.run_in_executor(self._explaining, explainer.explain, scaled)
        gradings = grade_batch(probabilities, metadata)
        items = []
        for grading, image, heatmap in zip(gradings, pixels, heatmaps, strict=True):
            item = grading.to_dict()
            item["heatmap"] = {
                "height": int(heatmap.shape[0]),
                "width": int(heatmap.shape[1]),
                "values": np.round(heatmap, 4).tolist(),
            }
            item["overlay_png_b64"] = base64.b64encode(overlay_png(image, heatmap)).decode("ascii")
            items.append(item)
        return {
            "explanations": items,
            "method": "grad-cam",
            "model": self.name,
            "explain_ms": round((time.perf_counter() - started) * 1000, 3),
        }

    def get_input_types(self) -> list[dict[str, Any]]:
        """V2 metadata inputs: encoded images (BYTES [-1]) or preprocessed pixels (FP32 [-1, H, W, 3])."""
        if self.metadata is None:
            return []
        height, width = self.metadata.input_size
        return v2.input_types(input_name=self.metadata.input.name, height=height, width=width)

    def get_output_types(self) -> list[dict[str, Any]]:
        """V2 metadata outputs: grade, probabilities, referable, label (+ gradable, ungradable_reason)."""
        if self.metadata is None:
            return []
        return v2.output_types(num_classes=self.metadata.num_classes, gradability=self.gradability == "flag")

    def _images_to_tensor(
        self, images: tuple[bytes, ...], metadata: ModelMetadata
    ) -> tuple[np.ndarray, tuple[Assessment, ...]]:
        """Decode, gate and preprocess each image into the scaled float32 batch."""
        pixels, assessments = self._images_to_pixels(images, metadata)
        return scale(pixels, scaling=metadata.scaling).astype(np.float32, copy=False), assessments

    def _images_to_pixels(
        self, images: tuple[bytes, ...], metadata: ModelMetadata
    ) -> tuple[np.ndarray, tuple[Assessment, ...]]:
        """Decode, prepare and gate (``self.gradability``) each image, uint8; ``Ungradable`` under reject.

        When the model's input is the gate's retina crop, the gate measures sharpness on the prepared pixels.
        """
        size = metadata.input_size
        reuse = model_input_is_retina(metadata)
        arrays, assessments = [], []
        for index, data in enumerate(images):
            image = decode_image(data, limits=self.limits, downscale_to=size)
            pixels = prepare_pixels(image, metadata)
            if self.gradability != "off":
                verdict = assess(image, retina=pixels if reuse else None)
                if not verdict.gradable:
                    UNGRADABLE_IMAGES.labels(
                        model=self.name, reason=str(verdict.reason), policy=self.gradability
                    ).inc()
                    if self.gradability == "reject":  # under reject every graded image is gradable
                        which = f"image {index + 1} of {len(images)}" if len(images) > 1 else "one"
                        raise Ungradable(
                            f"Expected a gradable fundus photograph, got {which} that is "
                            f"{verdict.sentence()}; retake the photo.",
                            reason=f"ungradable_{verdict.reason}",
                        )
                if self.gradability == "flag":
                    assessments.append(verdict)
            arrays.append(pixels)
        return np.stack(arrays), tuple(assessments)

    def _observe(
        self, gradings: list[Grading], *, backend: str, timings: Timings, postprocess_ms: float
    ) -> None:
        labels = {"model": self.name, "backend": backend, **self.node.as_labels()}
        count = len(gradings)
        BATCH_SECONDS.labels(**labels).observe(timings.prediction_ms / 1000)
        BATCH_SIZE.labels(model=self.name).observe(count)
        for phase, milliseconds in (
            ("body", timings.body_ms),
            ("decode", timings.decode_ms),
            ("queue", timings.queue_ms),
            ("prediction", timings.prediction_ms),
            ("postprocess", postprocess_ms),
        ):
            PHASE_SECONDS.labels(model=self.name, phase=phase).observe(milliseconds / 1000)
        for grading in gradings:
            PREDICTIONS.labels(model=self.name, grade=str(grading.grade)).inc()

    def _observe_call(self, backend: str, images: int, seconds: float) -> None:
        """One backend call: its images, and the backend time per image."""
        CALL_IMAGES.labels(model=self.name).observe(images)
        per_image = IMAGE_SECONDS.labels(model=self.name, backend=backend, **self.node.as_labels())
        for _ in range(images):
            per_image.observe(seconds / images)

    def _require_metadata(self) -> ModelMetadata:
        if self.metadata is None:
            raise NotReady(f"Expected model {self.name!r} to be loaded, but it is still loading.")
        return self.metadata

    def _require_backend(self) -> Backend:
        if self.backend is None:
            raise NotReady(f"Expected model {self.name!r} to be loaded, but it is still loading.")
        return self.backend


def _header_ns(headers: dict[str, str], name: str, *, default: int) -> int:
    raw = headers.get(name)
    if raw is not None and raw.isdigit():
        return int(raw)
    return default
