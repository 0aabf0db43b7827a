"""``DRModel``: the only ``kserve.Model`` subclass — load, then preprocess → predict → postprocess.

``preprocess`` turns any accepted body (V1 raw image or JSON, a parsed V2 request, a SageMaker image) into
one float32 batch; ``predict`` calls the backend; ``postprocess`` grades, records metrics, sets the ``X-DR-*``
response headers and shapes the answer for the protocol that asked. Image decoding runs in the loop's default
executor, model calls in a dedicated one-thread executor, so the event loop never blocks on TensorFlow.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from kserve import Model

from serving import protocol
from serving.backends import Backend, describe_model, load_backend
from serving.errors import InvalidRequest, ModelLoadError, NotReady
from serving.grading import Grading, grade_batch
from serving.imaging import decode_image
from serving.limits import Limits
from serving.metadata import ModelMetadata
from serving.metrics import (
    BATCH_SECONDS,
    BATCH_SIZE,
    IMAGE_SECONDS,
    MODEL_INFO,
    MODEL_LOAD_SECONDS,
    PREDICTIONS,
    NodeLabels,
    node_labels,
)
from serving.preprocess import prepare_pixels, preprocess_image
from serving.tensor import to_png

__all__ = ["ARRIVAL_HEADER", "DRModel", "Predicted", "Prepared"]

logger = logging.getLogger(__name__)

#: Request header (set by the server's middleware) holding the arrival time, ``time.perf_counter_ns()``.
ARRIVAL_HEADER = "x-dr-arrival-ns"


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """A request after ``preprocess``: the model-ready batch and what the answer needs to know."""

    tensor: np.ndarray
    protocol: str
    request_id: str | None
    arrival_ns: int


@dataclass(frozen=True, kw_only=True)
class Predicted:
    """A batch after ``predict``: class probabilities and the backend time."""

    prepared: Prepared
    probabilities: np.ndarray
    prediction_s: float


class DRModel(Model):
    """A DR classifier served by KServe: any compatible SavedModel (or LiteRT file) in ``model_dir``."""

    def __init__(
        self,
        name: str,
        *,
        model_dir: str | os.PathLike[str],
        backend: str = "auto",
        limits: Limits | None = None,
        node: NodeLabels | None = None,
    ) -> None:
        super().__init__(name, return_response_headers=True)
        self.model_dir = Path(model_dir)
        self.backend_kind = backend
        self.limits = limits or Limits.from_env()
        self.node = node or node_labels()
        self.backend: Backend | None = None
        self.metadata: ModelMetadata | None = None
        self.load_seconds: float | None = None
        self._inference = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dr-inference")

    def load(self) -> bool:
        """Load the backend, run one warm-up batch, record the load time, then report ready."""
        started = time.perf_counter()
        try:
            declared = ModelMetadata.load(self.model_dir) if self.model_dir.is_dir() else None
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from exc
        backend = load_backend(self.model_dir, declared, kind=self.backend_kind)
        metadata = describe_model(self.model_dir, declared, backend)
        height, width = metadata.input_size
        probabilities = backend.predict(np.zeros((1, height, width, 3), dtype=np.float32))
        if probabilities.shape != (1, metadata.num_classes):
            raise ModelLoadError(
                f"Expected the warm-up batch to give probabilities shaped [1, {metadata.num_classes}], "
                f"got {list(probabilities.shape)!r}."
            )
        self.backend, self.metadata = backend, metadata
        self.load_seconds = time.perf_counter() - started
        MODEL_LOAD_SECONDS.labels(model=self.name, backend=backend.name).set(self.load_seconds)
        MODEL_INFO.labels(
            model=self.name,
            backend=backend.name,
            architecture=metadata.architecture,
            mode=self.node.mode,
            **self.node.as_labels(),
        ).set(1)
        logger.info(
            "Loaded %s from %s with backend %s in %.2f s: input %r %dx%d, scaling %r, output %r.",
            self.name,
            self.model_dir,
            backend.name,
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
        """Release the inference thread; the model reports not ready."""
        self.ready = False
        self._inference.shutdown(wait=True, cancel_futures=False)

    # -- the three request steps ------------------------------------------------------------------------

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Prepared:
        """Parse the body for its protocol and turn its images into one scaled float32 batch."""
        metadata = self._require_metadata()
        headers = headers or {}
        arrival_ns = _arrival_ns(headers)
        height, width = metadata.input_size
        if isinstance(payload, protocol.V2Request):
            batch = protocol.v2_batch(payload, height=height, width=width, limits=self.limits)
        elif isinstance(payload, protocol.ImageBatch | protocol.TensorBatch):
            batch = payload
        elif isinstance(payload, bytes | bytearray | dict | list):
            batch = protocol.parse_v1(payload, content_type=headers.get("content-type"), limits=self.limits)
        else:
            raise InvalidRequest(f"Expected a V1, V2 or SageMaker request, got {type(payload).__name__}.")
        if isinstance(batch, protocol.TensorBatch):
            tensor = batch.tensor
        else:
            loop = asyncio.get_running_loop()
            tensor = await loop.run_in_executor(None, self._images_to_tensor, batch.images)
        return Prepared(
            tensor=tensor, protocol=batch.protocol, request_id=batch.request_id, arrival_ns=arrival_ns
        )

    async def predict(
        self,
        payload: Prepared,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Predicted:
        """Run the backend on the batch, off the event loop."""
        backend = self._require_backend()
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        probabilities = await loop.run_in_executor(self._inference, backend.predict, payload.tensor)
        return Predicted(
            prepared=payload, probabilities=probabilities, prediction_s=time.perf_counter() - started
        )

    def postprocess(
        self,
        result: Predicted,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Grade each image, record metrics and headers, and shape the answer for the request's protocol."""
        metadata, backend = self._require_metadata(), self._require_backend()
        gradings = grade_batch(result.probabilities, metadata)
        self._observe(gradings, backend=backend.name, prediction_s=result.prediction_s)
        prepared = result.prepared
        prediction_ms = result.prediction_s * 1000
        server_s = (time.perf_counter_ns() - prepared.arrival_ns) / 1e9
        if response_headers is not None:
            response_headers.update(
                self.response_headers(prediction_ms=prediction_ms, server_ms=server_s * 1000)
            )
        if prepared.protocol == "v2":
            return protocol.v2_response(
                gradings,
                model=self.name,
                request_id=prepared.request_id,
                prediction_ms=prediction_ms,
                server_ms=server_s * 1000,
            )
        if prepared.protocol == "sagemaker":
            return protocol.sagemaker_response(
                gradings[0], request_s=server_s, prediction_s=result.prediction_s
            )
        return protocol.v1_response(
            gradings, model=self.name, prediction_ms=prediction_ms, server_ms=server_s * 1000
        )

    # -- helpers the server uses ------------------------------------------------------------------------

    def response_headers(self, *, prediction_ms: float, server_ms: float) -> dict[str, str]:
        """The ``X-DR-*`` headers of a prediction answer."""
        headers = {
            "X-DR-Model": self.name,
            "X-DR-Backend": self.backend.name if self.backend is not None else "none",
            "X-DR-Prediction-Ms": f"{prediction_ms:.3f}",
            "X-DR-Server-Ms": f"{server_ms:.3f}",
            "X-DR-Pool": self.node.pool,
            "X-DR-Arch": self.node.arch,
            "X-DR-Instance-Type": self.node.instance_type,
            "X-DR-Mode": self.node.mode,
        }
        if self.node.node:
            headers["X-DR-Node"] = self.node.node
        return headers

    async def preprocessed_png(self, body: Any, *, content_type: str | None) -> bytes:
        """The processed model input for one image (V1 raw or JSON body), as PNG bytes."""
        metadata = self._require_metadata()
        batch = protocol.parse_v1(body, content_type=content_type, limits=self.limits)
        if len(batch.images) != 1:
            raise InvalidRequest(f"Expected exactly one image to inspect, got {len(batch.images)}.")

        def render() -> bytes:
            return to_png(prepare_pixels(decode_image(batch.images[0], limits=self.limits), metadata))

        return await asyncio.get_running_loop().run_in_executor(None, render)

    def get_input_types(self) -> list[dict[str, Any]]:
        """V2 metadata inputs: encoded images (BYTES [-1]) or preprocessed pixels (FP32 [-1, H, W, 3])."""
        if self.metadata is None:
            return []
        height, width = self.metadata.input_size
        return protocol.v2_input_types(input_name=self.metadata.input.name, height=height, width=width)

    def get_output_types(self) -> list[dict[str, Any]]:
        """V2 metadata outputs: grade, probabilities, referable, label."""
        if self.metadata is None:
            return []
        return protocol.v2_output_types(num_classes=self.metadata.num_classes)

    def _images_to_tensor(self, images: tuple[bytes, ...]) -> np.ndarray:
        metadata = self._require_metadata()
        arrays = [preprocess_image(decode_image(data, limits=self.limits), metadata) for data in images]
        return np.stack(arrays).astype(np.float32, copy=False)

    def _observe(self, gradings: list[Grading], *, backend: str, prediction_s: float) -> None:
        labels = {"model": self.name, "backend": backend, **self.node.as_labels()}
        count = len(gradings)
        BATCH_SECONDS.labels(**labels).observe(prediction_s)
        per_image = IMAGE_SECONDS.labels(**labels)
        for _ in range(count):
            per_image.observe(prediction_s / count)
        BATCH_SIZE.labels(model=self.name).observe(count)
        for grading in gradings:
            PREDICTIONS.labels(model=self.name, grade=str(grading.grade)).inc()

    def _require_metadata(self) -> ModelMetadata:
        if self.metadata is None:
            raise NotReady(f"Expected model {self.name!r} to be loaded, but it is still loading.")
        return self.metadata

    def _require_backend(self) -> Backend:
        if self.backend is None:
            raise NotReady(f"Expected model {self.name!r} to be loaded, but it is still loading.")
        return self.backend


def _arrival_ns(headers: dict[str, str]) -> int:
    raw = headers.get(ARRIVAL_HEADER)
    if raw is not None and raw.isdigit():
        return int(raw)
    return time.perf_counter_ns()
