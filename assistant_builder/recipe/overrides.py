"""Command-line overrides: ``train.epochs=3 export.formats=["onnx"]``.

Values are parsed as TOML values (so ``3`` is an int, ``true`` a bool, ``["a"]`` a list); anything
that is not valid TOML is taken as a string. Keys must exist in the schema, except below a
component ``options`` table, whose keys the component's own ``Options`` model checks.
"""

from __future__ import annotations

import copy
import sys
import typing
from typing import Any

from pydantic import BaseModel

from assistant_builder.errors import ConfigIssue, suggest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def parse_value(text: str) -> Any:
    """Parse an override value as a TOML value, falling back to the raw string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _check_key(path: list[str], model: type[BaseModel]) -> str | None:
    """Return an error message if ``path`` is not a key of ``model``, else None."""
    current: type[BaseModel] | None = model
    for depth, part in enumerate(path):
        assert current is not None
        fields = current.model_fields
        if part not in fields:
            where = ".".join(path[:depth]) or "the recipe"
            return f"no key '{part}' in {where}; {suggest(part, list(fields))}expected one of: {', '.join(fields)}"
        annotation = fields[part].annotation
        origin = typing.get_origin(annotation)
        if origin is dict:
            return None  # component options: validated by the component
        current = _submodel(annotation)
        if current is None:
            if depth != len(path) - 1:
                return f"'{'.'.join(path[: depth + 1])}' is a value, not a table"
            return None
    return None


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...], model: type[BaseModel]) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """Return a copy of ``raw`` with ``overrides`` applied, and the problems found in them."""
    result = copy.deepcopy(raw)
    issues: list[ConfigIssue] = []
    for override in overrides:
        key, sep, value = override.partition("=")
        key = key.strip()
        if not sep or not key:
            issues.append(ConfigIssue(f"override '{override}'", "expected KEY=VALUE, e.g. train.epochs=3"))
            continue
        path = key.split(".")
        problem = _check_key(path, model)
        if problem:
            issues.append(ConfigIssue(f"override {key}", problem))
            continue
        table = result
        for part in path[:-1]:
            existing = table.get(part)
            if not isinstance(existing, dict):
                existing = {}
                table[part] = existing
            table = existing
        table[path[-1]] = parse_value(value.strip())
    return result, issues
