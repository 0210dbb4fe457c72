"""Reference texts for quality evaluation: shipped with llem, a local file, or an HF dataset."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from llenergymeasure.config.quality import QualityConfig
from llenergymeasure.domain.quality import TextIdentity
from llenergymeasure.errors import ConfigError


@dataclass(frozen=True)
class ReferenceText:
    """The characters to score and where they came from."""

    text: str
    identity: TextIdentity


def load_reference_text(config: QualityConfig) -> ReferenceText:
    """The text ``config`` names, with its identity (source, name, revision, SHA-256)."""
    if config.source == "builtin":
        text, name, revision = _builtin(config.text)
    elif config.source == "file":
        assert config.path is not None  # the config validator guarantees it
        text, name, revision = _from_file(config.path, config.field), str(config.path), None
    else:
        text, name, revision = _from_hub(config)
    if not text.strip():
        raise ConfigError(f"quality text {name!r} is empty")
    identity = TextIdentity(
        source=config.source,
        name=name,
        revision=revision,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        chars=len(text),
    )
    return ReferenceText(text=text, identity=identity)


def _builtin(name: str) -> tuple[str, str, str | None]:
    from llenergymeasure import __version__

    resource = resources.files("llenergymeasure.data").joinpath("quality").joinpath(f"{name}.txt")
    return resource.read_text("utf-8"), name, f"llenergymeasure {__version__}"


def _from_file(path: Path, field: str) -> str:
    """A .txt file as it is, or a .jsonl file's ``field`` values joined by blank lines."""
    if not path.is_file():
        raise ConfigError(f"quality.path {str(path)!r} does not exist or is not a file")
    raw = path.read_text("utf-8")
    if path.suffix == ".txt":
        return raw
    parts: list[str] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"quality.path {path}: line {number} is not JSON ({exc.msg})"
            ) from None
        if not isinstance(record, dict) or not isinstance(record.get(field), str):
            raise ConfigError(
                f"quality.path {path}: line {number} has no string field {field!r} "
                "(set quality.field to the key holding the text)"
            )
        parts.append(record[field])
    return "\n\n".join(parts)


def _from_hub(config: QualityConfig) -> tuple[str, str, str | None]:
    """A Hugging Face dataset split's ``field`` column, joined by blank lines."""
    label = (
        config.dataset if not config.dataset_config else f"{config.dataset}/{config.dataset_config}"
    )
    try:
        import datasets
    except ImportError:
        raise ConfigError(
            f"quality.source 'hf' ({label}) needs the 'datasets' package: pip install datasets"
        ) from None
    try:
        data = datasets.load_dataset(
            config.dataset, config.dataset_config, split=config.split, revision=config.revision
        )
    except Exception as exc:  # datasets raises many types for offline / missing data
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"quality dataset {label!r} split {config.split!r} could not be loaded (offline, no "
            f"network, or no such dataset; use quality.source 'file' offline): {first}"
        ) from None
    if config.field not in data.column_names:
        raise ConfigError(
            f"quality.field {config.field!r} is not a column of {label}; "
            f"columns: {data.column_names}"
        )
    text = "\n\n".join(t for t in data[config.field] if t and t.strip())
    revision = getattr(getattr(data, "info", None), "version", None)
    where = f"split {config.split}, revision {config.revision or 'default'}"
    return text, label, f"{where}, version {revision}" if revision else where
