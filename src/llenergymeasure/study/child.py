"""One study experiment in a fresh process: config JSON on stdin, progress as JSON lines on stdout.

``python -m llenergymeasure.study.child EXPERIMENT_ID`` runs the experiment and writes one
JSON object per line: ``{"event": "stage" | "advance" | "message" | "error", ...}``. It exits 0
on success, 2 on a user-facing error (its message in the last ``error`` event), 1 on a crash.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any, TextIO


class JsonLinesReporter:
    """Reports progress to the parent as JSON lines (one small write per event)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def _emit(self, **event: Any) -> None:
        self._stream.write(json.dumps(event) + "\n")
        self._stream.flush()

    def stage(self, name: str, total: float | None = None) -> None:
        self._emit(event="stage", name=name, total=total)

    def advance(self, amount: float = 1.0, info: str | None = None) -> None:
        self._emit(event="advance", amount=amount, info=info)

    def message(self, text: str) -> None:
        self._emit(event="message", text=text)

    def error(self, text: str) -> None:
        self._emit(event="error", text=text)


def main(argv: list[str] | None = None) -> int:
    """Run the experiment given on stdin; the exit status says how it ended."""
    from llenergymeasure.errors import LlemError
    from llenergymeasure.signals import INTERRUPTS, exit_status, install_sigterm_handler

    install_sigterm_handler()
    args = sys.argv[1:] if argv is None else argv
    reporter = JsonLinesReporter(sys.stdout)
    try:
        from llenergymeasure.config.experiment import ExperimentConfig
        from llenergymeasure.config.loading import validate
        from llenergymeasure.measure.experiment import run_experiment

        config = validate(ExperimentConfig, json.loads(sys.stdin.read()), source="study run")
        run_experiment(config, experiment_id=args[0], reporter=reporter)
    except LlemError as exc:
        reporter.error(str(exc))
        return exc.exit_code
    except INTERRUPTS as exc:  # the run log has its "ended early" line
        reporter.error(str(exc) or "interrupted")
        return exit_status(exc)
    except Exception as exc:  # a crash: the parent records it and the study goes on
        traceback.print_exc(file=sys.stderr)
        reporter.error(f"{type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
