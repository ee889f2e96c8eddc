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

from assistant_builder.datasources import FILE_FORMATS, is_saved_dataset
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
    """``("export", "formats", 0)`` -> ``export.formats[0]`` (list indices in brackets)."""
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


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
            message = f"unknown key '{key}'; {suggest(key, known)}expected one of: {', '.join(known)}" if known else f"unknown key '{key}'; this table takes no keys"
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
        elif kind == "value_error":  # a model validator's own message, which already says what it got
            message = err["msg"].removeprefix("Value error, ")
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
    # Component and path checks run even when the schema check failed, on whatever sections are
    # well-formed, so that every problem is reported in one go.
    sections = _sections(recipe) if recipe is not None else _partial_sections(raw)
    if registry is not None:
        issues.extend(_component_issues(registry, sections["task"], sections["train"], sections["export"], sections["data"]))
        issues.extend(_logger_issues(registry, recipe.log if recipe is not None else raw.get("log")))
    if check_paths:
        issues.extend(_check_paths(sections["data"], sections["model"], source.resolve().parent))
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
        # the hint names plugins that failed to load, often the reason a component is missing
        return ConfigIssue(where, f"{exc.message}; {exc.hint}" if exc.hint else exc.message)


def validate_components(recipe: Recipe, registry: Any) -> list[ConfigIssue]:
    """Check that named components exist and that their option tables validate."""
    return [*_component_issues(registry, recipe.task, recipe.train, recipe.export, recipe.data), *_logger_issues(registry, recipe.log)]


#: the keys of each section that the component and path checks read
_CHECKED_KEYS: dict[str, tuple[str, ...]] = {
    "task": ("type", "options"), "train": ("trainer", "options", "metric"), "export": ("formats", "options"),
    "data": ("train", "validation", "format"), "model": ("base",),
}


def _sections(recipe: Recipe) -> dict[str, Any]:
    return {name: getattr(recipe, name) for name in _CHECKED_KEYS}


def _partial_sections(raw: dict[str, Any]) -> dict[str, Any]:
    """For a recipe that failed the schema check: each section validated on just the keys the later
    checks read (schema defaults fill the rest), or None where even those are malformed (their
    problems are already reported)."""
    sections: dict[str, Any] = {}
    for name, keys in _CHECKED_KEYS.items():
        table = raw.get(name, {})
        model = Recipe.model_fields[name].annotation
        try:
            sections[name] = model.model_validate({k: v for k, v in table.items() if k in keys})  # type: ignore[union-attr]
        except (ValidationError, AttributeError):
            sections[name] = None
    return sections


def _component_issues(registry: Any, task_section: Any, train: Any, export: Any, data: Any = None) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    task = None
    if task_section is not None:
        task = _check_component(registry, "task", task_section.type, "task.type")
        if isinstance(task, ConfigIssue):
            issues.append(task)
            task = None
        else:
            issues.extend(_check_options(task.Options, task_section.options, "task.options"))
    if task is not None and data is not None:
        formats = ("auto", *getattr(task, "data_formats", ()))
        if data.format not in formats:
            issues.append(ConfigIssue("data.format", f"task '{task.name}' does not read format '{data.format}'; "
                                      f"{suggest(data.format, list(formats))}expected one of: {', '.join(formats)}"))
    if task is not None and train is not None and train.metric is not None:
        names = list(getattr(task, "metric_names", ()) or (task.primary_metric,))
        if train.metric not in names:
            issues.append(ConfigIssue("train.metric", f"unknown metric '{train.metric}' for task '{task.name}'; "
                                      f"{suggest(train.metric, names)}expected one of: {', '.join(names)}"))
    if train is not None:
        trainer = _check_component(registry, "trainer", train.trainer, "train.trainer")
        if isinstance(trainer, ConfigIssue):
            issues.append(trainer)
        else:
            issues.extend(_check_options(trainer.Options, train.options, "train.options"))
    if export is not None:
        if len(set(export.formats)) != len(export.formats):
            issues.append(ConfigIssue("export.formats", f"duplicate formats in {export.formats}"))
        for index, name in enumerate(export.formats):
            exporter = _check_component(registry, "exporter", name, f"export.formats[{index}]")
            if isinstance(exporter, ConfigIssue):
                issues.append(exporter)
            else:
                issues.extend(_check_options(exporter.Options, export.options.get(name, {}), f"export.options.{name}"))
        for name in export.options:
            if name not in export.formats:
                issues.append(ConfigIssue(f"export.options.{name}", f"options given for '{name}', which is not in export.formats {export.formats}"))
    return issues


def _logger_issues(registry: Any, log: Any) -> list[ConfigIssue]:
    """``[log]``: every key names an installed logger; option tables validate against its ``Options``."""
    if not isinstance(log, dict):
        return []  # a malformed [log] table is already reported by the schema check
    issues: list[ConfigIssue] = []
    for name, value in log.items():
        logger = _check_component(registry, "logger", name, f"log.{name}")
        if isinstance(logger, ConfigIssue):
            issues.append(logger)
        elif isinstance(value, dict):
            issues.extend(_check_options(logger.Options, value, f"log.{name}"))
    return issues


def enabled_loggers(log: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The ``[log]`` entries that are switched on, as ``(logger name, options table)``."""
    return [(name, value if isinstance(value, dict) else {}) for name, value in log.items() if value is not False]


def _is_data_folder(path: Path) -> bool:
    """A folder a task can read: a saved dataset, a seq.in/seq.out pair, or one with data files in it."""
    return (is_saved_dataset(path) or (path / "seq.in").is_file()
            or any(p.is_file() and p.suffix.lower() in FILE_FORMATS for p in path.iterdir()))


def _check_paths(data: Any, model: Any, base_dir: Path) -> list[ConfigIssue]:
    from assistant_builder.basemodels import check_base_model

    issues: list[ConfigIssue] = []
    for key in ("train", "validation"):
        value = getattr(data, key) if data is not None else None
        if value is None:
            continue
        path = value if value.is_absolute() else (base_dir / value).resolve()
        if not path.exists():
            issues.append(ConfigIssue(f"data.{key}", f"file not found: {path}"))
        elif path.is_dir() and not _is_data_folder(path):
            issues.append(ConfigIssue(f"data.{key}", f"{path} is a directory with no data files; expected a data file, a folder of "
                                                     f"{'/'.join(sorted(FILE_FORMATS))} files, a seq.in/seq.out folder "
                                                     "or a dataset saved with `datasets` save_to_disk"))
    if model is not None:
        try:
            check_base_model(model.base, base_dir)
        except BuilderError as exc:
            issues.append(ConfigIssue("model.base", exc.message))
    return issues


def load_run_recipe(run_dir: str | Path, *, registry: Any = None) -> LoadedRecipe:
    """Load the resolved recipe stored in a run directory (for ``builder run --resume``)."""
    import json

    run_dir = Path(run_dir)
    resolved = run_dir / "recipe.resolved.json"
    if not resolved.is_file():
        raise ConfigError(str(run_dir), [ConfigIssue("", "not a run directory: recipe.resolved.json is missing; expected a folder made by `builder run`")])
    raw = json.loads(resolved.read_text(encoding="utf-8"))
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(str(resolved), describe_validation_error(exc, Recipe)) from None
    if registry is not None:
        issues = validate_components(recipe, registry)
        if issues:
            raise ConfigError(str(resolved), issues)
    return LoadedRecipe(recipe, (run_dir / "recipe.toml").resolve(), raw)
