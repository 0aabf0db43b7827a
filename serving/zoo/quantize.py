"""Full-integer int8 LiteRT models (float input and output) kept only behind an accuracy guard.

``quantize_int8`` calibrates the SavedModel's activation ranges on photographs prepared exactly as the server
prepares them (``serving.preprocess``), quantizes weights and activations to int8 (per-channel weights), and
grades a held-out set with both the SavedModel and the int8 model. The guard: grade agreement ≥ 99 %,
referable-vs-not agreement ≥ 99.5 %, and optionally a largest probability difference.

When the fully quantized model misses the guard, float "islands" are tried first: the classifier tail
(every layer after the last convolution: pooling, dense layers, softmax; almost free), then also a run of the
first layers (the input end, whose error travels through the whole network) growing 1, 2, 4, … layers and
bisected down to the fewest. An island costs one dequantize/quantize pair; scattered float layers cost a pair
each and break XNNPACK's int8 chains. Only when no island meets the guard are layers ranked by quantization
error with TensorFlow Lite's quantization debugger (``tf.lite.experimental.QuantizationDebugger`` run on
calibration photos: RMSE of each layer's int8 output against its float output, in int8 steps, TF's selective
quantization recipe) and the worst kept in float (``denylisted_nodes``), doubling their number until the guard
holds, then bisecting down to the fewest. On the default MobileNet every Relu6 layer shows the same error
(≈ 0.25 step: rounding noise), so that ranking picks scattered layers (13 of them: 0.66× fp32). No mix
meeting the guard → :class:`GuardError`, and nothing is written. The result and its figures go to
``model.int8.tflite`` and ``model.int8.tflite.json`` (:class:`QuantizationReport`), with every held-out photo
graded differently and the float model's own margin on it (top-1 − top-2 probability: a near-tie flips on any
rounding).

The guard grades 1000 held-out photos by default: on 200, chance decides near the bar (the MobileNet with its
tail in float agreed on 199/200 grades there but on 97.7 % of 1000 others).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from serving.cpu_features import this_cpu
from serving.metadata import ModelMetadata

__all__ = [
    "DEFAULT_CALIBRATION_SAMPLES",
    "DEFAULT_CHECK_SAMPLES",
    "Agreement",
    "Guard",
    "GuardError",
    "QuantizationReport",
    "agreement",
    "photos_from_dir",
    "quantize_int8",
    "synthetic_photos",
]

#: Synthetic calibration photos when the user gives none.
DEFAULT_CALIBRATION_SAMPLES = 100
#: Held-out photos the guard grades.
DEFAULT_CHECK_SAMPLES = 1000
#: Calibration photos the quantization debugger runs to rank the layers.
DEBUG_SAMPLES = 16
#: int8 ÷ fp32 time above which the conversion says int8 does not pay on this CPU.
PAYS_BELOW = 0.9
#: Seed offset of the held-out synthetic photos: never the calibration ones.
_CHECK_SEED_OFFSET = 1_000_003
#: Image file suffixes read from a calibration or check folder.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class GuardError(RuntimeError):
    """No mix of int8 and float layers meets the accuracy guard."""


@dataclass(frozen=True, kw_only=True)
class Guard:
    """What an int8 model must achieve against the float model on the held-out photos."""

    min_grade_agreement: float = 0.99
    min_referable_agreement: float = 0.995
    #: Largest allowed |Δp| over all photos and classes; ``None`` = reported only.
    max_abs_diff: float | None = None

    def describe(self) -> str:
        """E.g. ``grades ≥ 99%, referable ≥ 99.5%``."""
        text = f"grades ≥ {self.min_grade_agreement:.1%}, referable ≥ {self.min_referable_agreement:.1%}"
        return text + (f", max |Δp| ≤ {self.max_abs_diff:g}" if self.max_abs_diff is not None else "")


@dataclass(frozen=True, kw_only=True)
class Agreement:
    """How closely a candidate reproduces the float model on the held-out photos."""

    samples: int
    grade_agreement: float
    referable_agreement: float
    max_abs_diff: float

    def meets(self, guard: Guard) -> bool:
        """Whether this agreement satisfies ``guard`` (never with NaN or infinite outputs)."""
        return (
            np.isfinite(self.max_abs_diff)
            and self.grade_agreement >= guard.min_grade_agreement
            and self.referable_agreement >= guard.min_referable_agreement
            and (guard.max_abs_diff is None or self.max_abs_diff <= guard.max_abs_diff)
        )

    def describe(self) -> str:
        """E.g. ``grades 199/200, referable 200/200, max |Δp| 0.031``."""
        return (
            f"grades {round(self.grade_agreement * self.samples)}/{self.samples}, "
            f"referable {round(self.referable_agreement * self.samples)}/{self.samples}, "
            f"max |Δp| {self.max_abs_diff:.3g}"
        )


def agreement(reference: np.ndarray, candidate: np.ndarray, *, referable_min_grade: int) -> Agreement:
    """Compare two ``[N, classes]`` probability arrays: equal grades, equal referable calls, largest |Δp|."""
    if reference.shape != candidate.shape:
        raise ValueError(f"Expected outputs shaped {reference.shape!r}, got {candidate.shape!r}.")
    if not np.all(np.isfinite(candidate)):
        return Agreement(
            samples=len(reference), grade_agreement=0.0, referable_agreement=0.0, max_abs_diff=np.inf
        )
    grades, other = reference.argmax(axis=1), candidate.argmax(axis=1)
    return Agreement(
        samples=len(reference),
        grade_agreement=float(np.mean(grades == other)),
        referable_agreement=float(np.mean((grades >= referable_min_grade) == (other >= referable_min_grade))),
        max_abs_diff=float(np.max(np.abs(reference - candidate))),
    )


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One candidate of the search: which layers stayed float, and what it achieved."""

    #: ``int8`` (every layer), ``islands`` (the first ``head_layers`` layers and the classifier tail) or
    #: ``ranked`` (the ``float_layers`` worst layers by the debugger's error).
    strategy: str
    float_layers: int
    head_layers: int = 0
    grade_agreement: float
    referable_agreement: float
    max_abs_diff: float
    passed: bool


