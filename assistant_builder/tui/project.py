"""What the TUI knows about a project: its recipe, task, labels, store, and past runs.

Torch- and textual-free; reading a run directory never imports the training stack.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant_builder.errors import BuilderError, ConfigError, ConfigIssue
from assistant_builder.recipe.loader import LoadedRecipe, load_recipe
from assistant_builder.labelling.responses import ResponseFields
from assistant_builder.labelling.store import LabelStore, store_path_for

#: a run whose metrics.jsonl changed less than this many seconds ago counts as running
RUNNING_WINDOW_S = 120.0


@dataclass
class Project:
    """A recipe opened in the TUI."""

    recipe_path: Path
    loaded: LoadedRecipe
    task_name: str
    kind: str
    declared_labels: list[str] | None
    store_path: Path
    runs_dir: Path
    task_options: dict[str, Any] = field(default_factory=dict)
    #: labels found in the recipe's own training data (empty if it has none yet)
    data_labels: list[str] = field(default_factory=list)
    #: the validation metric the run maximises (``train.metric``, else the task's primary metric)
    metric: str = ""

    @property
    def name(self) -> str:
        return self.loaded.recipe.name

    @property
    def text_field(self) -> str:
        return str(self.task_options.get("text_field", "text"))

    @property
    def label_field(self) -> str:
        return str(self.task_options.get("label_field", "label"))

    def import_options(self) -> dict[str, Any]:
        """Keyword arguments of ``labelling.formats.import_file`` for this recipe's field names."""
        return {"text_field": self.text_field, "label_field": self.label_field, "id_field": self.task_options.get("id_field"),
                "fields": ResponseFields.from_options(self.task_options)}

    def export_options(self) -> dict[str, Any]:
        """Keyword arguments of ``labelling.formats.export_file`` for this recipe's field names."""
        return {"text_field": self.text_field, "label_field": self.label_field,
                "messages_field": ResponseFields.from_options(self.task_options).messages}

    def labels(self, store: LabelStore) -> list[str]:
        """Declared labels (``task.options.labels``), else those of the recipe's data, then any new
        ones saved or used in the store."""
        if self.declared_labels:
            return list(self.declared_labels)
        return [*self.data_labels, *(label for label in store.labels() if label not in self.data_labels)]

    def training_file(self) -> Path:
        """Where the labelled store is exported for training (same format as the recipe's data)."""
        suffix = {"token_spans": ".jsonl", "answer_span": ".json"}.get(self.kind)
        if suffix is None:  # classes and responses: CSV or JSONL, like the recipe's own data
            suffix = ".csv" if self.loaded.recipe.data.train.suffix.lower() in (".csv", ".tsv") else ".jsonl"
        return self.recipe_path.with_name(f"{self.recipe_path.stem}.labels.train{suffix}")


def find_recipe(directory: Path) -> Path:
    """The only ``*.toml`` recipe in ``directory`` (for ``builder tui`` without an argument)."""
    candidates = sorted(p for p in directory.glob("*.toml") if p.name != "pyproject.toml")
    if len(candidates) == 1:
        return candidates[0]
    found = ", ".join(p.name for p in candidates) or "none"
    raise ConfigError("builder tui", [ConfigIssue("RECIPE", f"expected a recipe file argument (recipes in {directory}: {found})")])


def open_project(recipe_path: str | Path, registry: Any) -> Project:
    """Load the recipe (data files need not exist yet: the store can produce them)."""
    recipe_path = Path(recipe_path).resolve()
    loaded = load_recipe(recipe_path, registry=registry, check_paths=False)
    recipe = loaded.recipe
    task = registry.get("task", recipe.task.type).component
    return Project(
        recipe_path=recipe_path, loaded=loaded, task_name=task.name, kind=task.labelling_kind,
        declared_labels=recipe.task.options.get("labels"), store_path=store_path_for(recipe_path),
        runs_dir=loaded.resolve(recipe.output.runs_dir), task_options=dict(recipe.task.options),
        data_labels=_labels_in_data(loaded, task) if task.labelling_kind == "text_class" else [],
        metric=recipe.train.metric or task.primary_metric,
    )


def _labels_in_data(loaded: LoadedRecipe, task: Any) -> list[str]:
    """The label set of the recipe's existing training data (torch-free), or [] if it has none yet."""
    recipe = loaded.recipe
    data = recipe.data.model_copy(update={
        "train": loaded.resolve(recipe.data.train),
        "validation": loaded.resolve(recipe.data.validation) if recipe.data.validation else None,
    })
    try:
        instance = task()
        return list(instance.load_data(data, task.Options.model_validate(recipe.task.options)).labels)
    except (BuilderError, OSError):
        return []


# -- run directories --------------------------------------------------------------------------------
def display_path(path: Path | str) -> str:
    """``path`` relative to the current directory when it lies under it (what a user would type in
    this terminal), else absolute."""
    path = Path(path)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_status(run_dir: Path, now: float | None = None) -> str:
    """``finished`` (summary.json), ``running`` (metrics.jsonl written recently) or ``stopped``."""
    if (run_dir / "summary.json").is_file():
        return "finished"
    log = run_dir / "metrics.jsonl"
    try:
        changed = max(log.stat().st_mtime, (run_dir / "provenance.json").stat().st_mtime) if log.exists() else (run_dir / "provenance.json").stat().st_mtime
    except OSError:
        return "stopped"
    return "running" if (now or time.time()) - changed < RUNNING_WINDOW_S else "stopped"


