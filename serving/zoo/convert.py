"""``dr-serving model convert``: SavedModel → LiteRT (``model.tflite``), accepted only if both agree.

The converter reads the exported SavedModel's serving signature (written by ``keras.export.ExportArchive``,
which keeps the weights; a Keras-3 model saved with plain ``tf.saved_model.save`` converts "successfully" into
a tiny file that outputs NaN). Two checks guard against such silent failures before the file is moved into
place:

- size: the ``.tflite`` must hold at least half of the float32 weight bytes (4 × parameters from
  ``dr_model.json``; 15 % when weights are quantized to int8), so dropped weights are caught;
- agreement: the SavedModel signature and the LiteRT interpreter grade the same synthetic fundus photographs;
  the largest absolute probability difference must stay within the tolerance, and every grade must match
  wherever the SavedModel's winning class leads the runner-up by more than twice that tolerance.

The figures are written to ``model.tflite.json`` beside the model (see :class:`ConversionReport`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from dr_cli.types import non_negative_float, non_negative_int, positive_int
from serving.metadata import ModelMetadata

__all__ = [
    "QUANTIZE_MODES",
    "REPORT_SUFFIX",
    "AgreementError",
    "ConversionReport",
    "compare",
    "convert_model",
    "register",
    "sample_batch",
]

#: ``none`` = float32 weights; ``dynamic`` = int8 weights with float activations (dynamic-range quantization);
#: ``int8`` = full-integer static quantization behind an accuracy guard (:mod:`serving.zoo.quantize`).
QUANTIZE_MODES = ("none", "dynamic", "int8")
#: The conversion report is written to ``<tflite file name><REPORT_SUFFIX>``.
REPORT_SUFFIX = ".json"
#: Default tolerance on the max |SavedModel − LiteRT| probability difference, per quantization mode.
DEFAULT_TOLERANCE = {"none": 1e-3, "dynamic": 0.1}
# Least .tflite size as a fraction of the SavedModel's variable bytes, per quantization mode.
_MIN_SIZE_RATIO = {"none": 0.5, "dynamic": 0.15}


class AgreementError(RuntimeError):
    """The converted model does not reproduce the SavedModel (dropped weights, NaN, or different answers)."""


@dataclass(frozen=True, kw_only=True)
class ConversionReport:
    """What a conversion produced and how closely it agrees with the SavedModel (``model.tflite.json``)."""

    tflite: str
    source: str
    signature: str
    quantize: str
    tflite_bytes: int
    savedmodel_variable_bytes: int
    samples: int
    seed: int
    max_abs_diff: float
    grade_agreement: float
    hard_disagreements: int
    tolerance: float
    outputs_vary: bool
    passed: bool
    convert_seconds: float
    created: str
    tensorflow_version: str

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)

    def summary(self) -> str:
        """One line, e.g. ``model.tflite 13.5 MB: max |Δp| 2.1e-06, grades 16/16 agree``."""
        agreed = round(self.grade_agreement * self.samples)
        return (
            f"{Path(self.tflite).name} {self.tflite_bytes / 1e6:.1f} MB ({self.quantize}): "
            f"max |Δp| {self.max_abs_diff:.2g} (tolerance {self.tolerance:g}), "
            f"grades {agreed}/{self.samples} agree"
        )


def sample_batch(metadata: ModelMetadata, *, samples: int = 16, seed: int = 0) -> np.ndarray:
    """Synthetic fundus photographs of every grade, preprocessed as the server would: float32 [N, H, W, 3]."""
    from serving.zoo.quantize import synthetic_photos

    return synthetic_photos(metadata, samples=samples, seed=seed)


def compare(reference: np.ndarray, candidate: np.ndarray, *, tolerance: float) -> tuple[float, float, int]:
    """Return (max |Δp|, share of equal grades, count of grades differing despite a clear lead)."""
    if reference.shape != candidate.shape:
        raise AgreementError(f"Expected outputs shaped {reference.shape!r}, got {candidate.shape!r}.")
    if not np.all(np.isfinite(candidate)):
        raise AgreementError("Expected finite probabilities from the converted model, got NaN or infinity.")
    max_abs_diff = float(np.max(np.abs(reference - candidate)))
    same = np.argmax(reference, axis=1) == np.argmax(candidate, axis=1)
    ordered = np.sort(reference, axis=1)
    margin = ordered[:, -1] - ordered[:, -2]
    hard = int(np.sum(~same & (margin > 2 * tolerance)))
    return max_abs_diff, float(np.mean(same)), hard


def _variable_bytes(model_dir: Path) -> int:
    return sum(p.stat().st_size for p in (model_dir / "variables").glob("*") if p.is_file())


def _convert_to_bytes(model_dir: Path, signature: str, quantize: str) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(model_dir), signature_keys=[signature])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def report_path(tflite: str | os.PathLike[str]) -> Path:
    """Where the conversion report of ``tflite`` lives."""
    path = Path(tflite)
    return path.with_name(path.name + REPORT_SUFFIX)


def convert_model(
    model_dir: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    quantize: str = "none",
    samples: int = 16,
    seed: int = 0,
    tolerance: float | None = None,
) -> ConversionReport:
    """Convert ``model_dir``'s SavedModel to LiteRT at ``out`` (default ``model_dir/model.tflite``), checked.

    Raises:
        AgreementError: the converted model is too small, outputs NaN, or disagrees with the SavedModel;
            nothing is written then.
    """
    from serving.backends.litert import TFLITE_FILENAME, LiteRTBackend
    from serving.backends.savedmodel import SavedModelBackend

    if quantize not in ("none", "dynamic"):
        raise ValueError(
            f"quantize must be one of ['none', 'dynamic'] (int8: serving.zoo.quantize), got {quantize!r}."
        )
    source = Path(model_dir)
    if not (source / "saved_model.pb").is_file():
        raise FileNotFoundError(f"Expected a SavedModel (saved_model.pb) in {str(source)!r}, found none.")
    metadata = ModelMetadata.load(source) or ModelMetadata()
    target = Path(out) if out is not None else source / TFLITE_FILENAME
    tolerance = DEFAULT_TOLERANCE[quantize] if tolerance is None else tolerance

    started = time.perf_counter()
    content = _convert_to_bytes(source, metadata.signature, quantize)
    convert_seconds = time.perf_counter() - started
    variable_bytes = _variable_bytes(source)
    # float32 weights: 4 bytes per parameter; without a count, half the variables (exports may store twice).
    weight_bytes = 4 * metadata.parameters if metadata.parameters else variable_bytes // 2
    least = int(_MIN_SIZE_RATIO[quantize] * weight_bytes)
    if len(content) < least:
        raise AgreementError(
            f"Expected the LiteRT model to hold the SavedModel's weights (at least {least:,} bytes), "
            f"got {len(content):,} bytes: the converter dropped the variables."
        )

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert.", dir=target.parent))
    try:
        staged = staging / target.name
        staged.write_bytes(content)
        batch = sample_batch(metadata, samples=samples, seed=seed)
        reference = SavedModelBackend(source, metadata=metadata).predict(batch)
        candidate = LiteRTBackend(staged, metadata=metadata).predict(batch)
        max_abs_diff, agreement, hard = compare(reference, candidate, tolerance=tolerance)
        report = ConversionReport(
            tflite=target.name,
            source=str(source),
            signature=metadata.signature,
            quantize=quantize,
            tflite_bytes=len(content),
            savedmodel_variable_bytes=variable_bytes,
            samples=samples,
            seed=seed,
            max_abs_diff=max_abs_diff,
            grade_agreement=agreement,
            hard_disagreements=hard,
            tolerance=tolerance,
            outputs_vary=bool(np.ptp(reference, axis=0).max() > 1e-4),
            passed=max_abs_diff <= tolerance and hard == 0,
            convert_seconds=round(convert_seconds, 3),
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            tensorflow_version=_tf_version(),
        )
        if not report.passed:
            raise AgreementError(
                f"Expected LiteRT to agree with the SavedModel within {tolerance:g}, got max |Δp| "
                f"{max_abs_diff:.3g} and {hard} clear grade disagreement(s) on {samples} sample images."
            )
        os.replace(staged, target)
        report_path(target).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _tf_version() -> str:
    import tensorflow as tf

    return str(tf.__version__)


def register(model_subparsers: argparse._SubParsersAction) -> None:
    """Add ``dr-serving model convert DIR [--out FILE] [--quantize {none,dynamic,int8}] …``."""
    from serving.zoo.quantize import DEFAULT_CALIBRATION_SAMPLES, DEFAULT_CHECK_SAMPLES

    parser = model_subparsers.add_parser(
        "convert",
        help="Convert a SavedModel to LiteRT (model.tflite, or model.int8.tflite) and check that both agree.",
        description=(
            "Convert DIR's SavedModel to a LiteRT model for the lite image, then run both on fundus photos "
            "and refuse the result unless they agree. Figures go to FILE.json. "
            "--quantize int8 makes model.int8.tflite: full-integer static quantization (int8 weights and "
            "activations, float input and output) calibrated on --calibration DIR (your photos, prepared as "
            "the server prepares them) or on --calibration-synthetic N synthetic photos, then graded against "
            "the SavedModel on --check-samples held-out photos: it must agree on >= 99% of grades and "
            ">= 99.5% of referable calls. If it does not, float islands are tried first (the classifier "
            "layers after the last convolution, then also the first 1, 2, 4, ... layers, as few as needed); "
            "then the layers with the largest quantization error (TF Lite quantization debugger), as few as "
            "needed; when no mix meets the guard, "
            "nothing is written and the command fails. --quantize dynamic (int8 weights, float activations) "
            "is kept because it is faster than fp32 for large convolutional models (VGG19, about 4x) though "
            "not faster than int8 there, and it is slower than fp32 for MobileNet: prefer int8. "
            "int8 is timed against fp32 on this CPU, which the report records; it pays only on CPUs with "
            "int8 dot products (AVX512-VNNI, AVX-VNNI, AMX, Arm's dot product), and a note says so when it "
            "did not pay here."
        ),
    )
    parser.add_argument("model_dir", type=Path, metavar="DIR", help="model directory (SavedModel)")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="LiteRT file to write (default: DIR/model.tflite; DIR/model.int8.tflite for int8)",
    )
    parser.add_argument(
        "--quantize",
        choices=QUANTIZE_MODES,
        default="none",
        help="none = float32; int8 = int8 weights and activations behind the accuracy guard; "
        "dynamic = int8 weights only (default: %(default)s)",
    )
    parser.add_argument(
        "--samples",
        type=positive_int,
        default=16,
        help="sample images for the agreement check of none/dynamic (default: %(default)s)",
    )
    parser.add_argument(
        "--tolerance",
        type=non_negative_float,
        metavar="P",
        help="none/dynamic: largest allowed probability difference (default: 0.001, or 0.1 with dynamic)",
    )
    int8 = parser.add_argument_group("int8 (--quantize int8)")
    calibration = int8.add_mutually_exclusive_group()
    calibration.add_argument(
        "--calibration",
        type=Path,
        metavar="PHOTOS",
        help="folder of photos (JPEG/PNG…) to calibrate activation ranges on",
    )
    calibration.add_argument(
        "--calibration-synthetic",
        type=positive_int,
        metavar="N",
        help=f"calibrate on N synthetic photos (default: {DEFAULT_CALIBRATION_SAMPLES})",
    )
    int8.add_argument(
        "--check-samples",
        type=positive_int,
        default=DEFAULT_CHECK_SAMPLES,
        metavar="N",
        help="held-out synthetic photos the guard grades (default: %(default)s)",
    )
    int8.add_argument(
        "--check",
        type=Path,
        metavar="PHOTOS",
        help="grade this folder of held-out photos instead of synthetic ones (never the calibration photos)",
    )
    int8.add_argument(
        "--max-float-layers",
        type=non_negative_int,
        metavar="K",
        help="keep at most K layers in float (default: as many as the guard needs)",
    )
    int8.add_argument(
        "--max-delta",
        type=non_negative_float,
        metavar="P",
        help="also require max |Δp| <= P on every held-out photo (default: reported only)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the synthetic photos (default: %(default)s)"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    """Run ``dr-serving model convert``."""
    from dr_cli.errors import CliError

    if args.quantize == "int8":
        return _run_int8(args)
    int8_only = ("calibration", "calibration_synthetic", "check", "max_float_layers", "max_delta")
    given = [name for name in int8_only if getattr(args, name) is not None]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise CliError(f"{flags} apply to --quantize int8 only.", code=2)
    try:
        report = convert_model(
            args.model_dir,
            out=args.out,
            quantize=args.quantize,
            samples=args.samples,
            seed=args.seed,
            tolerance=args.tolerance,
        )
    except FileNotFoundError as exc:
        raise CliError(str(exc), code=2) from exc
    except (AgreementError, ValueError, OSError) as exc:
        raise CliError(f"converting {str(args.model_dir)!r} failed: {exc}") from exc
    print(report.summary())
    if not report.outputs_vary:
        print("note: the model answers the same for every sample (untrained?), so agreement says little")
    print(f"report: {report_path(args.out or args.model_dir / 'model.tflite')}")
    return 0


def _run_int8(args: argparse.Namespace) -> int:
    """Run ``dr-serving model convert --quantize int8``."""
    from dr_cli.errors import CliError
    from serving.backends.litert import INT8_TFLITE_FILENAME
    from serving.zoo import quantize

    source: Path = args.model_dir
    if not (source / "saved_model.pb").is_file():
        raise CliError(f"Expected a SavedModel (saved_model.pb) in {str(source)!r}, found none.", code=2)
    if args.tolerance is not None:
        raise CliError("--tolerance applies to none/dynamic; use --max-delta with int8.", code=2)
    try:
        metadata = ModelMetadata.load(source) or ModelMetadata()
        if args.calibration is not None:
            calibration = quantize.photos_from_dir(args.calibration, metadata)
            calibration_label = f"{len(calibration)} photos from {args.calibration}"
        else:
            count = args.calibration_synthetic or quantize.DEFAULT_CALIBRATION_SAMPLES
            calibration = quantize.synthetic_photos(metadata, samples=count, seed=args.seed)
            calibration_label = f"{count} synthetic photos, seed {args.seed}"
        if args.check is not None:
            if args.calibration is not None and args.check.resolve() == args.calibration.resolve():
                raise CliError(
                    "--check must not be the --calibration folder: the guard needs held-out photos.", code=2
                )
            check = quantize.photos_from_dir(args.check, metadata)
            check_label = f"{len(check)} photos from {args.check}"
        else:
            seed = quantize.check_seed(args.seed)
            check = quantize.synthetic_photos(metadata, samples=args.check_samples, seed=seed)
            check_label = f"{args.check_samples} held-out synthetic photos, seed {seed}"
        report = quantize.quantize_int8(
            source,
            out=args.out,
            calibration=calibration,
            calibration_label=calibration_label,
            check=check,
            check_label=check_label,
            guard=quantize.Guard(max_abs_diff=args.max_delta),
            max_float_layers=args.max_float_layers,
            log=lambda message: print(f">> {message}", flush=True),
        )
    except FileNotFoundError as exc:
        raise CliError(str(exc), code=2) from exc
    except quantize.GuardError as exc:
        raise CliError(str(exc)) from exc
    except (ValueError, OSError) as exc:
        raise CliError(f"quantizing {str(source)!r} failed: {exc}") from exc
    print(report.summary())
    note = report.speed_note()
    if note is not None:
        print(f"note: {note}")
    print(f"report: {report_path(args.out or source / INT8_TFLITE_FILENAME)}")
    return 0