@dataclass(frozen=True, kw_only=True)
class QuantizationReport:
    """What ``model.int8.tflite`` is, how it was made and how well it agrees (``model.int8.tflite.json``)."""

    tflite: str
    source: str
    quantize: str = "int8"
    scheme: str = "full-integer static, per-channel weights, float input/output"
    calibration: str
    calibration_samples: int
    check: str
    check_samples: int
    guard: dict[str, Any]
    grade_agreement: float
    referable_agreement: float
    max_abs_diff: float
    #: Output tensors of the layers kept in float, worst quantization error first (empty = all int8).
    float_layers: list[str] = field(default_factory=list)
    #: Layers the debugger ranked (the most that could have been kept in float).
    ranked_layers: int = 0
    #: How the float layers were chosen: ``int8`` (none), ``islands`` (the ``head_float_layers`` first layers
    #: and the ``tail_float_layers`` layers after the last convolution) or ``ranked`` (the debugger's error).
    search: str = "int8"
    head_float_layers: int = 0
    tail_float_layers: int = 0
    #: Held-out photos graded differently: index, float and int8 grade, the float model's top-1 − top-2.
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    tflite_bytes: int
    fp32_tflite_bytes: int
    #: Batch-1 LiteRT time, median of interleaved calls in one process (ms), and int8 / fp32.
    int8_ms: float
    fp32_ms: float
    speed_ratio: float
    #: The CPU the times were taken on (``serving.cpu_features``): int8 pays only with int8 dot products.
    cpu: dict[str, Any] = field(default_factory=dict)
    passed: bool = True
    convert_seconds: float
    created: str
    tensorflow_version: str

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)

    def summary(self) -> str:
        """One line with the agreement, the float-kept layers and the speed."""
        kept = f"{len(self.float_layers)} layer(s) kept in float" if self.float_layers else "all layers int8"
        n = self.check_samples
        return (
            f"{self.tflite} {self.tflite_bytes / 1e6:.1f} MB (int8, {kept}): "
            f"grades {round(self.grade_agreement * n)}/{n}, "
            f"referable {round(self.referable_agreement * n)}/{n}, "
            f"max |Δp| {self.max_abs_diff:.3g}; {self.int8_ms:.2f} ms vs fp32 {self.fp32_ms:.2f} ms "
            f"({self.speed_ratio:.2f}×)"
        )

    def speed_note(self) -> str | None:
        """A sentence when int8 is not clearly faster than fp32 on the CPU it was timed on, else ``None``."""
        if self.speed_ratio <= PAYS_BELOW:
            return None
        dot = ", ".join(self.cpu.get("int8_dot", ())) or "none"
        return (
            f"int8 is {self.speed_ratio:.2f}× fp32's time on this CPU ({self.cpu.get('brand', 'unknown')}, "
            f"{self.cpu.get('vector') or 'unknown vector unit'}, int8 dot product: {dot}): it saves memory "
            f"({self.tflite_bytes / 1e6:.1f} vs {self.fp32_tflite_bytes / 1e6:.1f} MB) but not time here; it "
            "pays on CPUs with AVX512-VNNI, AVX-VNNI, AMX or Arm's dot product (every Graviton)."
        )


