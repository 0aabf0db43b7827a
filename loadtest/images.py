"""Where the lab's fundus images come from: the model zoo's synthetic generator, or a folder of photos."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Image", "ImageSource"]

_CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


@dataclass(frozen=True)
class Image:
    """One encoded image ready to send: a name, its bytes and their content type."""

    name: str
    data: bytes
    content_type: str

    def __repr__(self) -> str:
        return f"Image({self.name!r}, {len(self.data)} bytes, {self.content_type})"


class ImageSource:
    """A fixed set of pre-encoded images handed out in turn (no encoding inside a timed request)."""

    def __init__(self, images: list[Image], *, description: str) -> None:
        if not images:
            raise ValueError(f"An image source needs at least one image, got none from {description}.")
        self.images = images
        self.description = description
        self._cycle = itertools.cycle(images)

    @classmethod
    def synthetic(cls, *, count: int = 10, size: int = 512, seed: int = 0, fmt: str = "JPEG") -> ImageSource:
        """Generate ``count`` synthetic fundus photos, grades 0–4 in turn, with the model zoo's generator."""
        if count < 1:
            raise ValueError(f"Image count must be at least 1, got {count!r}.")
        from serving.zoo.synthetic import encode_image, make_fundus_image

        content_type = "image/png" if fmt.upper() == "PNG" else "image/jpeg"
        images = []
        for index in range(count):
            grade = index % 5
            picture = make_fundus_image(grade, size=size, seed=seed + index)
            images.append(Image(f"synthetic-g{grade}-{index}", encode_image(picture, fmt=fmt), content_type))
        return cls(images, description=f"synthetic ({count} images, {size} px, {fmt}, seed {seed})")

    @classmethod
    def folder(cls, path: str | Path, *, limit: int | None = None) -> ImageSource:
        """Load every JPEG/PNG file of a folder (sorted by name, at most ``limit``)."""
        folder = Path(path)
        if not folder.is_dir():
            raise ValueError(f"Image folder {str(folder)!r} does not exist or is not a directory.")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _CONTENT_TYPES and p.is_file())
        if limit is not None:
            files = files[:limit]
        images = [Image(p.name, p.read_bytes(), _CONTENT_TYPES[p.suffix.lower()]) for p in files]
        if not images:
            raise ValueError(f"Image folder {str(folder)!r} holds no .jpg, .jpeg or .png files.")
        return cls(images, description=f"folder {str(folder)!r} ({len(images)} images)")

    def next(self) -> Image:
        """The next image, cycling through the set."""
        return next(self._cycle)

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return f"ImageSource({self.description})"
