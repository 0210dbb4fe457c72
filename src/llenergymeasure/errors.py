"""User-facing errors: each carries one clear line for the CLI to print before exiting 2."""

from __future__ import annotations

from pathlib import Path


class LlemError(Exception):
    """A problem the user can fix (bad config, bad file, missing instrument); never a bug."""

    exit_code = 2


class ConfigError(LlemError):
    """A config file or flag is invalid."""


class ResultFileError(LlemError):
    """A result file is missing, corrupt, foreign, or of an incompatible schema version."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class InstrumentError(LlemError):
    """A requested measurement instrument is unavailable."""
