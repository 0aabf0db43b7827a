"""LiteRT backend: runs ``model.tflite`` with ``ai_edge_litert``'s interpreter (XNNPACK), without TensorFlow.

One interpreter is built at load time and reused for every batch behind a lock (an interpreter is not
thread-safe). Its input tensor is resized only when the batch size changes. The input's name, size and dtype
are read from the ``.tflite`` file (its serving signature when it has one); ``dr_model.json``, when present,
names the signature and output and must agree on the size.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from serving.backends.base import InputSpec
from serving.cpus import thread_count
from serving.errors import ModelLoadError
from serving.metadata import ModelMetadata

__all__ = ["INT8_TFLITE_FILENAME", "TFLITE_FILENAME", "LiteRTBackend"]

logger = logging.getLogger(__name__)

#: File name of the LiteRT model inside a model directory.
TFLITE_FILENAME = "model.tflite"
#: File name of the int8 LiteRT model (``dr-serving model convert --quantize int8``) inside a model directory.
INT8_TFLITE_FILENAME = "model.int8.tflite"
_DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.float16): "float16", np.dtype(np.uint8): "uint8"}


class LiteRTBackend:
    """A ``.tflite`` model served by the LiteRT interpreter with the XNNPACK CPU delegate."""

    name = "litert"

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        metadata: ModelMetadata | None = None,
        num_threads: int | None = None,
    ) -> None:
        path = Path(model)
        self.model_path = path / TFLITE_FILENAME if path.is_dir() else path
        if not self.model_path.is_file():
            raise ModelLoadError(
                f"Expected a LiteRT model at {str(self.model_path)!r}, but there is no such file."
            )
        self.num_threads = thread_count(num_threads)
        try:
            from ai_edge_litert.interpreter import Interpreter, OpResolverType
        except ImportError as exc:
            raise ModelLoadError(
                f"Expected the 'ai-edge-litert' package to run {str(self.model_path)!r}, but it is not "
                "installed; install it with: pip install 'dr-serving[lite]'"
            ) from exc
        try:
            # AUTO = the builtin kernels with XNNPACK applied as the default CPU delegate.
            self._interpreter = Interpreter(
                model_path=str(self.model_path),
                num_threads=self.num_threads,
                experimental_op_resolver_type=OpResolverType.AUTO,
            )
            self._interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelLoadError(
                f"Expected a loadable LiteRT model at {str(self.model_path)!r}, "
                f"got an error: {first_line[:300]}"
            ) from exc
        self._lock = threading.Lock()
        self.signature, inputs, outputs = self._named_tensors(metadata)
        self.input_spec, self._input = self._introspect_input(inputs, metadata)
        self.output_name, self._output = self._pick_output(outputs, metadata)
        self.num_classes = int(self._output["shape"][-1])
        if metadata is not None and self.num_classes != metadata.num_classes:
            raise ModelLoadError(
                f"Expected output {self.output_name!r} to have {metadata.num_classes} classes "
                f"as dr_model.json says, got {self.num_classes}."
            )
        #: ``int8`` when the model computes with int8 tensors (however it was named), else ``fp32``.
        self.precision = (
            "int8"
            if any(np.dtype(d["dtype"]) == np.int8 for d in self._interpreter.get_tensor_details())
            else "fp32"
        )
        self._batch = int(self._input["shape"][0])
        signature = self._input.get("shape_signature")
        # A model converted with a fixed batch (not -1) runs a larger batch one image at a time.
        self._dynamic_batch = signature is None or len(signature) == 0 or int(signature[0]) == -1

    def _named_tensors(
        self, metadata: ModelMetadata | None
    ) -> tuple[str | None, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Input and output details keyed by name: the signature's names when the model has a signature."""
        signatures = self._interpreter.get_signature_list()
        by_index_in = {d["index"]: d for d in self._interpreter.get_input_details()}
        by_index_out = {d["index"]: d for d in self._interpreter.get_output_details()}
        if not signatures:
            return (
                None,
                {d["name"]: d for d in by_index_in.values()},
                {d["name"]: d for d in by_index_out.values()},
            )
        wanted = metadata.signature if metadata is not None else "serving_default"
        key = wanted if wanted in signatures else next(iter(signatures))
        if key != wanted:
            logger.info("LiteRT model has no signature %r; using %r.", wanted, key)
        runner = self._interpreter.get_signature_runner(key)
        inputs = {name: by_index_in[d["index"]] for name, d in runner.get_input_details().items()}
        outputs = {name: by_index_out[d["index"]] for name, d in runner.get_output_details().items()}
        return key, inputs, outputs

    def _introspect_input(
        self, inputs: dict[str, dict[str, Any]], metadata: ModelMetadata | None
    ) -> tuple[InputSpec, dict[str, Any]]:
        if len(inputs) != 1:
            raise ModelLoadError(
                f"Expected {str(self.model_path)!r} to take exactly one image input, got {sorted(inputs)!r}."
            )
        name, details = next(iter(inputs.items()))
        shape = [int(d) for d in details["shape"]]
        dtype = _DTYPES.get(np.dtype(details["dtype"]))
        if len(shape) != 4 or shape[3] != 3 or dtype is None:
            raise ModelLoadError(
                f"Expected the input of {str(self.model_path)!r} to be a 4-D image tensor [N, H, W, 3] of "
                f"{sorted(_DTYPES.values())}, got {name!r} shaped {shape!r} of {np.dtype(details['dtype'])}."
            )
        height, width = shape[1], shape[2]
        if metadata is not None and (height, width) != tuple(metadata.input_size):
            raise ModelLoadError(
                f"Expected the LiteRT input to be {metadata.input.height}x{metadata.input.width} "
                f"as dr_model.json says, got {height}x{width}."
            )
        return InputSpec(name=name, height=height, width=width, channels=3, dtype=dtype), details

    def _pick_output(
        self, outputs: dict[str, dict[str, Any]], metadata: ModelMetadata | None
    ) -> tuple[str, dict[str, Any]]:
        wanted = metadata.output.name if metadata is not None else "probabilities"
        if wanted in outputs:
            name = wanted
        elif len(outputs) == 1:
            name = next(iter(outputs))
        else:
            raise ModelLoadError(
                f"Expected {str(self.model_path)!r} to have one output or one named {wanted!r}, "
                f"got {sorted(outputs)!r}."
            )
        details = outputs[name]
        if len(details["shape"]) != 2:
            raise ModelLoadError(
                f"Expected output {name!r} of {str(self.model_path)!r} to be [N, classes], "
                f"got shape {list(details['shape'])!r}."
            )
        return name, details

    def _to_input(self, batch: np.ndarray) -> np.ndarray:
        dtype = np.dtype(self._input["dtype"])
        if dtype == np.uint8:
            scale, zero_point = self._input.get("quantization", (0.0, 0))
            if scale:
                return np.clip(np.round(batch / scale + zero_point), 0, 255).astype(np.uint8)
            return np.clip(np.round(batch), 0, 255).astype(np.uint8)
        return batch.astype(dtype, copy=False)

    def _from_output(self, values: np.ndarray) -> np.ndarray:
        scale, zero_point = self._output.get("quantization", (0.0, 0))
        if np.issubdtype(values.dtype, np.integer) and scale:
            return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)
        return values.astype(np.float32, copy=True)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on a float32 batch ``[N, H, W, 3]``; returns float32 ``[N, classes]``."""
        batch = np.asarray(batch, dtype=np.float32)
        spec = self.input_spec
        expected = (spec.height, spec.width, spec.channels)
        if batch.ndim != 4 or batch.shape[1:] != expected or batch.shape[0] < 1:
            raise ValueError(
                f"Expected a batch shaped [N, {', '.join(map(str, expected))}], got {batch.shape!r}."
            )
        tensor = np.ascontiguousarray(self._to_input(batch))
        if not self._dynamic_batch and tensor.shape[0] != self._batch:
            if self._batch != 1:
                raise ValueError(
                    f"Expected a batch of {self._batch} for this fixed-batch model, got {tensor.shape[0]}."
                )
            return np.concatenate([self._invoke(tensor[i : i + 1]) for i in range(tensor.shape[0])])
        return self._invoke(tensor)

    def _invoke(self, tensor: np.ndarray) -> np.ndarray:
        with self._lock:
            if tensor.shape[0] != self._batch:
                self._interpreter.resize_tensor_input(self._input["index"], list(tensor.shape), strict=True)
                self._interpreter.allocate_tensors()
                self._batch = tensor.shape[0]
            self._interpreter.set_tensor(self._input["index"], tensor)
            self._interpreter.invoke()
            values = self._interpreter.get_tensor(self._output["index"])
            return self._from_output(values)

    def __repr__(self) -> str:
        return (
            f"LiteRTBackend({str(self.model_path)!r}, {self.input_spec!r}, {self.output_name!r}, "
            f"threads={self.num_threads})"
        )