def synthetic_photos(metadata: ModelMetadata, *, samples: int, seed: int) -> np.ndarray:
    """``samples`` synthetic fundus photos of every grade, preprocessed as the server would (float32)."""
    from serving.preprocess import preprocess_image
    from serving.zoo.synthetic import make_fundus_image

    if samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}.")
    images = [make_fundus_image(i % 5, size=384, seed=seed + i) for i in range(samples)]
    return np.stack([preprocess_image(image, metadata) for image in images]).astype(np.float32)


def photos_from_dir(
    directory: str | os.PathLike[str], metadata: ModelMetadata, *, limit: int | None = None
) -> np.ndarray:
    """The photos in ``directory`` (sorted by name), decoded and preprocessed as the server would."""
    from serving.imaging import decode_image
    from serving.limits import Limits
    from serving.preprocess import preprocess_image

    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"Expected a folder of photos at {str(folder)!r}, but it does not exist.")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if limit is not None:
        files = files[:limit]
    if not files:
        raise ValueError(f"Expected photos ({', '.join(IMAGE_SUFFIXES)}) in {str(folder)!r}, found none.")
    # The server's own path (``DRModel._images_to_tensor``): decode within its limits, reduced while decoding
    # to the input size, then crop, resize and scale.
    limits = Limits.from_env()
    arrays = []
    for path in files:
        try:
            image = decode_image(path.read_bytes(), limits=limits, downscale_to=metadata.input_size)
            arrays.append(preprocess_image(image, metadata))
        except ValueError as exc:
            raise ValueError(f"Could not prepare {str(path)!r} as a photo: {exc}") from exc
    return np.stack(arrays).astype(np.float32)


def check_seed(seed: int) -> int:
    """Seed of the held-out synthetic photos for a conversion seeded ``seed`` (disjoint from calibration)."""
    return seed + _CHECK_SEED_OFFSET


def _predict_all(
    predict: Callable[[np.ndarray], np.ndarray], photos: np.ndarray, batch: int = 16
) -> np.ndarray:
    return np.concatenate([predict(photos[i : i + batch]) for i in range(0, len(photos), batch)])


#: Convolutions: the classifier tail is every quantized layer after the last of these.
_CONVOLUTIONS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "CONV_3D"})
#: Disagreements listed in the report, at most.
_MAX_DISAGREEMENTS = 50


@dataclass(frozen=True, kw_only=True)
class _Layers:
    """The quantized layers' output tensors: in graph order, by error, and the classifier tail."""

    order: list[str]
    ranked: list[str]
    tail: list[str]


def _layers(debugger: Any) -> _Layers:
    """Run the debugger once: the layers in graph order, largest RMSE / int8 step first, and the tail."""
    debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    rows = sorted(csv.DictReader(io.StringIO(dump.getvalue())), key=lambda row: int(row["tensor_idx"]))

    def error(row: dict[str, str]) -> float:
        scale = float(row["scale"])
        value = float(row["mean_squared_error"]) ** 0.5 / scale if scale else 0.0
        return value if np.isfinite(value) else 0.0

    order = list(dict.fromkeys(row["tensor_name"] for row in rows))
    ranked = list(dict.fromkeys(row["tensor_name"] for row in sorted(rows, key=error, reverse=True)))
    convolutions = [index for index, row in enumerate(rows) if row["op_name"] in _CONVOLUTIONS]
    after = rows[convolutions[-1] + 1 :] if convolutions else []
    tail = list(dict.fromkeys(row["tensor_name"] for row in after))
    return _Layers(order=order, ranked=ranked, tail=tail)


def _debugger(source: Path, signature: str, calibration: np.ndarray) -> tuple[bytes, Any]:
    """The float LiteRT model and a quantization debugger calibrated on ``calibration``."""
    import tensorflow as tf

    def converter() -> Any:
        made = tf.lite.TFLiteConverter.from_saved_model(str(source), signature_keys=[signature])
        made.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return made

    float_content = converter().convert()
    quantizing = converter()
    quantizing.optimizations = [tf.lite.Optimize.DEFAULT]
    quantizing.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
    # The debugger runs TF's own tf.lite.Interpreter (deprecated in favour of ai_edge_litert) on its debug
    # models; serving and the guard use ai_edge_litert.
    warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated")
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=quantizing,
        debug_dataset=lambda: ([calibration[i : i + 1]] for i in range(min(DEBUG_SAMPLES, len(calibration)))),
    )
    return float_content, debugger


