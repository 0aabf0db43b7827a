"""``dr-serving model …``: build, describe and convert classifiers; measure the gradability gate."""

from __future__ import annotations

import argparse
from pathlib import Path

from dr_cli.errors import CliError
from dr_cli.help import DefaultsHelpFormatter
from dr_cli.types import positive_int
from serving.metadata import METADATA_FILENAME, ModelMetadata
from serving.zoo import ARCHITECTURES, DEFAULT_EPOCHS, DEFAULT_SEED, build_model, console_verbosity

__all__ = ["register"]


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 0 or an integer >= 5, got {text!r}") from None
    if value != 0 and value < 5:
        raise argparse.ArgumentTypeError(f"expected 0 or an integer >= 5, got {text!r}")
    return value


def _input_size(text: str) -> int:
    value = positive_int(text)
    if value < 32:
        raise argparse.ArgumentTypeError(f"expected an input size >= 32, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dr-serving model`` with ``build``, ``info`` and (from ``serving.zoo.convert``) ``convert``."""
    parser = subparsers.add_parser(
        "model",
        help="Build, inspect and convert DR classifiers.",
        description="Build, inspect and convert DR classifiers (for serving and benchmarking, not diagnosis)",
    )
    model_subparsers = parser.add_subparsers(dest="model_command", metavar="SUBCOMMAND", required=True)

    build = model_subparsers.add_parser(
        "build",
        help="Build a published architecture into a SavedModel directory.",
        description=(
            "Build MobileNet or VGG19 exactly as published (backbone + Dense 128/128/5) and export it as a "
            "SavedModel with dr_model.json. Weights are random, or trained for minutes on synthetic fundus "
            "photos with --train-synthetic (VGG19, which has no batch norm, trains through a twin with batch "
            "norm after every convolution, folded back into it afterwards). An existing model built with the "
            "same options is reused."
        ),
    )
    build.add_argument("--arch", required=True, choices=sorted(ARCHITECTURES), help="architecture to build")
    build.add_argument("--out", required=True, type=Path, metavar="DIR", help="model directory to write")
    build.add_argument(
        "--train-synthetic",
        type=_count,
        default=0,
        metavar="N",
        help="train on N synthetic photos (0 = random weights; default: %(default)s)",
    )
    build.add_argument(
        "--epochs", type=positive_int, default=DEFAULT_EPOCHS, help="training epochs (default: %(default)s)"
    )
    build.add_argument(
        "--train-head-only",
        action="store_true",
        help="train only the dense head, on a fixed variance-scaled random backbone (minutes for VGG19)",
    )
    build.add_argument(
        "--input-size",
        type=_input_size,
        default=224,
        metavar="S",
        help="input side, px (default: %(default)s)",
    )
    build.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    build.add_argument("--force", action="store_true", help="rebuild even if a compatible model exists")
    build.set_defaults(func=_build)

    info = model_subparsers.add_parser(
        "info", help="Show a model directory's metadata and serving signature.", description=_info.__doc__
    )
    info.add_argument("model_dir", type=Path, metavar="DIR", help="model directory (SavedModel)")
    info.set_defaults(func=_info)

    _register_train(model_subparsers)

    gradability = model_subparsers.add_parser(
        "gradability",
        help="Measure the ungradable-photo gate on synthetic photos and counter-examples.",
        description=(
            "Run the gradability gate (serving.gradability) on good synthetic fundus photos and on "
            "counter-examples (pictures that are no fundus photo; dark, overexposed, washed-out, blurred, "
            "small-field photos); print the false-reject rate, what was caught and each measure's range."
        ),
    )
    gradability.add_argument(
        "--photos", type=positive_int, default=250, help="good photos (default: %(default)s)"
    )
    gradability.add_argument(
        "--counter-examples",
        type=positive_int,
        default=20,
        metavar="N",
        help="counter-examples of each kind (default: %(default)s)",
    )
    gradability.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    gradability.set_defaults(func=_gradability)

    from serving.zoo import convert

    convert.register(model_subparsers)


def _build(args: argparse.Namespace) -> int:
    """Run ``dr-serving model build``."""
    try:
        build_model(
            args.arch,
            args.out,
            train_synthetic=args.train_synthetic,
            epochs=args.epochs,
            seed=args.seed,
            input_size=args.input_size,
            head_only=args.train_head_only,
            force=args.force,
            verbose=console_verbosity(),
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise CliError(f"building {args.arch!r} into {str(args.out)!r} failed: {exc}") from exc
    return 0


def _register_train(model_subparsers: argparse._SubParsersAction) -> None:
    """Add ``dr-serving model train``: every field of the recipe is a flag, defaulting to the published."""
    from serving.tensor import SCALINGS
    from serving.zoo.fit import Recipe

    defaults = Recipe()
    train = model_subparsers.add_parser(
        "train",
        help="Train a published architecture on your labelled photos (APTOS layout or a folder per grade).",
        description=(
            "Train on DIR: APTOS 2019 (train.csv with id_code,diagnosis + train_images/*.png) or folders "
            "0/ … 4/. "
            "Photos are prepared exactly as the server prepares them. Writes the SavedModel, dr_model.json "
            "(with data, split, recipe and evaluation), evaluation.json/.md, roc.png and confusion.png; "
            "a run started again with the same data and recipe resumes after its last finished epoch."
        ),
        formatter_class=DefaultsHelpFormatter,
    )
    train.add_argument("--data", required=True, type=Path, metavar="DIR", help="labelled photos")
    train.add_argument("--out", required=True, type=Path, metavar="DIR", help="model directory to write")
    train.add_argument("--name", help="model name (default: the output folder's name)")
    train.add_argument(
        "--arch", default=defaults.architecture, choices=sorted(ARCHITECTURES), help="architecture"
    )
    train.add_argument(
        "--input-size", type=_input_size, default=defaults.input_size, metavar="S", help="input side, px"
    )
    train.add_argument("--scaling", default=defaults.scaling, choices=SCALINGS, help="pixel scaling")
    train.add_argument(
        "--ben-graham", action="store_true", help="Ben Graham's enhancement (Voets' 299 px recipe)"
    )
    train.add_argument(
        "--validation", type=float, default=defaults.validation, help="held-out share, stratified"
    )
    train.add_argument("--seed", type=int, default=defaults.seed, help="seed of the split and the weights")
    train.add_argument("--batch-size", type=positive_int, default=defaults.batch_size, help="photos per step")
    train.add_argument("--epochs", type=positive_int, default=defaults.epochs, help="most epochs")
    train.add_argument(
        "--patience",
        type=positive_int,
        default=defaults.patience,
        help="early stop after N epochs without a better validation loss",
    )
    train.add_argument(
        "--learning-rate", type=float, default=defaults.learning_rate, help="Adam's learning rate"
    )
    train.add_argument(
        "--class-weights",
        default=defaults.class_weights,
        choices=("balanced", "none"),
        help="loss weight per grade",
    )
    train.add_argument(
        "--no-augment", dest="augment", action="store_false", help="no flips, turns or brightness changes"
    )
    train.add_argument(
        "--threshold",
        type=float,
        default=defaults.threshold,
        help="referable score (P(grade ≥ 2)) that refers",
    )
    train.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    """Run ``dr-serving model train``."""
    from serving.zoo.fit import Recipe, train_on_data

    try:
        recipe = Recipe(
            architecture=args.arch,
            input_size=args.input_size,
            scaling=args.scaling,
            ben_graham=args.ben_graham,
            validation=args.validation,
            seed=args.seed,
            batch_size=args.batch_size,
            epochs=args.epochs,
            patience=args.patience,
            learning_rate=args.learning_rate,
            class_weights=args.class_weights,
            augment=args.augment,
            threshold=args.threshold,
        )
        train_on_data(args.data, args.out, recipe=recipe, name=args.name, verbose=console_verbosity())
    except ValueError as exc:
        raise CliError(str(exc), code=2) from exc
    except (OSError, RuntimeError) as exc:
        raise CliError(f"training into {str(args.out)!r} failed: {exc}") from exc
    return 0


def _gradability(args: argparse.Namespace) -> int:
    """Run ``dr-serving model gradability``."""
    from serving.zoo.ungradable import calibrate

    print(calibrate(photos=args.photos, counter_examples=args.counter_examples, seed=args.seed).table())
    return 0


def _info(args: argparse.Namespace) -> int:
    """Print a model directory's metadata (dr_model.json) and the signature its SavedModel offers."""
    directory: Path = args.model_dir
    if not (directory / "saved_model.pb").is_file():
        raise CliError(f"expected a SavedModel (saved_model.pb) in {str(directory)!r}, found none", code=2)
    try:
        metadata = ModelMetadata.load(directory)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    from serving.zoo.export import directory_size, read_signature

    signature = metadata.signature if metadata else "serving_default"
    try:
        described = read_signature(directory, signature=signature).describe()
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    print(f"model directory: {directory}")
    print(f"size: {directory_size(directory) / 1e6:.1f} MB")
    print(f"signature: {described}")
    if metadata is None:
        print(f"metadata: none ({METADATA_FILENAME} absent: the predictor guesses from the signature)")
        return 0
    print(f"name: {metadata.name}")
    print(f"architecture: {metadata.architecture}")
    print(f"parameters: {metadata.parameters:,}" if metadata.parameters else "parameters: unknown")
    spec = metadata.input
    print(f"input: {spec.name!r} {spec.height}x{spec.width}x{spec.channels} {spec.dtype}")
    print(f"scaling: {metadata.scaling}")
    print(f"classes: {', '.join(f'{i} {n}' for i, n in enumerate(metadata.class_names))}")
    print(f"referable from grade: {metadata.referable_min_grade}")
    steps = metadata.preprocessing
    print(
        f"preprocessing: crop_fundus={steps.crop_fundus}, ben_graham={steps.ben_graham} "
        f"(sigma {steps.ben_graham_sigma:g})"
    )
    weights = metadata.weights
    print(f"weights: {weights.source}" + (f" ({weights.trained_on})" if weights.trained_on else ""))
    print(f"clinical use: {'yes' if weights.clinical_use else 'no (serving and benchmarking only)'}")
    if weights.notes:
        print(f"notes: {weights.notes}")
    print(
        f"created: {metadata.created or 'unknown'} with TensorFlow {metadata.tensorflow_version or 'unknown'}"
    )
    return 0
