from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image as PILImage

from loadtest.images import ImageSource


def test_synthetic_images_decode_and_cycle() -> None:
    source = ImageSource.synthetic(count=3, size=128, seed=1)
    names = [source.next().name for _ in range(4)]
    assert names == ["synthetic-g0-0", "synthetic-g1-1", "synthetic-g2-2", "synthetic-g0-0"]
    first = source.images[0]
    assert first.content_type == "image/jpeg"
    with PILImage.open(io.BytesIO(first.data)) as picture:
        assert picture.size == (128, 128)
    assert len({img.data for img in source.images}) == 3


def test_png_synthetic() -> None:
    image = ImageSource.synthetic(count=1, size=64, fmt="PNG").next()
    assert image.content_type == "image/png" and image.data.startswith(b"\x89PNG")


def test_folder_reads_jpeg_and_png_only(tmp_path: Path) -> None:
    PILImage.new("RGB", (32, 32), "red").save(tmp_path / "b.png")
    PILImage.new("RGB", (32, 32), "blue").save(tmp_path / "a.JPG", format="JPEG")
    (tmp_path / "notes.txt").write_text("not an image")
    source = ImageSource.folder(tmp_path)
    assert [(i.name, i.content_type) for i in source.images] == [
        ("a.JPG", "image/jpeg"),
        ("b.png", "image/png"),
    ]
    assert len(ImageSource.folder(tmp_path, limit=1)) == 1


@pytest.mark.parametrize("make", ["missing", "empty"], ids=["missing-folder", "no-images"])
def test_folder_errors(tmp_path: Path, make: str) -> None:
    folder = tmp_path / "photos"
    if make == "empty":
        folder.mkdir()
    with pytest.raises(ValueError, match="photos"):
        ImageSource.folder(folder)


def test_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ImageSource.synthetic(count=0)
