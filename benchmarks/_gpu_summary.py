"""The GPU check's time budget and its summary table (printed last, written as .md and .json)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATUSES = ("ok", "info", "warn", "skip", "FAIL")


class Budget:
    """Seconds left of a global budget counted from construction."""

    def __init__(self, total_sec: float) -> None:
        self.total_sec = total_sec
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.total_sec - self.elapsed()

    def fits(self, need_sec: float) -> bool:
        return self.left() >= need_sec


@dataclass
class Row:
    part: str
    check: str
    value: str
    expected: str = ""
    status: str = "info"


@dataclass
class Summary:
    rows: list[Row] = field(default_factory=list)

    def add(
        self, part: str, check: str, value: str, expected: str = "", status: str = "info"
    ) -> None:
        if status not in STATUSES:
            raise ValueError(f"status {status!r}; allowed: {', '.join(STATUSES)}")
        self.rows.append(Row(part, check, value, expected, status))

    def failed(self) -> bool:
        return any(r.status == "FAIL" for r in self.rows)

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.rows) for s in STATUSES}

    def markdown(self) -> str:
        lines = ["| part | check | value | expected | status |", "|---|---|---|---|---|"]
        for r in self.rows:
            cells = [c.replace("|", "\\|") for c in (r.part, r.check, r.value, r.expected)]
            lines.append("| " + " | ".join([*cells, r.status]) + " |")
        return "\n".join(lines) + "\n"

    def table(self) -> str:
        """Plain fixed-width text: readable in any log."""
        header = Row("part", "check", "value", "expected", "status")
        rows = [header, *self.rows]
        widths = [
            min(60 if i == 2 else 44, max(len(getattr(r, f)) for r in rows))
            for i, f in enumerate(("part", "check", "value", "expected", "status"))
        ]
        out = []
        for n, r in enumerate(rows):
            cells = [r.part, r.check, r.value, r.expected, r.status]
            wrapped = [_wrap(c, w) for c, w in zip(cells, widths, strict=True)]
            for k in range(max(len(w) for w in wrapped)):
                parts = [
                    (w[k] if k < len(w) else "").ljust(widths[i]) for i, w in enumerate(wrapped)
                ]
                out.append("  ".join(parts).rstrip())
            if n == 0:
                out.append("  ".join("-" * w for w in widths))
        counts = ", ".join(f"{v} {k}" for k, v in self.counts().items() if v)
        return "GPU CHECK SUMMARY\n" + "\n".join(out) + f"\n{counts}\n"

    def write(self, out: Path) -> None:
        (out / "summary.md").write_text(self.markdown())
        (out / "summary.json").write_text(
            json.dumps({"rows": [asdict(r) for r in self.rows], "counts": self.counts()}, indent=2)
        )


def _wrap(text: str, width: int) -> list[str]:
    if len(text) <= width:
        return [text]
    lines, line = [], ""
    for word in text.split(" "):
        while len(word) > width:
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:width])
            word = word[width:]
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    """A number with its unit, or 'n/a'."""
    if value is None:
        return "n/a"
    text = f"{value:.{digits}f}" if abs(value) >= 10 ** (-digits) or value == 0 else f"{value:.3g}"
    return f"{text} {unit}".rstrip()


def pct(value: float | None, digits: int = 1, signed: bool = False) -> str:
    """A fraction as a percentage, or 'n/a'."""
    if value is None:
        return "n/a"
    return f"{value * 100:+.{digits}f}%" if signed else f"{value * 100:.{digits}f}%"
