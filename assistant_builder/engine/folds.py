"""``builder run RECIPE --folds K``: k-fold cross-validation, each fold a normal run.

The examples come from the training data only: ``data.train`` with whatever ``load_data`` held out
of it for validation put back. A recipe that sets ``data.validation`` is refused (the validation
file is meant to stay unseen) unless ``include_validation`` is given; then train and validation
are pooled. ``text_class`` tasks (classification) get folds stratified by label
(scikit-learn ``StratifiedKFold``); other tasks plain shuffled folds (``KFold``); both seeded
with ``data.split_seed``.

Layout::

    RUNS/<name>-cv-<timestamp>/
        fold-1/ ... fold-K/     normal run directories (export off), each with fold.json
        cv_summary.json         per-fold metrics, mean and std (sample, ddof=1) of every metric
        cv_report.md            the same as a table
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant_builder.atomic import atomic_write_json, atomic_write_text
from assistant_builder.contracts import TaskData
from assistant_builder.engine import rundir
from assistant_builder.engine.store_data import materialise_store_data
from assistant_builder.errors import ConfigError, ConfigIssue, DataError
from assistant_builder.recipe.loader import LoadedRecipe

__all__ = ["CrossValidation", "check_fold_request", "fold_splits", "run_folds", "summarise", "render_table"]

SUMMARY_FILE = "cv_summary.json"
REPORT_FILE = "cv_report.md"


@dataclass
class CrossValidation:
    """Where the folds were written and what they scored (``summary`` is ``cv_summary.json``)."""

    cv_dir: Path
    summary: dict[str, Any]


def check_fold_request(loaded: LoadedRecipe, folds: int, include_validation: bool) -> None:
    """Raise ``ConfigError`` (located in the recipe) if ``--folds`` cannot run on this recipe."""
    issues = []
    if folds < 2:
        issues.append(ConfigIssue("--folds", f"expected at least 2 folds, got {folds}"))
    if loaded.recipe.data.validation is not None and not include_validation:
        issues.append(ConfigIssue("data.validation", f"is set ({loaded.recipe.data.validation}); --folds cross-validates on the "
                                  "training data only and would leave it unused. Remove data.validation to keep it unseen, "
                                  "or pass --folds-include-validation to pool train and validation before splitting"))
    if issues:
        raise ConfigError(str(loaded.source), issues)


def fold_splits(task: Any, examples: Sequence[Any], folds: int, seed: int) -> tuple[list[list[int]], bool]:
    """The validation positions of each fold (together a partition of ``range(len(examples))``),
    and whether they are stratified by label (``text_class`` tasks)."""
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    if len(examples) < folds:
        raise DataError(f"{folds} folds need at least {folds} examples, the data has {len(examples)}", hint="lower --folds")
    positions = np.arange(len(examples))
    labels = [task.example_view(e).label for e in examples] if task.labelling_kind == "text_class" else None
    if labels is not None and all(label is not None for label in labels):
        counts: dict[str, int] = {}
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
        if max(counts.values()) >= folds:
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
            return [sorted(valid.tolist()) for _, valid in splitter.split(positions, labels)], True
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    return [sorted(valid.tolist()) for _, valid in splitter.split(positions)], False


def _fold_recipe(loaded: LoadedRecipe) -> LoadedRecipe:
    """The recipe a fold runs: export off (a fold's model is not shipped)."""
    recipe = loaded.recipe
    return dataclasses.replace(loaded, recipe=recipe.model_copy(update={"export": recipe.export.model_copy(update={"formats": []})}))


def summarise(per_fold: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and sample standard deviation (0 for one fold) of every metric all folds report."""
    keys = [k for k in per_fold[0]["metrics"] if all(isinstance(f["metrics"].get(k), (int, float)) for f in per_fold)]
    mean = {k: statistics.fmean(f["metrics"][k] for f in per_fold) for k in keys}
    std = {k: statistics.stdev([f["metrics"][k] for f in per_fold]) if len(per_fold) > 1 else 0.0 for k in keys}
    return mean, std


def render_table(summary: dict[str, Any]) -> str:
    """Per-fold metrics and mean ± std as a Markdown table (what ``builder run --folds`` prints)."""
    keys = list(summary["mean"])
    lines = ["| fold | train | validation | " + " | ".join(keys) + " |", "|---" * (3 + len(keys)) + "|"]
    for fold in summary["per_fold"]:
        values = " | ".join(f"{fold['metrics'][k]:.4f}" for k in keys)
        lines.append(f"| {fold['fold']} | {fold['train_examples']} | {fold['validation_examples']} | {values} |")
    values = " | ".join(f"{summary['mean'][k]:.4f} ± {summary['std'][k]:.4f}" for k in keys)
    lines.append(f"| mean ± std | | | {values} |")
    return "\n".join(lines)


def run_folds(loaded: LoadedRecipe, registry: Any, folds: int, *, include_validation: bool = False,
              callbacks: Callable[[int], Sequence[Any]] = lambda fold: (), stop_event: threading.Event | None = None,
              overrides: Sequence[str] = ()) -> CrossValidation:
    """Run ``folds`` folds of the recipe's data and write ``cv_summary.json`` and ``cv_report.md``.

    ``callbacks(fold)`` gives the callbacks of fold ``fold`` (1-based); any of them with a
    ``close()`` method is closed when the fold ends. Raises ``ConfigError`` for a request that
    cannot run (see ``check_fold_request``) and whatever a fold's run raises.
    """
    from assistant_builder.engine.run import run

    check_fold_request(loaded, folds, include_validation)
    recipe = loaded.recipe
    task = registry.create("task", recipe.task.type)
    options = task.Options.model_validate(recipe.task.options)
    data = recipe.data.model_copy(update={
        "train": loaded.resolve(recipe.data.train),
        "validation": loaded.resolve(recipe.data.validation) if recipe.data.validation else None,
    })
    cv_dir = rundir.create_run_dir(loaded.resolve(recipe.output.runs_dir), f"{recipe.name}-cv")
    data = materialise_store_data(data, task, options, cv_dir)
    loaded_data = task.load_data(data, options)
    pooled = [*loaded_data.train, *loaded_data.validation]  # held-out validation goes back unless it is data.validation
    splits, stratified = fold_splits(task, pooled, folds, recipe.data.split_seed)
    fold_loaded = _fold_recipe(loaded)
    per_fold: list[dict[str, Any]] = []
    for number, validation_positions in enumerate(splits, start=1):
        held = set(validation_positions)
        fold_data = TaskData([e for i, e in enumerate(pooled) if i not in held], [pooled[i] for i in validation_positions],
                             loaded_data.labels, loaded_data.sources)
        fold_dir = cv_dir / f"fold-{number}"
        fold_dir.mkdir()
        fold_callbacks = list(callbacks(number))
        try:
            result = run(fold_loaded, registry, fold_callbacks, stop_event, overrides=overrides, task_data=fold_data, run_dir=fold_dir)
        finally:
            for callback in fold_callbacks:
                close = getattr(callback, "close", None)
                if callable(close):
                    close()
        atomic_write_json(fold_dir / "fold.json", {
            "fold": number, "folds": folds, "train_examples": len(fold_data.train), "validation_examples": len(fold_data.validation),
            "validation_indices": validation_positions,
            "validation_sources": [task.example_view(e).source for e in fold_data.validation],
        })
        per_fold.append({"fold": number, "run_dir": str(fold_dir), "train_examples": len(fold_data.train),
                         "validation_examples": len(fold_data.validation),
                         "metrics": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}})
    mean, std = summarise(per_fold)
    summary = {
        "name": recipe.name, "task": task.name, "metric": recipe.train.metric or task.primary_metric, "folds": folds,
        "stratified": stratified, "include_validation": include_validation, "examples": len(pooled), "seed": recipe.data.split_seed,
        "per_fold": per_fold, "mean": mean, "std": std,
    }
    atomic_write_json(cv_dir / SUMMARY_FILE, summary)
    atomic_write_text(cv_dir / REPORT_FILE, "\n".join([
        f"# Cross-validation: {recipe.name}", "",
        f"{folds} folds ({'stratified by label' if stratified else 'shuffled'}, seed {recipe.data.split_seed}) over "
        f"{len(pooled)} examples ({'train and validation pooled' if include_validation else 'training data only'}); "
        "each fold a full run with export off. std is the sample standard deviation over folds.", "",
        render_table(summary), ""]))
    return CrossValidation(cv_dir, summary)
