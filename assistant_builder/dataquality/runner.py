"""Run the data checks on a recipe's data: ``check_recipe`` (``builder data check``) and
``check_loaded`` (the short check ``builder run`` does on the data it has already loaded).

The task hands over its examples as ``ExampleView``s (``Task.check_examples`` /
``Task.example_view``); the generic checks (``generic.py``, ``vocabulary.py``) run on those, then
the task's own ``Task.check_data``. Torch-free: the base model's ``tokenizer.json`` is read with
``tokenizers``; a base model that cannot be loaded skips the checks that need it, with a note.
"""

from __future__ import annotations

import re
import tempfile
import time
import warnings
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from assistant_builder.contracts import CheckContext, CheckData, ExampleView, Finding, Task
from assistant_builder.dataquality.generic import Collector, label_findings, length_findings, text_findings
from assistant_builder.dataquality.report import Report, group_findings
from assistant_builder.dataquality.vocabulary import vocabulary_fit


def load_check_tokenizer(model_dir: Path) -> Any | None:
    """The base model's ``tokenizer.json`` without truncation or padding, or None if it has none."""
    from tokenizers import Tokenizer

    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():
        return None
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def run_checks(task: Task, options: Any, data: Any, examples: CheckData, context: CheckContext, task_checks: bool = True,
               model_name: str = "", no_tokenizer: str = "the base model has no tokenizer.json",
               ) -> tuple[list[Finding], dict[str, int], list[str], dict[str, Any]]:
    """The generic checks on ``examples`` (the vocabulary fit of ``model_name``, ``model.base``,
    included), then (``task_checks``) the task's own ``check_data``.

    Returns the findings, the example count per split, notes (the vocabulary figure; checks that
    could not run, ``no_tokenizer`` saying why when there is no tokenizer) and extra report fields
    (``{"vocabulary": ...}``).
    """
    collector = Collector()
    collector.add_all(0, examples.train)
    collector.add_all(1, examples.validation)
    notes: list[str] = []
    files = {split: str(getattr(data, split)) for split in ("train", "validation") if getattr(data, split, None) is not None}
    class_weighting = getattr(options, "class_weighting", None)
    findings: list[Finding] = []
    extra: dict[str, Any] = {}
    if context.tokenizer is not None:  # first: a model that cannot read the data is the most basic problem
        fit = vocabulary_fit(collector, context.tokenizer, model_name)
        findings += fit.findings
        notes.append(fit.summary())
        extra["vocabulary"] = fit.to_dict()
    findings += text_findings(collector)
    findings += label_findings(collector, examples.held_out, files, class_weighting if isinstance(class_weighting, str) else None)
    if context.tokenizer is not None:
        findings += length_findings(collector, context.tokenizer, context.max_length, getattr(task, "long_inputs", "truncate"))
    else:
        notes.append(f"{no_tokenizer}: input lengths and vocabulary were not checked")
    if task_checks:
        findings += task.check_data(data, options, context)
    counts = {"train": collector.count(0), "validation": collector.count(1)}
    return findings, counts, notes, extra


def _resolved_data(loaded: Any) -> Any:
    recipe = loaded.recipe
    return recipe.data.model_copy(update={
        "train": loaded.resolve(recipe.data.train),
        "validation": loaded.resolve(recipe.data.validation) if recipe.data.validation else None,
    })