def _smallest_passing(sizes: list[int], passes: Callable[[int], bool]) -> int | None:
    """The first of the increasing ``sizes`` that passes, then bisected down against the last that failed."""
    low: int | None = None
    for size in sizes:
        if passes(size):
            high = size
            break
        low = size
    else:
        return None
    floor = (sizes[0] - 1) if low is None else low
    while high - floor > 1:
        middle = (floor + high) // 2
        if passes(middle):
            high = middle
        else:
            floor = middle
    return high


def disagreements(reference: np.ndarray, candidate: np.ndarray) -> list[dict[str, Any]]:
    """Photos graded differently: index, float and int8 grade, the float model's top-1 − top-2 margin."""
    ordered = np.sort(reference, axis=1)
    margins = ordered[:, -1] - ordered[:, -2]
    grades, other = reference.argmax(axis=1), candidate.argmax(axis=1)
    return [
        {
            "photo": int(index),
            "float_grade": int(grades[index]),
            "int8_grade": int(other[index]),
            "float_margin": round(float(margins[index]), 4),
        }
        for index in np.flatnonzero(grades != other)
    ]


def _counts_to_try(total: int) -> Iterator[int]:
    """1, 2, 4, … float layers, ending with ``total``."""
    count = 1
    while count < total:
        yield count
        count *= 2
    if total:
        yield total


