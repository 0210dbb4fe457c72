"""How the harness reports progress, without knowing who listens (CLI bars, logs, nothing)."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    """Receives the stages of an experiment; implementations must be cheap to call."""

    def stage(self, name: str, total: float | None = None) -> None:
        """A new stage begins (warmup, baseline, measurement, ...), with its size if known."""

    def advance(self, amount: float = 1.0, info: str | None = None) -> None:
        """Some of the current stage is done."""

    def message(self, text: str) -> None:
        """A line worth showing to the user (a warning, a choice the harness made)."""


class NullReporter:
    """Reports nowhere (the Python API's default)."""

    def stage(self, name: str, total: float | None = None) -> None:
        pass

    def advance(self, amount: float = 1.0, info: str | None = None) -> None:
        pass

    def message(self, text: str) -> None:
        pass
