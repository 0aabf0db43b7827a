"""TensorFlow SavedModel backend: calls the serving signature's concrete function (never ``model.predict``).

The signature is introspected, not assumed: the input tensor's name, ``[N, H, W, C]`` shape and dtype, and the
output tensor's name are read from the SavedModel, so the published study's Keras SavedModels (input
``input_1``, output ``dense_2``) and 299×299 models load without code changes. ``dr_model.json``, when
present, names the signature, input and output to use; a static size in the signature must agree with it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from serving.backends.base import InputSpec
from serving.cpus import schedulable_cpus, thread_count
from serving.errors import ModelLoadError
from serving.metadata import ModelMetadata

__all__ = ["SavedModelBackend", "bf16_math_in_effect", "relative_error", "size_thread_pools"]

logger = logging.getLogger(__name__)

_DTYPES = {"float32", "float16", "uint8"}

#: Largest relative error of an fp32 convolution that still counts as fp32 math. This probe's error is about
#: 1e-6 in fp32 and 2.5e-3 with its inputs rounded to bfloat16 (what oneDNN's bf16 math mode does).
BF16_PROBE_ERROR = 1e-4

#: The variables TensorFlow reads for its thread pools when they are not set through ``tf.config.threading``.
THREAD_VARIABLES = {"intra": "TF_NUM_INTRAOP_THREADS", "inter": "TF_NUM_INTEROP_THREADS"}


class SavedModelBackend:
    """A TensorFlow SavedModel served through its signature function."""

    name = "savedmodel"

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        *,
        metadata: ModelMetadata | None = None,
        precision: str = "fp32",
        num_threads: int | None = None,
    ) -> None:
        cpus = thread_count(num_threads)
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"Expected precision 'fp32' or 'bf16' for a SavedModel, got {precision!r}.")
        self.model_dir = Path(model_dir)
        if not self.model_dir.is_dir():
            raise ModelLoadError(
                f"Expected a model directory at {str(self.model_dir)!r}, but it does not exist."
            )
        if not (self.model_dir / "saved_model.pb").is_file():
            raise ModelLoadError(
                f"Expected a TensorFlow SavedModel (saved_model.pb) in {str(self.model_dir)!r}, found none."
            )
        if precision == "bf16":
            # oneDNN's default floating-point math mode: its fp32 convolutions and matmuls may compute in
            # bfloat16 (on x86: AMX only), keeping fp32 tensors. oneDNN reads it when it first builds a
            # primitive, so it applies to the whole process and must be set before TensorFlow runs anything.
            # (Grappler's auto_mixed_precision_onednn_bfloat16 rewrite was faster on VGG19 but missed the
            # accuracy guard: 197/200 grades.)
            os.environ["ONEDNN_DEFAULT_FPMATH_MODE"] = "BF16"
        import tensorflow as tf

        self._tf = tf
        #: Threads one call may use (TensorFlow's intra-op pool): ``num_threads``, else ``available_cpus()``.
        self.num_threads = size_thread_pools(tf, cpus)
        if precision == "bf16" and not bf16_math_in_effect(tf):
            logger.warning(
                "Precision 'bf16' was asked for, but this CPU keeps fp32 math: on x86, oneDNN computes fp32 "
                "convolutions in bfloat16 only with AMX (Graviton is not measured). "
                'Serving in fp32; dr_model_info says precision="fp32".'
            )
            precision = "fp32"
        #: What the model computes in: ``bf16`` only where oneDNN's bfloat16 math mode (a process-wide
        #: setting) really changes the arithmetic, else ``fp32`` (``bf16_math_in_effect``).
        self.precision = precision
        try:
            self._model = tf.saved_model.load(str(self.model_dir))
        except Exception as exc:  # TF raises many types for a corrupt model; all mean the same here
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(
                f"Expected a loadable SavedModel in {str(self.model_dir)!r}, got an error: {first_line[:300]}"
            ) from exc
        signature = metadata.signature if metadata is not None else "serving_default"
        signatures = dict(getattr(self._model, "signatures", {}) or {})
        if signature not in signatures:
            raise ModelLoadError(
                f"Expected a signature named {signature!r} in {str(self.model_dir)!r}, "
                f"got {sorted(signatures)!r}."
            )
        self.signature = signature
        self._function = signatures[signature]
        self.input_spec, self._input_dtype = self._introspect_input(metadata)
        self.output_name, self.num_classes = self._introspect_output(metadata)

    def _introspect_input(self, metadata: ModelMetadata | None) -> tuple[InputSpec, Any]:
        args, kwargs = self._function.structured_input_signature
        specs = dict(kwargs)
        if args or len(specs) != 1:
            where = f"signature {self.signature!r} of {str(self.model_dir)!r}"
            raise ModelLoadError(
                f"Expected {where} to take exactly one named image input, "
                f"got {len(args) + len(specs)} inputs ({sorted(specs)!r})."
            )
        (input_name, spec) = next(iter(specs.items()))
        shape = spec.shape.as_list() if spec.shape.rank is not None else None
        dtype = spec.dtype.name
        if shape is None or len(shape) != 4 or dtype not in _DTYPES or shape[3] not in (None, 3):
            raise ModelLoadError(
                f"Expected the input of signature {self.signature!r} to be a 4-D image tensor "
                f"[N, H, W, 3] of {sorted(_DTYPES)}, got {input_name!r} shaped {shape!r} of {dtype}."
            )
        height, width = shape[1], shape[2]
        if metadata is not None:
            if metadata.input.name != input_name:
                logger.info(
                    "Signature input is named %r, not %r as dr_model.json says; using %r.",
                    input_name,
                    metadata.input.name,
                    input_name,
                )
            for axis, found, wanted in (
                ("height", height, metadata.input.height),
                ("width", width, metadata.input.width),
            ):
                if found is not None and found != wanted:
                    raise ModelLoadError(
                        f"Expected the signature's input {axis} to be {wanted} "
                        f"as dr_model.json says, got {found}."
                    )
            height, width = metadata.input.height, metadata.input.width
        elif height is None or width is None:
            logger.info(
                "Signature input %r has no static size and there is no dr_model.json; using 224x224.",
                input_name,
            )
            height, width = height or 224, width or 224
        return InputSpec(name=input_name, height=height, width=width, channels=3, dtype=dtype), spec.dtype

    def _introspect_output(self, metadata: ModelMetadata | None) -> tuple[str, int | None]:
        outputs = self._function.structured_outputs
        if not isinstance(outputs, dict) or not outputs:
            raise ModelLoadError(
                f"Expected signature {self.signature!r} to return named outputs, "
                f"got {type(outputs).__name__}."
            )
        wanted = metadata.output.name if metadata is not None else "probabilities"
        if wanted in outputs:
            output_name = wanted
        elif len(outputs) == 1:
            output_name = next(iter(outputs))
            if metadata is not None:
                logger.info(
                    "Signature output is named %r, not %r as dr_model.json says; using it.",
                    output_name,
                    wanted,
                )
        else:
            raise ModelLoadError(
                f"Expected signature {self.signature!r} to have one output or one named {wanted!r}, "
                f"got {sorted(outputs)!r}."
            )
        spec = outputs[output_name]
        shape = spec.shape.as_list() if spec.shape.rank is not None else None
        if shape is None or len(shape) != 2:
            raise ModelLoadError(
                f"Expected output {output_name!r} of signature {self.signature!r} "
                f"to be [N, classes], got {shape!r}."
            )
        num_classes = shape[1]
        if metadata is not None and num_classes is not None and num_classes != metadata.num_classes:
            raise ModelLoadError(
                f"Expected output {output_name!r} to have {metadata.num_classes} classes "
                f"as dr_model.json says, got {num_classes}."
            )
        return output_name, num_classes

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Run the signature on a float32 batch ``[N, H, W, 3]``; returns float32 ``[N, classes]``."""
        tensor = self._tf.convert_to_tensor(np.asarray(batch, dtype=np.float32))
        if self._input_dtype != self._tf.float32:
            tensor = self._tf.cast(tensor, self._input_dtype)
        outputs = self._function(**{self.input_spec.name: tensor})
        return np.asarray(outputs[self.output_name].numpy(), dtype=np.float32)

    def __repr__(self) -> str:
        where = str(self.model_dir)
        return f"SavedModelBackend({where!r}, {self.signature!r}, {self.input_spec!r}, {self.output_name!r})"


