"""llenergymeasure: measure what LLM inference costs, with the provenance of every figure.

Importing the package is light: torch, transformers and the instruments load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from llenergymeasure.measure.experiment import run_experiment
    from llenergymeasure.study.runner import run_study

_LAZY = {
    "run_experiment": ("llenergymeasure.measure.experiment", "run_experiment"),
    "run_study": ("llenergymeasure.study.runner", "run_study"),
}

__all__ = ["__version__", "run_experiment", "run_study"]


def __getattr__(name: str) -> Any:
    """Load the public API's heavy entry points on first use."""
    if name in _LAZY:
        import importlib

        module_name, attribute = _LAZY[name]
        return getattr(importlib.import_module(module_name), attribute)
    raise AttributeError(f"module 'llenergymeasure' has no attribute {name!r}")