def check_recipe(loaded: Any, registry: Any, keep_train: bool = False) -> tuple[Report, list[ExampleView]]:
    """Check the data of a loaded recipe (``recipe.loader.LoadedRecipe``); return the report and
    (``keep_train``) the training views, for the label-error search.

    Labelling stores named as data are read through their export (labelled items only), and their
    findings name the store's item ids (``project.labels.sqlite#17``). Bad or unreadable data raises
    the task's located ``DataError``.
    """
    from assistant_builder.basemodels import resolve_base_model
    from assistant_builder.engine.store_data import is_store, materialise_store_data

    started = time.perf_counter()
    recipe = loaded.recipe
    task = registry.create("task", recipe.task.type)
    options = task.Options.model_validate(recipe.task.options)
    data = _resolved_data(loaded)
    no_tokenizer = "the base model has no tokenizer.json"
    model_dir = None
    try:
        model_dir = resolve_base_model(recipe.model.base, loaded.base_dir)
        tokenizer = load_check_tokenizer(model_dir)
    except Exception as error:  # noqa: BLE001 - an unresolvable base model (a hub id not cached) skips these checks only
        hint = f"; {error.hint}" if getattr(error, "hint", None) else ""
        tokenizer, no_tokenizer = None, f"model.base \"{recipe.model.base}\" could not be loaded ({error}{hint})"
    context = CheckContext(recipe.model.max_length, tokenizer, model_dir)
    with tempfile.TemporaryDirectory(prefix="builder-data-check-") as tmp:
        stores = {split: Path(getattr(data, split)) for split in ("train", "validation") if is_store(getattr(data, split))}
        if stores:
            data = materialise_store_data(data, task, options, Path(tmp))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # readers' repair warnings are findings here
            examples = task.check_examples(data, options)
            kept: list[ExampleView] = []
            if keep_train:
                kept = list(examples.train)
                examples = CheckData(kept, examples.validation, examples.held_out)
            findings, counts, notes, extra = run_checks(task, options, data, examples, context, model_name=recipe.model.base,
                                                        no_tokenizer=no_tokenizer)
        if stores:
            rename = _store_locations(data, stores, task)
            findings = [_renamed(f, rename) for f in findings]
            notes = [_rename_one(n, rename) for n in notes]
            extra = _renamed_json(extra, rename)
            kept = [replace(v, source=_rename_one(v.source, rename)) for v in kept]
    report = Report(str(loaded.source), task.name, counts, group_findings(findings), time.perf_counter() - started,
                    examples.held_out, notes, extra)
    return report, kept


def check_loaded(task: Task, options: Any, data: Any, train: Iterable[Any], validation: Iterable[Any], tokenizer_dir: Path,
                 max_length: int, recipe_path: str, model_name: str = "") -> Report:
    """The same checks on examples ``task.load_data`` already returned (``builder run``'s short check).
    ``model_name``: ``model.base`` as the recipe names it (default: the folder's name)."""
    started = time.perf_counter()
    examples = CheckData((task.example_view(e) for e in train), (task.example_view(e) for e in validation),
                         held_out=data.validation is None)
    context = CheckContext(max_length, load_check_tokenizer(tokenizer_dir), Path(tokenizer_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        findings, counts, notes, extra = run_checks(task, options, data, examples, context,
                                                    model_name=model_name or Path(tokenizer_dir).name)
    return Report(recipe_path, task.name, counts, group_findings(findings), time.perf_counter() - started, examples.held_out, notes,
                  extra)


def _store_locations(data: Any, stores: dict[str, Path], task: Task) -> dict[str, Any]:
    """For each exported store file: its path -> (store path, item ids by export line) so that
    ``RUN/data/train.jsonl:3`` reads ``project.labels.sqlite#42`` (one exported line per item)."""
    from assistant_builder.labelling.store import LABELLED, LabelStore

    rename: dict[str, Any] = {}
    for split, store_path in stores.items():
        exported = str(getattr(data, split))
        ids: list[int] = []
        if getattr(task, "labelling_kind", "") in ("text_class", "token_spans"):
            with LabelStore(store_path) as store:
                ids = [item.id for item in store.items(LABELLED)]
        rename[exported] = (str(store_path), ids)
    return rename


def _rename_one(text: str, rename: dict[str, Any]) -> str:
    """Every ``exported-file:LINE`` in ``text`` as ``store#ITEM`` (or the store path where lines do not map)."""
    for exported, (store_path, ids) in rename.items():
        def item(match: re.Match[str], store_path: str = store_path, ids: list[int] = ids) -> str:
            line = int(match.group(1)) if match.group(1) else 0
            return f"{store_path}#{ids[line - 1]}" if ids and 0 < line <= len(ids) else store_path + match.group(0)[len(exported):]
        text = re.sub(re.escape(exported) + r"(?::(\d+))?", item, text)
    return text


def _renamed_json(value: Any, rename: dict[str, Any]) -> Any:
    """Every string inside a JSON-like ``value`` with its exported locations renamed (``_rename_one``)."""
    if isinstance(value, str):
        return _rename_one(value, rename)
    if isinstance(value, dict):
        return {k: _renamed_json(v, rename) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed_json(v, rename) for v in value]
    return value


def _renamed(finding: Finding, rename: dict[str, Any]) -> Finding:
    return replace(finding, where=_rename_one(finding.where, rename), message=_rename_one(finding.message, rename),
                   related=tuple(_rename_one(r, rename) for r in finding.related))
