"""The one error a sub-command raises to end with a message: ``CliError`` (printed as ``Error: ...``)."""

from __future__ import annotations

__all__ = ["CliError"]


class CliError(Exception):
    """A failure to report as one ``Error: ...`` line; ``code`` is the process exit code (2 = bad usage)."""

    def __init__(self, message: str, *, code: int = 1) -> None:
        super().__init__(message)
        self.code = code
