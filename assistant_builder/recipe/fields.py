"""Read the recipe schema (and any component's ``Options``) as documentation: each key's type,
default, constraints and description. Shared by the recipe reference (``reference.py``) and
``builder init``, so both follow the schema as it changes.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

#: where each component kind's ``Options`` go in a recipe (``NAME`` is the component's name)
OPTIONS_TABLES = {
    "task": "task.options",
    "trainer": "train.options",
    "exporter": "export.options.NAME",
    "logger": "log.NAME",
}

_CONSTRAINTS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="), ("min_length", "min length"), ("max_length", "max length"),
                ("multiple_of", "multiple of"))


@dataclass(frozen=True)
class FieldDoc:
    """One key of a table: ``table`` is the model for a nested table (``None`` for a value)."""

    key: str
    type: str
    required: bool
    default: Any
    constraints: tuple[str, ...]
    description: str
    table: type[BaseModel] | None = None

    @property
    def has_default_value(self) -> bool:
        """A default that TOML can write (not required, not None)."""
        return not self.required and self.default is not None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def type_name(annotation: Any) -> str:
    """A reader's name for a field type: ``integer``, ``list of strings``, ``"auto" | "cpu"``, ``number (optional)``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        inner = " or ".join(type_name(a) for a in present)
        return f"{inner} (optional)" if len(present) < len(args) else inner
    if origin in (list, tuple, set, frozenset):
        inner = type_name(args[0]) if args else "value"
        return f"list of {inner}s" if not inner.endswith(")") and " " not in inner else f"list of ({inner})"
    if origin is dict or annotation is dict:
        return "table"
    if _is_model(annotation):
        return "table"
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if annotation in names:
        return names[annotation]
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def constraints(field: Any) -> tuple[str, ...]:
    """``(">= 1", "<= 1000")``, ``("matches ^[a-z]+$",)``: the bounds pydantic enforces on a field."""
    found = []
    for item in field.metadata:
        for attribute, word in _CONSTRAINTS:
            value = getattr(item, attribute, None)
            if value is not None:
                found.append(f"{word} {value}")
        pattern = getattr(item, "pattern", None)
        if pattern is not None:
            found.append(f"matches {pattern}")
    return tuple(found)


def describe(model: type[BaseModel]) -> list[FieldDoc]:
    """Every field of ``model`` as a ``FieldDoc``, in declaration order."""
    docs = []
    for key, field in model.model_fields.items():
        required = field.is_required()
        default = None if required else field.get_default(call_default_factory=True)
        if default is PydanticUndefined:
            default = None
        table = field.annotation if _is_model(field.annotation) else None
        docs.append(FieldDoc(key, type_name(field.annotation), required, default, constraints(field), field.description or "", table))
    return docs


def toml_value(value: Any) -> str:
    """``value`` as a TOML literal (strings quoted, paths as strings, lists as arrays, tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, PurePath):
        return json.dumps(value.as_posix())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, BaseModel):
        return toml_value(value.model_dump())
    return json.dumps(str(value), ensure_ascii=False)


def default_text(doc: FieldDoc) -> str:
    """How the default reads in docs and comments: a TOML literal, ``required`` or ``not set``."""
    if doc.required:
        return "required"
    if doc.default is None:
        return "not set"
    if doc.table is not None:
        return "defaults below"
    return toml_value(doc.default)
