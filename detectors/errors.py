"""Exception root of the detectors package."""

from __future__ import annotations


class DetectorError(Exception):
    """Root of every error raised by the detectors package."""


class RuleError(DetectorError):
    """A rule that cannot be loaded, located as ``path:line`` so an editor can jump to it."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message