def bf16_math_in_effect(tf: Any) -> bool:
    """Whether this process's fp32 convolutions run in bfloat16: one small convolution against float64.

    ``ONEDNN_DEFAULT_FPMATH_MODE=BF16`` is accepted everywhere but used only where oneDNN has a kernel for it:
    on x86 only with AMX (``jcp.is_bf32 = everyone_is(f32, ...) && ... && isa == avx512_core_amx`` in
    uxlfoundation/oneDNN ``src/cpu/x64/jit_brgemm_conv_utils.cpp``); an AMD EPYC with AVX-512 BF16 but no AMX
    runs ``brg_conv_fwd:avx512_core`` with ``attr-fpmath:bf16`` (``ONEDNN_VERBOSE=1``), bit for bit fp32.
    So the answer is measured, not read from CPU flags (about 40 ms, once).
    """
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((1, 28, 28, 64)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 64, 64)).astype(np.float32)
    got = tf.nn.conv2d(pixels, kernel, 1, "SAME").numpy()
    exact = tf.nn.conv2d(pixels.astype(np.float64), kernel.astype(np.float64), 1, "SAME").numpy()
    return relative_error(got, exact) > BF16_PROBE_ERROR


def relative_error(got: np.ndarray, exact: np.ndarray) -> float:
    """Largest absolute difference over the largest absolute exact value."""
    return float(np.abs(got - exact).max() / np.abs(exact).max())


def size_thread_pools(tf: Any, cpus: int) -> int:
    """Size TensorFlow's intra- and inter-op thread pools to ``cpus``; returns the intra-op threads in effect.

    TensorFlow sizes both pools by the CPUs in the affinity mask and ignores a cgroup CPU quota, so without
    this a pod limited to 1 CPU on a 4-CPU node runs 4 threads per op and 4 between ops. A pool whose variable
    (``THREAD_VARIABLES``) is set is left to it. The pools are process-wide and fixed once TensorFlow has run
    an op; a later call (a second model in the same process) leaves them as they are.
    """
    threading = tf.config.threading
    chosen = {}
    for pool, variable in THREAD_VARIABLES.items():
        raw = os.environ.get(variable, "").strip()
        chosen[pool] = int(raw) if raw.isdigit() and int(raw) > 0 else cpus
        if raw:
            continue
        setter = getattr(threading, f"set_{pool}_op_parallelism_threads")
        try:
            setter(cpus)
        except RuntimeError:  # TensorFlow already runs: its pools exist with the size they were given
            current = getattr(threading, f"get_{pool}_op_parallelism_threads")()
            chosen[pool] = current or schedulable_cpus()
            if current not in (0, cpus):
                logger.info("TensorFlow's %s-op pool already has %d threads; keeping it.", pool, current)
    return chosen["intra"]
