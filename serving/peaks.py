"""The machine's measured peaks: fp32 matmul (TensorFlow, numpy), a LiteRT fully connected layer (fp32, int8).

``dr-serving bench`` divides each model's achieved rate by these (FLOPs per image from
``serving.zoo.architectures``), so "share of peak" says how far a backend is from what this CPU can do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

from serving.timing import time_calls

__all__ = ["litert_peak_gops", "matmul_peak_gflops"]

_MATMUL_SIZE = 2048


def matmul_peak_gflops(*, size: int = _MATMUL_SIZE, repeats: int = 10) -> dict[str, float]:
    """Best matmul rates, GFLOP/s: TensorFlow fp32 and bf16 in process, numpy fp32 with OpenBLAS tuned."""
    import tensorflow as tf

    a = tf.random.uniform((size, size), dtype=tf.float32)
    b = tf.random.uniform((size, size), dtype=tf.float32)
    best_ms = min(time_calls(lambda: tf.linalg.matmul(a, b).numpy(), n=repeats, warmup=1))
    rates = {"tensorflow": 2 * size**3 / (best_ms / 1e3) / 1e9}
    a16, b16 = tf.cast(a, tf.bfloat16), tf.cast(b, tf.bfloat16)
    best16_ms = min(time_calls(lambda: tf.linalg.matmul(a16, b16).numpy(), n=repeats, warmup=1))
    rates["tensorflow_bf16"] = 2 * size**3 / (best16_ms / 1e3) / 1e9
    code = "\n".join(
        [
            "import time, numpy as np",
            f"a = np.random.rand({size}, {size}).astype(np.float32); b = a.copy(); a @ b; best = 1e9",
            f"for _ in range({repeats}):",
            "    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)",
            f"print(2 * {size}**3 / best / 1e9)",
        ]
    )
    env = {**os.environ, "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "SkylakeX")}
    try:
        output = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True
        ).stdout
        rates["numpy"] = float(output.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        pass
    return rates


def litert_peak_gops(*, rows: int = 256, size: int = 1024, repeats: int = 20) -> dict[str, float]:
    """Best LiteRT (XNNPACK) rate of a ``rows × size`` by ``size × size`` fully connected layer, fp32/int8."""
    import keras
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from serving.cpus import available_cpus

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size,), batch_size=rows)
    model = keras.Model(inputs, keras.layers.Dense(size, use_bias=False)(inputs))
    sample = np.random.default_rng(0).uniform(-1, 1, (rows, size)).astype(np.float32)
    rates = {}
    for precision in ("fp32", "int8"):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if precision == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: iter([[sample]])
        with warnings.catch_warnings():
            # The converter asks for input statistics it then takes from the representative dataset.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
            content = converter.convert()
        interpreter = Interpreter(model_content=content, num_threads=available_cpus())
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], sample)
        best_ms = min(time_calls(interpreter.invoke, n=repeats, warmup=1))
        rates[precision] = 2 * rows * size * size / (best_ms / 1e3) / 1e9
    return rates
