"""``ModelMetadata``: the ``dr_model.json`` that travels beside a SavedModel (load, save, validate, defaults).

The file describes what the model expects (input name and size, pixel scaling, preprocessing), what it
answers (output name, class names, the first referable grade) and where its weights came from. Every key is
optional when read: a missing key takes the default below, so a user can describe a foreign SavedModel in a
few lines, e.g. ``{"input": {"height": 299, "width": 299}, "scaling": "zero_one"}``. Unknown keys are
rejected, to catch typos.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_CLASS_NAMES",
    "DTYPES",
    "METADATA_FILENAME",
    "SCALINGS",
    "SCHEMA_VERSION",
    "WEIGHT_SOURCES",
    "InputInfo",
    "ModelMetadata",
    "OutputInfo",
    "Preprocessing",
    "WeightsInfo",
]

#: File name of the metadata beside the SavedModel.
METADATA_FILENAME = "dr_model.json"
#: Version of the file format written by :meth:`ModelMetadata.save`.
SCHEMA_VERSION = 1
#: Pixel scalings: x/127.5 − 1, x/255, 0–255 as float, BGR minus ImageNet means (VGG's own).
SCALINGS = ("minus_one_to_one", "zero_one", "raw", "caffe")
#: The five DR grades, in output order.
DEFAULT_CLASS_NAMES = ("No DR", "Mild", "Moderate", "Severe", "Proliferative")
#: Input tensor dtypes a model may declare.
DTYPES = ("float32", "float16", "uint8")
#: Where weights came from: untrained, trained on our synthetic images, trained by ``dr-serving model
#: train`` on the user's photos, or brought by the user.
WEIGHT_SOURCES = ("random-init", "synthetic", "trained", "external", "unknown")


def _fail(path: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"Model metadata field {path!r} must be {expected}, got {value!r}.")


def _check_keys(data: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    where = path or "the top level"
    if not isinstance(data, dict):
        raise ValueError(f"Model metadata at {where!r} must be a JSON object, got {data!r}.")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValueError(
            f"Model metadata at {where!r} has unknown key {unknown[0]!r}; "
            f"expected one of {sorted(allowed)!r}."
        )
    return data


def _str(
    data: dict[str, Any], key: str, path: str, default: str | None, *, choices: tuple[str, ...] = ()
) -> Any:
    value = data.get(key, default)
    if value is None and default is None:
        return None
    if not isinstance(value, str) or not value:
        raise _fail(path, "a non-empty string", value)
    if choices and value not in choices:
        raise _fail(path, f"one of {list(choices)!r}", value)
    return value


def _int(data: dict[str, Any], key: str, path: str, default: int | None, *, minimum: int) -> Any:
    value = data.get(key, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(path, f"an integer >= {minimum}", value)
    return value


def _object(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    if value is not None and not isinstance(value, dict):
        raise _fail(key, "a JSON object", value)
    return value


def _bool(data: dict[str, Any], key: str, path: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise _fail(path, "true or false", value)
    return value


@dataclass(frozen=True, kw_only=True)
class InputInfo:
    """The model's input tensor: its signature name, ``height × width × channels`` and dtype."""

    name: str = "image"
    height: int = 224
    width: int = 224
    channels: int = 3
    dtype: str = "float32"

    @classmethod
    def from_dict(cls, data: Any, *, path: str = "input") -> InputInfo:
        """Validate and build from the JSON object under ``input``."""
        data = _check_keys(data, path, tuple(f.name for f in fields(cls)))
        return cls(
            name=_str(data, "name", f"{path}.name", cls.name),
            height=_int(data, "height", f"{path}.height", cls.height, minimum=1),
            width=_int(data, "width", f"{path}.width", cls.width, minimum=1),
            channels=_int(data, "channels", f"{path}.channels", cls.channels, minimum=1),
            dtype=_str(data, "dtype", f"{path}.dtype", cls.dtype, choices=DTYPES),
        )

    def __repr__(self) -> str:
        return f"InputInfo({self.name!r}, {self.height}x{self.width}x{self.channels}, {self.dtype})"


