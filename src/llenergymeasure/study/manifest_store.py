"""The study manifest on disk: an atomic snapshot plus a journal of run-record changes.

Rewriting a manifest of thousands of runs at every change costs O(runs) per change, O(runs²)
per study. Instead each change appends the run's whole record as one JSON line to
``manifest.journal.jsonl`` (the records of one call in one ``write``, flushed: a crash of the
parent loses nothing the kernel has), and the snapshot ``manifest.json`` is rewritten
atomically (and the journal emptied) once the journal holds as many records as the study has
runs, or, at the next change, once the snapshot is ``COMPACT_AFTER_SEC`` old: a snapshot costs
O(runs) and comes at most every O(runs) changes, so the bookkeeping stays linear in the number
of runs, and the journal a reader replays is never longer than the snapshot. Readers load the
snapshot and replay the journal (a torn last line is ignored); replaying is idempotent, so a
crash between the snapshot and the truncation is harmless. Studies of up to 50 runs compact
at every change, so their ``manifest.json`` alone is always current.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO

from llenergymeasure.domain.study import RunRecord, StudyManifest
from llenergymeasure.errors import ResultFileError
from llenergymeasure.results.io import load_model, save_model

MANIFEST_FILENAME = "manifest.json"
JOURNAL_FILENAME = "manifest.journal.jsonl"
#: Studies up to this many runs rewrite the snapshot at every change.
SMALL_STUDY_RUNS = 50
COMPACT_AFTER_SEC = 30.0


def load_manifest(directory: Path) -> StudyManifest:
    """The study's manifest: the snapshot with the journal's later changes applied."""
    manifest = load_model(directory / MANIFEST_FILENAME, StudyManifest)
    journal = directory / JOURNAL_FILENAME
    if not journal.exists():
        return manifest
    index = {r.run_id: i for i, r in enumerate(manifest.runs)}
    lines = journal.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        try:
            record = RunRecord.model_validate_json(line)
        except ValueError:
            if number == len(lines):
                break  # the last line torn by a crash mid-write
            raise ResultFileError(journal, f"line {number} is not a run record") from None
        if record.run_id in index:
            manifest.runs[index[record.run_id]] = record
    return manifest


class ManifestStore:
    """Owns a study's manifest while the study runs: ``update`` after every record change."""

    def __init__(self, directory: Path, manifest: StudyManifest) -> None:
        self.directory = directory
        self.manifest = manifest
        self.records = {r.run_id: r for r in manifest.runs}
        n = len(manifest.runs)
        self.compact_every = 1 if n <= SMALL_STUDY_RUNS else n
        self._compacted_at = time.monotonic()
        self._pending = 0
        self._journal: IO[str] | None = None
        self.compact()

    def update(self, *records: RunRecord) -> None:
        """Persist records' new state (one journal write; a snapshot every so often)."""
        if not records:
            return
        if self._journal is None:
            self._journal = open(  # noqa: SIM115 - held open for appends until close()
                self.directory / JOURNAL_FILENAME, "a", encoding="utf-8"
            )
        self._journal.write("".join(r.model_dump_json() + "\n" for r in records))
        self._journal.flush()
        self._pending += len(records)
        stale = time.monotonic() - self._compacted_at >= COMPACT_AFTER_SEC
        if self._pending >= self.compact_every or stale:
            self.compact()

    def compact(self) -> None:
        """Rewrite the snapshot atomically, then empty the journal."""
        save_model(self.manifest, self.directory / MANIFEST_FILENAME)
        if self._journal is not None:
            self._journal.truncate(0)
            self._journal.flush()
        else:
            (self.directory / JOURNAL_FILENAME).unlink(missing_ok=True)
        self._pending = 0
        self._compacted_at = time.monotonic()

    def close(self) -> None:
        """Final snapshot (unless nothing changed since the last); the journal is removed."""
        if self._pending:
            self.compact()
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        (self.directory / JOURNAL_FILENAME).unlink(missing_ok=True)

    def __enter__(self) -> ManifestStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
