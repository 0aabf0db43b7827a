"""Tests for ``serving.zoo.synthetic``: fundus-like photos whose lesions rise with the grade."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from serving.zoo.synthetic import (
    GRADES,
    LESION_KINDS,
    encode_image,
    make_dataset,
    make_fundus_image,
    plan_scene,
    render_scene,
)


def test_same_seed_gives_the_same_photo() -> None:
    first = np.asarray(make_fundus_image(3, size=128, seed=11))
    second = np.asarray(make_fundus_image(3, size=128, seed=11))
    other = np.asarray(make_fundus_image(3, size=128, seed=12))
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other)


def test_photo_is_an_rgb_disc_on_black() -> None:
    image = make_fundus_image(0, size=256, seed=1)
    assert image.mode == "RGB" and image.size == (256, 256)
    pixels = np.asarray(image).astype(int)
    assert pixels[:8, :8].max() < 10  # black corner
    centre = pixels[112:144, 112:144].reshape(-1, 3).mean(axis=0)
    assert centre[0] > centre[1] > centre[2]  # orange-red retina: R > G > B


def test_lesion_count_rises_with_grade() -> None:
    for seed in range(20):
        counts = [plan_scene(grade, seed=seed).count() for grade in GRADES]
        assert counts[0] == 0
        assert counts == sorted(counts) and len(set(counts)) == len(counts), counts


def test_lesion_kinds_appear_in_order_of_severity() -> None:
    kinds = {grade: {lesion.kind for lesion in plan_scene(grade, seed=5).lesions} for grade in GRADES}
    assert kinds[0] == set()
    assert kinds[1] == {"microaneurysm"}
    assert kinds[2] >= {"microaneurysm", "exudate", "haemorrhage"}
    assert "cotton_wool" in kinds[3] and "neovascular" not in kinds[3]
    assert kinds[4] == set(LESION_KINDS)


def _yellow_fraction_outside_disc(grade: int, seed: int) -> float:
    scene = plan_scene(grade, size=256, seed=seed)
    pixels = np.asarray(render_scene(scene)).astype(int)
    red, green = pixels[..., 0], pixels[..., 1]
    yy, xx = np.mgrid[0:256, 0:256]
    outside_disc = np.hypot(xx - scene.disc[0], yy - scene.disc[1]) > 1.6 * scene.disc_radius
    # Yellow: green close to red (the retina's green is under half its red).
    return float(((green > 0.62 * red) & (red > 100) & outside_disc).mean())


def test_exudates_show_in_the_pixels() -> None:
    # Exudates are yellow flecks; the optic disc is yellowish too, so it is left out.
    for seed in range(8):
        assert _yellow_fraction_outside_disc(0, seed) < 3e-4
        assert _yellow_fraction_outside_disc(2, seed) > 6e-4


def test_photos_vary_between_seeds() -> None:
    scenes = [plan_scene(0, seed=seed) for seed in range(10)]
    assert len({round(s.axis_angle, 3) for s in scenes}) == 10
    assert len({round(s.brightness, 3) for s in scenes}) == 10
    assert len({round(s.disc[0]) for s in scenes}) > 5


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"], ids=["jpeg", "png"])
def test_encode_image_gives_a_decodable_file(fmt: str) -> None:
    image = make_fundus_image(4, size=128, seed=2)
    data = encode_image(image, fmt)
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == fmt and decoded.size == (128, 128) and decoded.mode == "RGB"
    if fmt == "PNG":
        assert np.array_equal(np.asarray(decoded), np.asarray(image))


def test_jpeg_quality_changes_the_size() -> None:
    image = make_fundus_image(4, size=256, seed=2)
    assert len(encode_image(image, "JPEG", quality=30)) < len(encode_image(image, "JPEG", quality=95))


def test_dataset_is_balanced_and_reproducible() -> None:
    pairs = list(make_dataset(10, size=64, seed=3))
    assert [grade for _, grade in pairs] == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    again = list(make_dataset(10, size=64, seed=3))
    assert all(
        np.array_equal(np.asarray(a), np.asarray(b)) for (a, _), (b, _) in zip(pairs, again, strict=True)
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_fundus_image(5), "Grade must be one of"),
        (lambda: make_fundus_image(True), "Grade must be one of"),
        (lambda: make_fundus_image(1, size=10), "Image size must be"),
        (lambda: encode_image(Image.new("RGB", (4, 4)), "GIF"), "Image format must be"),
        (lambda: list(make_dataset(-1)), "Dataset size must be"),
    ],
    ids=["grade-5", "grade-bool", "tiny", "gif", "negative-n"],
)
def test_bad_arguments_are_rejected(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_module_does_not_import_tensorflow() -> None:
    code = (
        "import sys, serving.zoo.synthetic; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