@dataclass(frozen=True, kw_only=True)
class OutputInfo:
    """The model's output tensor holding the class probabilities."""

    name: str = "probabilities"

    @classmethod
    def from_dict(cls, data: Any, *, path: str = "output") -> OutputInfo:
        """Validate and build from the JSON object under ``output``."""
        data = _check_keys(data, path, ("name",))
        return cls(name=_str(data, "name", f"{path}.name", cls.name))


@dataclass(frozen=True, kw_only=True)
class Preprocessing:
    """Image preparation before resizing: crop to the fundus disc, optional Ben Graham enhancement."""

    crop_fundus: bool = True
    ben_graham: bool = False
    ben_graham_sigma: float = 10.0

    @classmethod
    def from_dict(cls, data: Any, *, path: str = "preprocessing") -> Preprocessing:
        """Validate and build from the JSON object under ``preprocessing``."""
        data = _check_keys(data, path, tuple(f.name for f in fields(cls)))
        sigma = data.get("ben_graham_sigma", cls.ben_graham_sigma)
        if (
            isinstance(sigma, bool)
            or not isinstance(sigma, int | float)
            or not math.isfinite(sigma)
            or sigma <= 0
        ):
            raise _fail(f"{path}.ben_graham_sigma", "a positive number", sigma)
        return cls(
            crop_fundus=_bool(data, "crop_fundus", f"{path}.crop_fundus", cls.crop_fundus),
            ben_graham=_bool(data, "ben_graham", f"{path}.ben_graham", cls.ben_graham),
            ben_graham_sigma=float(sigma),
        )


@dataclass(frozen=True, kw_only=True)
class WeightsInfo:
    """Where the weights came from; ``clinical_use`` is true only for weights validated for diagnosis."""

    source: str = "unknown"
    trained_on: str | None = None
    clinical_use: bool = False
    notes: str | None = None

    @classmethod
    def from_dict(cls, data: Any, *, path: str = "weights") -> WeightsInfo:
        """Validate and build from the JSON object under ``weights``."""
        data = _check_keys(data, path, tuple(f.name for f in fields(cls)))
        return cls(
            source=_str(data, "source", f"{path}.source", cls.source, choices=WEIGHT_SOURCES),
            trained_on=_str(data, "trained_on", f"{path}.trained_on", None),
            clinical_use=_bool(data, "clinical_use", f"{path}.clinical_use", cls.clinical_use),
            notes=_str(data, "notes", f"{path}.notes", None),
        )


