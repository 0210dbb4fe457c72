"""Loading configs from YAML and flags, with one clear line for any mistake."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


def _union_member(annotation: Any, tag: Any) -> Any:
    """The member of a tagged union (``kind: ...``) whose tag is ``tag``, else None."""
    for member in typing.get_args(annotation):
        for candidate in (member, *typing.get_args(member)):
            kind = getattr(candidate, "model_fields", {}).get("kind")
            if kind is not None and kind.default == tag:
                return candidate
    return None


def _resolve(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[str], tuple[Any, ...]]:
    """Valid field names at a location (following nested models and tagged unions), and the
    location without the union tags pydantic inserts."""
    current: Any = model
    clean: list[Any] = []
    for i, part in enumerate(loc):
        fields = getattr(current, "model_fields", None)
        if fields is None:  # a tagged union: this part is the tag
            current = _union_member(current, part)
            if current is None:
                return [], loc
            continue
        clean.append(part)
        if i == len(loc) - 1:
            break
        field = fields.get(part)
        if field is None:
            return [], loc
        current = field.annotation
    return list(getattr(current, "model_fields", {})), tuple(clean)


def describe_validation_error(
    exc: ValidationError, model: type[BaseModel], source: str | None = None
) -> str:
    """One line naming the field, the value and what is allowed (first problem only)."""
    first = exc.errors()[0]
    names, loc = _resolve(model, tuple(first["loc"]))
    where = ".".join(str(p) for p in loc) or "(top level)"
    prefix = f"{source}: " if source else ""
    more = (
        f" ({exc.error_count() - 1} more problem(s) after this one)"
        if exc.error_count() > 1
        else ""
    )
    if first["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else f"; valid fields: {', '.join(names)}"
        return f"{prefix}unknown field {where!r}{hint}{more}"
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        ctx = first.get("ctx", {})
        key = f"{where}.{str(ctx.get('discriminator', 'kind')).strip(chr(39))}"
        if "tag" not in ctx:
            return f"{prefix}{key}: missing; it says which kind this is{more}"
        allowed = str(ctx.get("expected_tags", "")).replace("'", "")
        return f"{prefix}{key}: must be one of {allowed} (got {ctx['tag']!r}){more}"
    message = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    shown = "" if isinstance(value, (dict, list)) or value is None else f" (got {value!r})"
    return f"{prefix}{where}: {message}{shown}{more}"


def validate(model: type[ModelT], data: Mapping[str, Any], source: str | None = None) -> ModelT:
    """Validate data into a config model, raising ConfigError with one clear line."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, model, source)) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file; any problem is a ConfigError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config fields, got {type(data).__name__}")
    return data


def set_dotted(data: dict[str, Any], dotted_key: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts, creating the intermediate mappings."""
    parts = dotted_key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def load_experiment_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> ExperimentConfig:
    """Config from an optional YAML file plus overrides (dotted keys; None values skipped)."""
    data = read_yaml(path) if path is not None else {}
    for key, value in (overrides or {}).items():
        if value is not None:
            set_dotted(data, key, value)
    config = validate(ExperimentConfig, data, source=str(path) if path else None)
    check_prompt_file(config)
    return config


def check_prompt_file(config: ExperimentConfig) -> None:
    """A file prompt source must exist, and the requests fit in memory, before any loading."""
    from llenergymeasure.config.budget import check_request_memory

    path = config.prompts.path
    if config.prompts.source == "file" and path is not None and not path.is_file():
        raise ConfigError(f"prompts.path: prompt file not found: {path}")
    check_request_memory(config)
