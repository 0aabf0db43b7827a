from __future__ import annotations

import loadtest


def _isort_style(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions, each alphabetical (ruff's RUF022 order)."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_exported() -> None:
    assert loadtest.__all__ == sorted(loadtest.__all__, key=_isort_style)
    assert len(set(loadtest.__all__)) == len(loadtest.__all__)
    for name in loadtest.__all__:
        assert getattr(loadtest, name) is not None
    assert "RequestRecorder" in loadtest.__all__ and "Target" in loadtest.__all__