@dataclass(frozen=True, kw_only=True)
class ModelMetadata:
    """What a served DR model expects and answers; the content of ``dr_model.json``."""

    schema_version: int = SCHEMA_VERSION
    name: str = "model"
    architecture: str = "unknown"
    parameters: int | None = None
    signature: str = "serving_default"
    input: InputInfo = field(default_factory=InputInfo)
    output: OutputInfo = field(default_factory=OutputInfo)
    scaling: str = "minus_one_to_one"
    class_names: tuple[str, ...] = DEFAULT_CLASS_NAMES
    referable_min_grade: int = 2
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    weights: WeightsInfo = field(default_factory=WeightsInfo)
    created: str | None = None
    tensorflow_version: str | None = None
    #: ``dr-serving model train``'s record: data, split, recipe, history, evaluation (absent otherwise).
    training: dict[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # Constructed directly (not via from_dict): check the values that cross-depend.
        if self.scaling not in SCALINGS:
            raise _fail("scaling", f"one of {list(SCALINGS)!r}", self.scaling)
        if not isinstance(self.class_names, tuple):
            object.__setattr__(self, "class_names", tuple(self.class_names))
        if len(self.class_names) < 2 or len(set(self.class_names)) != len(self.class_names):
            raise _fail("class_names", "a list of at least two distinct names", list(self.class_names))
        if not 0 <= self.referable_min_grade < len(self.class_names):
            raise _fail(
                "referable_min_grade",
                f"a grade between 0 and {len(self.class_names) - 1}",
                self.referable_min_grade,
            )

    @property
    def num_classes(self) -> int:
        """How many classes the model outputs."""
        return len(self.class_names)

    @property
    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` of the model input."""
        return (self.input.height, self.input.width)

    @classmethod
    def from_dict(cls, data: Any) -> ModelMetadata:
        """Validate a parsed ``dr_model.json``; raises ``ValueError`` naming the offending field."""
        data = _check_keys(data, "", tuple(f.name for f in fields(cls)))
        version = _int(data, "schema_version", "schema_version", SCHEMA_VERSION, minimum=1)
        if version > SCHEMA_VERSION:
            raise _fail("schema_version", f"at most {SCHEMA_VERSION} (this dr-serving's format)", version)
        names = data.get("class_names", list(DEFAULT_CLASS_NAMES))
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) and n for n in names):
            raise _fail("class_names", "a list of non-empty strings", names)
        return cls(
            schema_version=version,
            name=_str(data, "name", "name", cls.name),
            architecture=_str(data, "architecture", "architecture", cls.architecture),
            parameters=_int(data, "parameters", "parameters", None, minimum=1),
            signature=_str(data, "signature", "signature", cls.signature),
            input=InputInfo.from_dict(data.get("input", {})),
            output=OutputInfo.from_dict(data.get("output", {})),
            scaling=_str(data, "scaling", "scaling", cls.scaling, choices=SCALINGS),
            class_names=tuple(names),
            referable_min_grade=_int(data, "referable_min_grade", "referable_min_grade", 2, minimum=0),
            preprocessing=Preprocessing.from_dict(data.get("preprocessing", {})),
            weights=WeightsInfo.from_dict(data.get("weights", {})),
            created=_str(data, "created", "created", None),
            tensorflow_version=_str(data, "tensorflow_version", "tensorflow_version", None),
            training=_object(data, "training"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dictionary, keys in the documented order (``training`` only when present)."""
        data = {
            "schema_version": self.schema_version,
            "name": self.name,
            "architecture": self.architecture,
            "parameters": self.parameters,
            "signature": self.signature,
            "input": {
                "name": self.input.name,
                "height": self.input.height,
                "width": self.input.width,
                "channels": self.input.channels,
                "dtype": self.input.dtype,
            },
            "output": {"name": self.output.name},
            "scaling": self.scaling,
            "class_names": list(self.class_names),
            "referable_min_grade": self.referable_min_grade,
            "preprocessing": {
                "crop_fundus": self.preprocessing.crop_fundus,
                "ben_graham": self.preprocessing.ben_graham,
                "ben_graham_sigma": self.preprocessing.ben_graham_sigma,
            },
            "weights": {
                "source": self.weights.source,
                "trained_on": self.weights.trained_on,
                "clinical_use": self.weights.clinical_use,
                "notes": self.weights.notes,
            },
            "created": self.created,
            "tensorflow_version": self.tensorflow_version,
        }
        if self.training is not None:
            data["training"] = self.training
        return data

    @classmethod
    def load(cls, model_dir: str | os.PathLike[str]) -> ModelMetadata | None:
        """Read ``MODEL_DIR/dr_model.json``; ``None`` if absent, ``ValueError`` if unreadable or invalid."""
        path = Path(model_dir) / METADATA_FILENAME
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"Cannot read model metadata file {str(path)!r}: {exc}.") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"Model metadata file {str(path)!r} is not valid JSON: {exc}.") from exc
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"Model metadata file {str(path)!r} is invalid: {exc}") from exc

    def save(self, model_dir: str | os.PathLike[str]) -> Path:
        """Write ``MODEL_DIR/dr_model.json`` atomically; returns its path."""
        directory = Path(model_dir)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / METADATA_FILENAME
        fd, tmp = tempfile.mkstemp(prefix=".dr_model.", suffix=".json", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.to_dict(), handle, indent=2)
                handle.write("\n")
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the serving image runs as another user
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def __repr__(self) -> str:
        return (
            f"ModelMetadata(name={self.name!r}, architecture={self.architecture!r}, input={self.input!r}, "
            f"output={self.output.name!r}, scaling={self.scaling!r}, classes={len(self.class_names)}, "
            f"weights={self.weights.source!r})"
        )
