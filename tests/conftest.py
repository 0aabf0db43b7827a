"""Fixtures shared by every test area.

Model fixtures build real models once per machine into ``models/`` (git-ignored) and reuse them afterwards.
"""

from __future__ import annotations

import os

import pytest

# Variables that change the predictor's or the lab's behaviour; tests start from a clean slate.
_BEHAVIOUR_VARIABLES = ("KUBECONFIG", "HELM_NAMESPACE", "STORAGE_URI", "LOCUST_HOST")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Strip environment variables that would change behaviour (``DR_*`` and a few others)."""
    for name in list(os.environ):
        if name.startswith("DR_") or name in _BEHAVIOUR_VARIABLES:
            monkeypatch.delenv(name, raising=False)
