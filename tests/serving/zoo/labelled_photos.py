"""Synthetic fundus photos laid out on disk as users bring them: APTOS 2019, or a folder per grade."""

from __future__ import annotations

from pathlib import Path

from serving.zoo.synthetic import encode_image, make_fundus_image


def write_aptos(root: Path, *, per_grade: int, size: int = 96, seed: int = 0) -> Path:
    """``root/train.csv`` (id_code,diagnosis) + ``root/train_images/<id>.png``, ``per_grade`` a grade."""
    images = root / "train_images"
    images.mkdir(parents=True)
    rows = ["id_code,diagnosis"]
    for index in range(5 * per_grade):
        grade = index % 5
        code = f"{seed:02d}{index:04d}ab"
        (images / f"{code}.png").write_bytes(
            encode_image(make_fundus_image(grade, size=size, seed=seed * 10_000 + index), "PNG")
        )
        rows.append(f"{code},{grade}")
    (root / "train.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def write_folders(root: Path, *, per_grade: int, size: int = 96, seed: int = 0) -> Path:
    """``root/0/ … root/4/`` holding JPEG photos of that grade."""
    for index in range(5 * per_grade):
        grade = index % 5
        folder = root / str(grade)
        folder.mkdir(parents=True, exist_ok=True)
        photo = make_fundus_image(grade, size=size, seed=seed * 10_000 + index)
        (folder / f"photo-{index:04d}.jpg").write_bytes(encode_image(photo, "JPEG"))
    return root
