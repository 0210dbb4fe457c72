"""Build the shipped lm-eval task ``llem_macbeth_next_line`` from the held-out Macbeth text.

Each item shows a speaker and the first lines of one of their speeches; the model chooses the
line that comes next among four: the true one and three lines drawn from other speeches of the
play, of similar length (so that a model cannot win by preferring short lines). Scored by
log-likelihood, so any causal language model can take it. Public-domain text (Project
Gutenberg), held out from the training of ``builtin:shakespeare``.

Seeded and deterministic::

    python scripts/build_macbeth_task.py

writes ``src/llenergymeasure/data/quality/lmeval_tasks/macbeth_next_line.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "llenergymeasure" / "data" / "quality"
SPEAKER = re.compile(r"^[A-Z][A-Z' ]+\.$")


def speeches(text: str) -> list[tuple[str, list[str]]]:
    """(speaker, spoken lines) of every speech; stage directions in brackets are dropped."""
    found: list[tuple[str, list[str]]] = []
    speaker: str | None = None
    lines: list[str] = []
    for raw in [*text.splitlines(), ""]:
        line = raw.strip()
        if not line:
            if speaker is not None and lines:
                found.append((speaker, lines))
            speaker, lines = None, []
        elif speaker is None and SPEAKER.match(line):
            speaker = line
        elif speaker is not None and not line.startswith("["):
            lines.append(line)
    return found


def build(text: str, items: int, seed: int, context_lines: int = 2) -> list[dict[str, object]]:
    """Items {speaker, context, choices, answer} from speeches long enough to cut."""
    rng = random.Random(seed)
    all_speeches = speeches(text)
    pool = [
        (i, line)
        for i, (_, lines) in enumerate(all_speeches)
        for line in lines
        if len(line) >= 20
    ]
    cuts = [
        (i, k)
        for i, (_, lines) in enumerate(all_speeches)
        for k in range(context_lines, len(lines))
        if len(lines[k]) >= 20
    ]
    rng.shuffle(cuts)
    out: list[dict[str, object]] = []
    for i, k in cuts:
        speaker, lines = all_speeches[i]
        target = lines[k]
        similar = [
            line
            for j, line in pool
            if j != i and line != target and abs(len(line) - len(target)) <= 0.2 * len(target)
        ]
        if len(similar) < 3:
            continue
        distractors = rng.sample(similar, 3)
        choices = [target, *distractors]
        rng.shuffle(choices)
        out.append(
            {
                "speaker": speaker,
                "context": "\n".join(lines[k - context_lines : k]),
                "choices": choices,
                "answer": choices.index(target),
            }
        )
        if len(out) == items:
            break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, default=ROOT / "shakespeare-heldout.txt")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "lmeval_tasks" / "macbeth_next_line.jsonl"
    )
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1606)
    args = parser.parse_args()
    rows = build(args.text.read_text(encoding="utf-8"), args.items, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    print(f"{len(rows)} items -> {args.out}")


if __name__ == "__main__":
    main()
