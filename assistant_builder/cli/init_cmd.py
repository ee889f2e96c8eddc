"""``builder init --task TASK [DIR]``: start a project: a commented ``recipe.toml`` and example data.

The recipe lists every key with a comment (what it does, type, bounds, default), the keys it needs
set and the rest commented out. The data comes from the task's ``sample_data()``: a few labelled
examples in the task's format, to replace with real data. Existing files are never overwritten.
Imports no torch.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from assistant_builder.basemodels import ALIASES, DEFAULT_BASE_MODEL
from assistant_builder.errors import BuilderError

RECIPE = "recipe.toml"
DATA = "data"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "init", help="write a commented starter recipe and example data for a task",
        description="Write DIR/recipe.toml (every key commented with its default) and example data in DIR/data/ for an "
                    "installed task. Replace the example data with your own, then `builder run DIR/recipe.toml`.")
    parser.add_argument("directory", nargs="?", default=".", metavar="DIR", help="project folder (created if missing; default: .)")
    parser.add_argument("--task", required=True, help="task plugin name, e.g. classification, ner, qa (see `builder plugins`)")
    parser.add_argument("--name", help="recipe name, used in run directories (default: from DIR)")
    parser.add_argument("--base", default=DEFAULT_BASE_MODEL,
                        help=f"base model: an alias ({', '.join(ALIASES)}) or a local Hugging Face model folder (default: {DEFAULT_BASE_MODEL})")
    parser.add_argument("--trainer", help="trainer plugin name (default: the recipe default, 'full')")
    parser.set_defaults(handler=run)


def recipe_name(directory: Path, task: str, given: str | None) -> str:
    """``given``, or the folder's name made fit for a run directory (``my-<task>`` if nothing is left)."""
    if given:
        return given
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "-", directory.resolve().name).strip("-._")
    return name if re.match(r"^[A-Za-z0-9]", name) else f"my-{task}"


def base_value(base: str) -> str:
    """An alias as is; a model folder that exists from here as an absolute path (the recipe may live elsewhere)."""
    if base in ALIASES:
        return base
    path = Path(base).expanduser()
    return str(path.resolve()) if path.exists() else base


def header(task: Any, data_files: list[str], has_samples: bool, directory: Path) -> list[str]:
    data = ", ".join(data_files) if data_files else "data/train.jsonl (not written: add your data there)"
    lines = [
        f"# Starter recipe for the {task.name!r} task: {task.description}.",
        f"# Builds: a {task.name} model fine-tuned from model.base, exported and verified as [export] says.",
        f"# Data:   {data}",
    ]
    if has_samples:
        lines.append("#         EXAMPLES ONLY, written by `builder init`: replace them with your own labelled data in the")
        lines.append("#         same format (see data/README.md).")
    lines += [
        f"# Run:    builder validate {directory / RECIPE} && builder run {directory / RECIPE}",
        "#",
        "# Every key is listed with what it does and its default. Keys that are commented out (`# key = value`)",
        "# keep their default; uncomment and edit to change one. All keys: docs/recipes.md. Paths are relative",
        f"# to this file. Try a change without editing: builder run {directory / RECIPE} train.epochs=3",
    ]
    return lines


def readme(task: Any, files: list[str]) -> str:
    formats = ", ".join(task.data_formats)
    listing = "\n".join(f"- `{name}`" for name in files)
    return (f"# Example data for the `{task.name}` task\n\n"
            f"Written by `builder init --task {task.name}`. These files are **examples only**: a handful of made-up\n"
            f"examples that show the format. Replace them with your own labelled data (hundreds of examples or more)\n"
            f"in the same format, keeping the file names or updating `[data]` in `../{RECIPE}`.\n\n"
            f"{listing}\n\nFormats this task reads (`data.format`, or `auto` from the file extension): {formats}.\n")


def plan(args: argparse.Namespace, registry: Any, staging: Path) -> tuple[dict[str, Path], str]:
    """Write everything into ``staging``; return {relative path: staged file} and a note for the user."""
    task_class = registry.get("task", args.task).component
    task = task_class()
    if args.trainer:
        registry.get("trainer", args.trainer)
    directory = Path(args.directory)
    try:
        table = task.sample_data(staging / DATA)
    except Exception as error:  # noqa: BLE001 - a plugin bug, reported as such
        raise BuilderError(f"task '{task.name}' could not write its sample data: {type(error).__name__}: {error}",
                           hint="report it to the plugin's authors; `builder plugins check` shows more") from error
    files = {f"{DATA}/{p.relative_to(staging / DATA).as_posix()}": p
             for p in sorted((staging / DATA).rglob("*")) if p.is_file()} if table else {}
    values: dict[str, Any] = {"recipe_version": 1, "name": recipe_name(directory, task.name, args.name), "task.type": task.name,
                              "model.base": base_value(args.base)}
    if table:
        for key, value in table.items():
            values[f"data.{key}"] = f"{DATA}/{value}" if key in ("train", "validation") and value is not None else value
        readme_path = staging / "README.md"
        readme_path.write_text(readme(task, sorted(files)), encoding="utf-8")
        files[f"{DATA}/README.md"] = readme_path
        note = f"replace the example data in {directory / DATA} with your own (same format), then"
    else:
        values["data.train"] = f"{DATA}/train.{task.data_formats[0]}"
        note = f"task '{task.name}' has no sample data: put your training data at {directory / values['data.train']}, then"
    if args.trainer:
        values["train.trainer"] = args.trainer
    from assistant_builder.recipe.schema import ExportSection, TrainSection
    from assistant_builder.recipe.starter import render_recipe

    trainer_name = args.trainer or TrainSection.model_fields["trainer"].default
    formats = ExportSection().formats
    components = {
        "task.options": [task_class],
        "train.options": [registry.get("trainer", trainer_name).component] if trainer_name in registry.names("trainer") else [],
        "export.options.NAME": [registry.get("exporter", f).component for f in formats if f in registry.names("exporter")],
        "log.NAME": [registry.get("logger", n).component for n in registry.names("logger")] if "logger" in registry.components else [],
    }
    data_files = [name for name in files if not name.endswith("README.md")]
    recipe_text = render_recipe(header(task, data_files, bool(table), directory), values, components)
    recipe_path = staging / RECIPE
    recipe_path.write_text(recipe_text, encoding="utf-8")
    return {RECIPE: recipe_path, **files}, note


def run(args: argparse.Namespace) -> int:
    from assistant_builder.cli.common import load_registry  # the registry and recipe schema only when used

    registry = load_registry()
    directory = Path(args.directory)
    if directory.exists() and not directory.is_dir():
        raise BuilderError(f"{directory} is a file; expected a project folder for {RECIPE} and {DATA}/")
    with tempfile.TemporaryDirectory(prefix="builder-init-") as scratch:
        staged, note = plan(args, registry, Path(scratch))
        existing = [directory / name for name in staged if (directory / name).exists()]
        if existing:
            raise BuilderError(f"refusing to overwrite {', '.join(str(p) for p in existing)}",
                               hint="choose another DIR, or move those files away first")
        for name, source in staged.items():
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    print(f"wrote {', '.join(str(directory / name) for name in staged)}")
    print(f"next: {note}\n  builder validate {directory / RECIPE}\n  builder run {directory / RECIPE}")
    return 0