@dataclass(frozen=True)
class RunInfo:
    path: Path
    status: str
    task: str
    trainer: str
    metric: str
    metrics: dict[str, float]
    best_epoch: int | None
    epochs: int | None
    examples_per_second: float | None
    exports: list[dict[str, Any]]
    #: ``RUN/update.json`` of a warm-start update (``builder run --from``, ``builder serve --learn``); None: a full run
    update: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def version_kind(self) -> str:
        """``full`` (trained from the base model), ``update`` (kept), ``refused`` (its gate refused it) or
        ``updating`` (an update whose gate has not run yet)."""
        if self.update is None:
            return "full"
        gate = self.update.get("gate")
        return "updating" if not gate else ("update" if gate.get("passed") else "refused")


def describe_version(run: RunInfo, short: Any = str) -> str:
    """Where a run's model came from, in one line: a full run, or an update of its parent (``short``
    names a run folder): what it learned, what it replayed, and its gate's figures and verdict."""
    if run.update is None:
        return f"{short(run.name)}: a full run (trained from the base model)"
    plan, gate = run.update.get("plan") or {}, run.update.get("gate") or {}
    parent = short(Path(str(run.update.get("parent", "?"))).name)
    new_labels = list(plan.get("new_labels") or [])
    labels = (f"; new labels: {', '.join(new_labels[:4])}" + (f" +{len(new_labels) - 4}" if len(new_labels) > 4 else "")) if new_labels else ""
    learned = (f"{plan.get('new_examples', 0)} new ({plan.get('new_trained', 0)} trained, {plan.get('held_out', 0)} held out, "
               f"{plan.get('corrected', 0)} corrections{labels}), {plan.get('replayed', 0)} replayed, {plan.get('epochs', '?')} epochs")
    if not gate:
        return f"{short(run.name)}: update of {parent}: {learned}; gate not run yet"
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    before, held = gate.get("parent_validation") or {}, gate.get("held_out_new") or {}
    figures = (f"{gate.get('metric', 'metric')} on the parent's validation {fmt(before.get('before'))} -> {fmt(before.get('after'))} "
               f"(may lose {gate.get('max_forgetting', 0):.4f}), held-out new {fmt(held.get('before'))} -> {fmt(held.get('after'))}")
    verdict = "kept" if gate.get("passed") else "REFUSED: " + "; ".join(gate.get("reasons") or [])
    return f"{short(run.name)}: update of {parent}: {learned}. Gate {verdict}: {figures}"


def read_run(run_dir: Path) -> RunInfo:
    """Headline facts of one run directory, finished or not."""
    summary = read_json(run_dir / "summary.json") or {}
    metrics_json = read_json(run_dir / "metrics.json") or {}
    recipe = read_json(run_dir / "recipe.resolved.json") or {}
    metrics = summary.get("metrics") or metrics_json.get("metrics") or {}
    if not metrics:  # unfinished: the best evaluation so far, from the log
        evals = [r for r in read_log(run_dir / "metrics.jsonl")[0] if r.get("event") == "eval"]
        best = [r for r in evals if r.get("is_best")] or evals
        if best:
            metrics = {k: v for k, v in best[-1].items() if k not in ("time", "event", "step", "epoch", "is_best") and isinstance(v, (int, float))}
    return RunInfo(
        path=run_dir, status=run_status(run_dir), task=summary.get("task") or recipe.get("task", {}).get("type", "?"),
        trainer=summary.get("trainer") or recipe.get("train", {}).get("trainer", "?"),
        metric=summary.get("metric") or metrics_json.get("metric") or recipe.get("train", {}).get("metric") or "",
        metrics=metrics, best_epoch=summary.get("best_epoch"), epochs=recipe.get("train", {}).get("epochs"),
        examples_per_second=summary.get("train_examples_per_second"), exports=summary.get("exports", []),
        update=read_json(run_dir / "update.json") if (run_dir / "update.json").is_file() else None,
    )


def list_runs(runs_dir: Path, name: str | None = None) -> list[RunInfo]:
    """Run directories under ``runs_dir`` (of recipe ``name``, if given), newest first."""
    if not runs_dir.is_dir():
        return []
    found = [p for p in runs_dir.iterdir() if p.is_dir() and p.name.startswith(f"{name or ''}")
             and (name is None or (read_json(p / "recipe.resolved.json") or {}).get("name") == name)]
    return [read_run(p) for p in sorted(found, key=lambda p: p.name, reverse=True)]


def latest_run(runs_dir: Path, name: str | None = None, *, with_onnx: bool = False) -> Path | None:
    """The newest finished run (with an ONNX bundle, if asked)."""
    for run in list_runs(runs_dir, name):
        if run.status == "finished" and (not with_onnx or (run.path / "exports" / "onnx" / "manifest.json").is_file()):
            return run.path
    return None


def read_log(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Complete JSON lines of ``metrics.jsonl`` from byte ``offset``; returns them and the new offset
    (a line still being written is left for the next call)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return [], offset
    end = data.rfind(b"\n") + 1
    records = []
    for line in data[:end].splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records, offset + end
