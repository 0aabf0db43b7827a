"""``available_cpus``: the affinity mask capped by a CFS quota, read from cgroup v2 or v1 files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from serving import cpus


def _quota_files(tmp_path: Path, **files: str) -> tuple[tuple[Path, Path | None], ...]:
    """cgroup v2 (``max``) and v1 (``quota``, ``period``) files under ``tmp_path`` with the given contents."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return ((tmp_path / "max", None), (tmp_path / "quota", tmp_path / "period"))


@pytest.mark.parametrize(
    ("files", "limit"),
    [
        ({"max": "50000 100000\n"}, 0.5),
        ({"max": "max 100000\n"}, None),
        ({"quota": "150000\n", "period": "100000\n"}, 1.5),
        ({"quota": "-1\n", "period": "100000\n"}, None),
        ({}, None),
    ],
    ids=["v2-half", "v2-unlimited", "v1-one-and-a-half", "v1-unlimited", "no-cgroup-files"],
)
def test_the_quota_is_read_from_cgroup_v2_or_v1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], limit: float | None
) -> None:
    monkeypatch.setattr(cpus, "_QUOTA_FILES", _quota_files(tmp_path, **files))
    assert cpus.cgroup_cpu_limit() == limit


@pytest.mark.parametrize(("quota", "expected"), [(0.5, 1), (1.0, 1), (1.5, 2), (None, None)])
def test_available_cpus_is_the_affinity_capped_by_the_quota_rounded_up(
    monkeypatch: pytest.MonkeyPatch, quota: float | None, expected: int | None
) -> None:
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(cpus, "cgroup_cpu_limit", lambda: quota)
    assert cpus.available_cpus() == (affinity if expected is None else min(affinity, expected))
