"""Shared rich consoles: results to stdout, messages and progress to stderr."""

from __future__ import annotations

from rich.console import Console

console = Console()
error_console = Console(stderr=True)
