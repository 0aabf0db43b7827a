"""``Problem``: one thing ``dr-serving deploy preflight`` found that would keep the release from running."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Problem"]


@dataclass(frozen=True)
class Problem:
    """One thing that would keep the release from running, and how to fix it."""

    check: str
    message: str
    fix: str

    def line(self) -> str:
        """The one line printed for this problem."""
        return f"{self.check}: {self.message} Fix: {self.fix}"
