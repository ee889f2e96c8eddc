"""Load a recipe: parse TOML, apply overrides, validate, and check components and paths.

All problems are collected and raised together as one ``ConfigError``, each located by its key
path (``train.epochs: expected an integer, got 'three'``). Nothing here imports torch.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from assistant_builder.errors import BuilderError, ConfigError, ConfigIssue, suggest
from assistant_builder.recipe.overrides import apply_overrides
from assistant_builder.recipe.schema import Recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_TYPE_WORDS = {
    "int": "an integer", "float": "a number", "bool": "true or false", "string": "a string",
    "list": "a list", "dict": "a table", "literal": "one of",
}


def _location(loc: tuple[Any, ...], prefix: str = "") -> str:
    parts = [str(p) for p in loc if not isinstance(p, int) or True]
    path = ".".join(parts)
    return f"{prefix}.{path}" if prefix and path else (prefix or path)


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Keys accepted at the table that holds ``loc`` (for did-you-mean on unknown keys)."""
    current: Any = model
    for part in loc[:-1]:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        current = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def describe_validation_error(error: ValidationError, model: type[BaseModel], prefix: str = "") -> list[ConfigIssue]:
    """Translate pydantic errors into located, human ``ConfigIssue``s."""
    issues: list[ConfigIssue] = []
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        where = _location(loc, prefix)
        kind = err["type"]
        given = err.get("input")
        if kind == "extra_forbidden":
            key = str(loc[-1]) if loc else "?"
            known = _known_keys(model, loc)
            message = f"unknown key '{key}'; {suggest(key, known)}expected one of: {', '.join(known)}" if known else f"unknown key '{key}'"
        elif kind == "missing":
            message = "required key is missing"
        elif kind in ("literal_error", "enum"):
            message = f"expected {err['ctx'].get('expected', '')}, got {given!r}"
        elif kind.endswith("_parsing") or kind.endswith("_type"):
            word = _TYPE_WORDS.get(kind.split("_")[0], kind.split("_")[0])
            message = f"expected {word}, got {given!r}"
        elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            ops = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
            bound = next(iter(err.get("ctx", {}).values()), "?")
            message = f"expected a value {ops[kind]} {bound}, got {given!r}"
        else:
            message = f"{err['msg']}, got {given!r}"
        issues.append(ConfigIssue(where, message))
    return issues


@dataclass(frozen=True)
class LoadedRecipe:
    """A validated recipe and where it came from (paths in it resolve against ``base_dir``)."""

    recipe: Recipe
    source: Path
    raw: dict[str, Any]

    @property
    def base_dir(self) -> Path:
        return self.source.parent

    def resolve(self, path: Path) -> Path:
        """Resolve a recipe path relative to the recipe file."""
        return path if path.is_absolute() else (self.base_dir / path).resolve()


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning syntax and I/O errors into a located ``ConfigError``."""
    source = str(path)
    if not path.exists():
        raise ConfigError(source, [ConfigIssue("", "file not found; expected a recipe .toml file")])
    if path.is_dir():
        raise ConfigError(source, [ConfigIssue("", "is a directory; expected a recipe .toml file")])
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [ConfigIssue("", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [ConfigIssue("", f"TOML syntax error: {exc}")]) from None


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = (), *, registry: Any = None, check_paths: bool = True) -> LoadedRecipe:
    """Load, override and validate a recipe; raise one ``ConfigError`` listing every problem.

    With ``registry`` (a ``registry.Registry``), component names and options are checked too.
    With ``check_paths``, data files and the base model must exist.
    """
    source = Path(path)
    raw = read_toml(source)
    issues: list[ConfigIssue] = []
    raw, override_issues = apply_overrides(raw, overrides, Recipe)
    issues.extend(override_issues)
    recipe: Recipe | None = None
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        issues.extend(describe_validation_error(exc, Recipe))
    if recipe is not None:
        loaded = LoadedRecipe(recipe, source.resolve(), raw)
        if registry is not None:
            issues.extend(validate_components(recipe, registry))
        if check_paths:
            issues.extend(_check_paths(loaded))
    if issues:
        raise ConfigError(str(path), issues)
    return LoadedRecipe(recipe, source.resolve(), raw)  # type: ignore[arg-type]


def _check_options(options_model: type[BaseModel], values: dict[str, Any], prefix: str) -> list[ConfigIssue]:
    try:
        options_model.model_validate(values)
    except ValidationError as exc:
        return describe_validation_error(exc, options_model, prefix)
    return []


def _check_component(registry: Any, kind: str, name: str, where: str) -> Any:
    try:
        return registry.get(kind, name).component
    except BuilderError as exc:
        return ConfigIssue(where, exc.message)


def validate_components(recipe: Recipe, registry: Any) -> list[ConfigIssue]:
    """Check that named components exist and that their option tables validate."""
    issues: list[ConfigIssue] = []
    task = _check_component(registry, "task", recipe.task.type, "task.type")
    if isinstance(task, ConfigIssue):
        issues.append(task)
    else:
        issues.extend(_check_options(task.Options, recipe.task.options, "task.options"))
        metric = recipe.train.metric
        if metric is not None and metric not in getattr(task, "metric_names", (task.primary_metric,)):
            names = list(getattr(task, "metric_names", (task.primary_metric,)))
            issues.append(ConfigIssue("train.metric", f"unknown metric '{metric}' for task '{task.name}'; {suggest(metric, names)}expected one of: {', '.join(names)}"))
    trainer = _check_component(registry, "trainer", recipe.train.trainer, "train.trainer")
    if isinstance(trainer, ConfigIssue):
        issues.append(trainer)
    else:
        issues.extend(_check_options(trainer.Options, recipe.train.options, "train.options"))
    if len(set(recipe.export.formats)) != len(recipe.export.formats):
        issues.append(ConfigIssue("export.formats", f"duplicate formats in {recipe.export.formats}"))
    for index, name in enumerate(recipe.export.formats):
        exporter = _check_component(registry, "exporter", name, f"export.formats[{index}]")
        if isinstance(exporter, ConfigIssue):
            issues.append(exporter)
        else:
            issues.extend(_check_options(exporter.Options, recipe.export.options.get(name, {}), f"export.options.{name}"))
    for name in recipe.export.options:
        if name not in recipe.export.formats:
            issues.append(ConfigIssue(f"export.options.{name}", f"options given for '{name}', which is not in export.formats {recipe.export.formats}"))
    return issues


def _check_paths(loaded: LoadedRecipe) -> list[ConfigIssue]:
    from assistant_builder.basemodels import resolve_base_model

    issues: list[ConfigIssue] = []
    data = loaded.recipe.data
    for key in ("train", "validation"):
        value = getattr(data, key)
        if value is None:
            continue
        path = loaded.resolve(value)
        if not path.exists():
            issues.append(ConfigIssue(f"data.{key}", f"file not found: {path}"))
        elif path.is_dir():
            issues.append(ConfigIssue(f"data.{key}", f"{path} is a directory; expected a data file"))
    try:
        resolve_base_model(loaded.recipe.model.base, loaded.base_dir)
    except BuilderError as exc:
        issues.append(ConfigIssue("model.base", exc.message))
    return issues
