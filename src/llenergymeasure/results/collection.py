"""Many results at once: find every result.json below a directory, load what can be loaded.

A damaged file never stops the others: it becomes a ``ResultFileError`` in ``ResultSet.problems``
(its message names the file), and the caller prints it as a warning.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from llenergymeasure.domain.results import ExperimentResult
from llenergymeasure.errors import LlemError, ResultFileError
from llenergymeasure.results.io import RESULT_FILENAME, load_result

#: How many paths a warning about a duplicated experiment id names (the rest are counted).
DUPLICATES_SHOWN = 3


class ResultLookupError(LlemError):
    """An experiment id or path given on the command line matches no result (or several)."""


@dataclass(frozen=True)
class LoadedResult:
    """One experiment result together with the file it was read from."""

    path: Path
    result: ExperimentResult

    @property
    def directory(self) -> Path:
        """The experiment directory (where relative files such as telemetry live)."""
        return self.path.parent


@dataclass
class ResultSet:
    """The results found below ``root``, and the files that could not be read."""

    root: Path
    loaded: list[LoadedResult] = field(default_factory=list)
    problems: list[ResultFileError] = field(default_factory=list)

    def __iter__(self) -> Iterator[LoadedResult]:
        return iter(self.loaded)

    def __len__(self) -> int:
        return len(self.loaded)

    @property
    def results(self) -> list[ExperimentResult]:
        """The loaded results, in the set's order."""
        return [item.result for item in self.loaded]

    def warnings(self) -> list[str]:
        """One line per unreadable file and per experiment id that appears more than once."""
        lines = [f"skipped {problem}" for problem in self.problems]
        seen: dict[str, list[Path]] = {}
        for item in self.loaded:
            seen.setdefault(item.result.experiment_id, []).append(item.path)
        for experiment_id, paths in seen.items():
            if len(paths) > 1:
                where = ", ".join(str(p) for p in paths[:DUPLICATES_SHOWN])
                if len(paths) > DUPLICATES_SHOWN:
                    where += f" and {len(paths) - DUPLICATES_SHOWN} more"
                lines.append(
                    f"experiment id {experiment_id} appears in {len(paths)} files: {where}"
                )
        return lines


def find_result_files(root: str | Path) -> list[Path]:
    """Every ``result.json`` at or below ``root`` (a file is returned as is), sorted by path."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise ResultFileError(root, "no such file or directory")
    return sorted(p for p in root.rglob(RESULT_FILENAME) if p.is_file())


def load_results(root: str | Path) -> ResultSet:
    """Load every result below ``root``; unreadable files are collected, not raised.

    Results come out ordered by start time, then experiment id, so a listing reads in the
    order the experiments ran whatever the directory names are.
    """
    root = Path(root)
    found = ResultSet(root=root)
    for path in find_result_files(root):
        try:
            found.loaded.append(LoadedResult(path=path, result=load_result(path)))
        except ResultFileError as problem:
            found.problems.append(problem)
    found.loaded.sort(key=lambda item: (item.result.start_time, item.result.experiment_id))
    return found


def _lookup(ref: str, found: ResultSet) -> LoadedResult:
    exact = [item for item in found if item.result.experiment_id == ref]
    matches = exact or [item for item in found if item.result.experiment_id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ResultLookupError(
            f"no result with experiment id {ref!r} under {found.root} "
            f"({len(found)} results there; see `llem results list {found.root}`)"
        )
    where = ", ".join(f"{m.result.experiment_id} ({m.path})" for m in matches[:5])
    raise ResultLookupError(f"{ref!r} matches {len(matches)} results: {where}")


def resolve_results(
    refs: list[str], search_dir: str | Path
) -> tuple[list[LoadedResult], list[ResultFileError]]:
    """Find results by path (a result file or experiment directory) or by experiment id.

    An id is matched exactly first, then as a unique prefix, among the results below
    ``search_dir`` (loaded once, only when some ref is an id). Returns the results in the
    order of ``refs`` and the files that could not be read while searching.
    """
    resolved: list[LoadedResult] = []
    found: ResultSet | None = None
    for ref in refs:
        path = Path(ref)
        if path.is_file() or (path.is_dir() and (path / RESULT_FILENAME).is_file()):
            file = path if path.is_file() else path / RESULT_FILENAME
            resolved.append(LoadedResult(path=file, result=load_result(file)))
            continue
        if path.is_dir():
            raise ResultLookupError(f"{path} holds no {RESULT_FILENAME}; give an experiment dir")
        if found is None:
            if not Path(search_dir).is_dir():
                raise ResultLookupError(
                    f"{ref!r} is neither a result file nor an experiment directory, and the "
                    f"results directory {search_dir} does not exist (choose it with --dir)"
                )
            found = load_results(search_dir)
        resolved.append(_lookup(ref, found))
    return resolved, found.problems if found else []