def interleaved_ms(
    first: Callable[[], Any], second: Callable[[], Any], *, rounds: int = 20, warmup: int = 3
) -> tuple[float, float]:
    """Median times (ms) of two calls made alternately in this process, so both see the same machine."""
    for _ in range(warmup):
        first()
        second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for index, call in enumerate((first, second)):
            started = time.perf_counter()
            call()
            times[index].append((time.perf_counter() - started) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def quantize_int8(
    model_dir: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    calibration: np.ndarray,
    calibration_label: str,
    check: np.ndarray,
    check_label: str,
    guard: Guard | None = None,
    max_float_layers: int | None = None,
    log: Callable[[str], None] | None = None,
) -> QuantizationReport:
    """Quantize ``model_dir``'s SavedModel to int8 at ``out`` (default ``model_dir/model.int8.tflite``).

    ``calibration`` and ``check`` are preprocessed photos (float32 ``[N, H, W, 3]``), disjoint.

    Raises:
        GuardError: no mix of int8 and at most ``max_float_layers`` float layers meets ``guard``; nothing
            is written then.
    """
    import tensorflow as tf

    from serving.backends.litert import INT8_TFLITE_FILENAME, LiteRTBackend
    from serving.backends.savedmodel import SavedModelBackend

    guard = guard or Guard()
    say = log or (lambda _message: None)
    source = Path(model_dir)
    if not (source / "saved_model.pb").is_file():
        raise FileNotFoundError(f"Expected a SavedModel (saved_model.pb) in {str(source)!r}, found none.")
    if len(calibration) < 1 or len(check) < 1:
        raise ValueError("Expected at least one calibration photo and one held-out photo.")
    metadata = ModelMetadata.load(source) or ModelMetadata()
    target = Path(out) if out is not None else source / INT8_TFLITE_FILENAME
    started = time.perf_counter()

    say(f"grading {len(check)} held-out photos with the SavedModel")
    reference = _predict_all(SavedModelBackend(source, metadata=metadata).predict, check)

    say(f"calibrating on {len(calibration)} photos ({calibration_label})")
    float_content, debugger = _debugger(source, metadata.signature, calibration)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".quantize.", dir=target.parent))
    try:
        attempts: list[Attempt] = []

        def candidate(float_layers: list[str], photos: np.ndarray) -> tuple[bytes, np.ndarray]:
            options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_layers or None)
            debugger.options = options
            content = debugger.get_nondebug_quantized_model()
            staged = staging / "candidate.tflite"
            staged.write_bytes(content)
            return content, _predict_all(LiteRTBackend(staged, metadata=metadata).predict, photos)

        outputs_of: dict[tuple[str, ...], tuple[bytes, np.ndarray, Agreement]] = {}

        def attempt(float_layers: list[str], strategy: str, head: int = 0) -> bool:
            key = tuple(float_layers)
            if key not in outputs_of:
                content, outputs = candidate(float_layers, check)
                found = agreement(reference, outputs, referable_min_grade=metadata.referable_min_grade)
                # Only a passing candidate's file is kept (VGG19's weigh tens of MB).
                outputs_of[key] = (content if found.meets(guard) else b"", outputs, found)
                attempts.append(
                    Attempt(
                        strategy=strategy,
                        float_layers=len(float_layers),
                        head_layers=head,
                        passed=found.meets(guard),
                        **_figures(found),
                    )
                )
                where = f", first {head} + tail" if strategy == "islands" else ""
                say(f"{len(float_layers)} float layer(s) ({strategy}{where}): {found.describe()}")
            return outputs_of[key][2].meets(guard)

        chosen: tuple[list[str], str, int] | None = ([], "int8", 0) if attempt([], "int8") else None
        layers = _Layers(order=[], ranked=[], tail=[])
        if chosen is None and max_float_layers != 0:
            say("ordering and ranking layers (TF Lite quantization debugger)")
            layers = _layers(debugger)
            # At least one layer stays int8: with every layer float the "int8" model is the fp32 one (and the
            # debugger, finding nothing quantized to verify, refuses to build it).
            most = max(0, len(layers.order) - 1)
            limit = most if max_float_layers is None else min(max_float_layers, most)

            def island(head: int) -> list[str]:
                return list(dict.fromkeys(layers.order[:head] + layers.tail))

            longest = max((h for h in range(len(layers.order)) if len(island(h)) <= limit), default=-1)
            heads = [h for h in (0, *_counts_to_try(max(longest, 0))) if h or (layers.tail and longest >= 0)]
            head = _smallest_passing(heads, lambda h: attempt(island(h), "islands", h)) if heads else None
            if head is not None:
                chosen = (island(head), "islands", head)
            else:
                count = _smallest_passing(
                    list(_counts_to_try(limit)), lambda n: attempt(layers.ranked[:n], "ranked")
                )
                if count is not None:
                    chosen = (layers.ranked[:count], "ranked", 0)
        if chosen is None:
            best = max(attempts, key=lambda a: (a.passed, a.grade_agreement, a.referable_agreement))
            raise GuardError(
                f"No mix of int8 and float layers meets the accuracy guard ({guard.describe()}) on "
                f"{len(check)} held-out photos: the best, with {best.float_layers} of "
                f"{len(layers.order)} layer(s) in float, agreed on {best.grade_agreement:.1%} of grades and "
                f"{best.referable_agreement:.1%} of referable calls (max |Δp| {best.max_abs_diff:.3g})."
            )
        float_layers, search, head = chosen
        content, outputs, found = outputs_of[tuple(float_layers)]
        staged = staging / target.name
        staged.write_bytes(content)
        fp32_staged = staging / "fp32.tflite"
        fp32_staged.write_bytes(float_content)
        one = check[:1]
        int8_backend = LiteRTBackend(staged, metadata=metadata)
        fp32_backend = LiteRTBackend(fp32_staged, metadata=metadata)
        int8_ms, fp32_ms = interleaved_ms(
            lambda: int8_backend.predict(one), lambda: fp32_backend.predict(one)
        )
        report = QuantizationReport(
            tflite=target.name,
            source=str(source),
            calibration=calibration_label,
            calibration_samples=len(calibration),
            check=check_label,
            check_samples=len(check),
            guard=asdict(guard),
            **_figures(found),
            float_layers=list(float_layers),
            ranked_layers=len(layers.ranked),
            search=search,
            head_float_layers=head,
            tail_float_layers=len(layers.tail) if search == "islands" else 0,
            disagreements=disagreements(reference, outputs)[:_MAX_DISAGREEMENTS],
            attempts=[asdict(a) for a in attempts],
            tflite_bytes=len(content),
            fp32_tflite_bytes=len(float_content),
            int8_ms=round(int8_ms, 3),
            fp32_ms=round(fp32_ms, 3),
            speed_ratio=round(int8_ms / fp32_ms, 3),
            cpu=this_cpu().as_dict(),
            convert_seconds=round(time.perf_counter() - started, 1),
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            tensorflow_version=str(tf.__version__),
        )
        os.replace(staged, target)
        report_file = target.with_name(target.name + ".json")
        report_file.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _figures(found: Agreement) -> dict[str, float]:
    return {
        "grade_agreement": found.grade_agreement,
        "referable_agreement": found.referable_agreement,
        "max_abs_diff": found.max_abs_diff,
    }
