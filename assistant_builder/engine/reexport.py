"""Export a finished run again, without retraining: other formats, other exporter options (int8...).

``export_run(run_dir, registry, formats, options)`` reloads the run's saved model (``model/``), its
resolved recipe and its validation data, recomputes the PyTorch reference predictions, and hands
everything to the same ``export_and_verify`` a training run uses: each ``exports/<format>/`` bundle
is rebuilt atomically and verified against the recipe's thresholds.

The run's ``export_report.json``/``.md`` and the ``exports`` list of ``summary.json`` are then
merged: a format exported again replaces its old rows, the other formats' rows are kept. Like the
engine, it raises ``ExportVerificationError`` (after writing the reports) when an export breaks a
threshold. Knows no UI; reports through callbacks (``StageStarted``, ``ExportVerified``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant_builder.atomic import atomic_write_json, atomic_write_text
from assistant_builder.batching import extra_inputs
from assistant_builder.callbacks import Callback, CallbackList, ExportVerified, StageStarted
from assistant_builder.contracts import ExportJob
from assistant_builder.engine.exporting import export_and_verify
from assistant_builder.engine.run import TASK_OPTIONS_FILE, example_inputs
from assistant_builder.engine.rundir import file_sha256
from assistant_builder.engine.verify import VerificationReport, render_export_report
from assistant_builder.errors import ConfigError, ConfigIssue, DataError, ModelError



def saved_task_options(run_dir: Path, task: Any, options: Any) -> Any:
    """The task options the run trained with (``task_options.json``). A run written before that file
    existed gets the recipe's options as they are: its ``"auto"`` choices stay unresolved, which a
    task must read as the behaviour of that earlier version (so the re-export matches the model)."""
    saved = _read_json(run_dir / TASK_OPTIONS_FILE)
    return task.Options.model_validate(saved) if isinstance(saved, dict) else options


@dataclass
class ExportOutcome:
    """What ``export_run`` did: this export's verification reports, and notes worth showing."""

    run_dir: Path
    reports: list[VerificationReport]
    notes: list[str] = field(default_factory=list)


class _Collect(Callback):
    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []

    def on_export_verified(self, event: ExportVerified) -> None:
        self.reports.append(dict(event.report))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _as_report(row: Mapping[str, Any]) -> VerificationReport:
    return VerificationReport(**{**row, "failures": tuple(row.get("failures") or ())})


def model_labels(model_dir: Path) -> list[str] | None:
    """The label order the saved model was trained with (``id2label`` of its config), if it has one."""
    config = _read_json(model_dir / "config.json") or {}
    id2label = config.get("id2label")
    if not id2label:
        return None
    return [str(id2label[key]) for key in sorted(id2label, key=int)]


def merge_reports(run_dir: Path, old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Write ``export_report.json``/``.md`` and ``summary.json``'s ``exports``: the ``new`` rows replace
    the ``old`` rows of the same exporters, the others stay. Returns the merged rows."""
    exporters = {row["exporter"] for row in new}
    kept = [dict(row) for row in old if row.get("exporter") not in exporters]
    merged = sorted(kept + [dict(row) for row in new], key=lambda row: str(row.get("exporter")))  # stable: variants keep their order
    atomic_write_json(run_dir / "export_report.json", merged)
    atomic_write_text(run_dir / "export_report.md", render_export_report([_as_report(row) for row in merged]))
    summary = _read_json(run_dir / "summary.json")
    if isinstance(summary, dict):
        atomic_write_json(run_dir / "summary.json", {**summary, "exports": merged})
    return merged


def export_run(run_dir: str | Path, registry: Any, formats: Sequence[str] | None = None,
               options: Mapping[str, Mapping[str, Any]] | None = None, callbacks: Sequence[Callback] = ()) -> ExportOutcome:
    """Export the trained model of ``run_dir`` with ``formats`` (default: the recipe's ``export.formats``)
    and verify every artefact, as ``builder run`` does at the end of training.

    ``options`` maps an exporter name to option values that override the recipe's
    ``[export.options.<name>]`` (for example ``{"onnx": {"quantize": True}}``). Raises
    ``ConfigError`` for unknown formats or options, ``ModelError`` when the run has no saved model,
    ``DataError`` when its validation data can no longer be read, and ``ExportVerificationError``
    (reports already written) when an export breaks the recipe's thresholds.
    """
    from assistant_builder.engine.torch_runner import torch_runner
    from assistant_builder.inference import run_features
    from assistant_builder.recipe.loader import load_run_recipe, validate_components
    from assistant_builder.tokenization import load_tokenizer, pad_token_id

    run_dir = Path(run_dir)
    model_dir = run_dir / "model"
    if not (model_dir / "tokenizer.json").is_file():
        raise ModelError(f"{run_dir}: no trained model to export (model/ is missing or incomplete); expected a finished run",
                         hint="finish (or resume) training first: builder run --resume " + str(run_dir))
    loaded = load_run_recipe(run_dir, registry=registry)
    recipe = loaded.recipe
    formats = list(recipe.export.formats if formats is None else formats)
    merged_options = {name: {**recipe.export.options.get(name, {}), **(options or {}).get(name, {})} for name in formats}
    export = recipe.export.model_copy(update={"formats": formats, "options": merged_options})
    recipe = recipe.model_copy(update={"export": export})
    issues = [issue for issue in validate_components(recipe, registry) if issue.location.startswith("export")]
    if not formats:
        issues.append(ConfigIssue("export.formats", f"expected at least one format (installed: {', '.join(registry.names('exporter'))}), got none"))
    if issues:
        raise ConfigError(f"export of {run_dir.name}", issues)

    events = CallbackList([*callbacks])
    collect = _Collect()
    task = registry.create("task", recipe.task.type)
    task_options = task.Options.model_validate(recipe.task.options)
    exporters = [registry.create("exporter", name) for name in formats]
    metric = recipe.train.metric or task.primary_metric
    notes: list[str] = []

    events.on_stage_start(StageStarted("load data", "validation set of the run"))
    provenance = _read_json(run_dir / "provenance.json") or {}
    recorded = provenance.get("data") or {}
    files = {split: Path(entry["path"]) for split, entry in recorded.items() if entry.get("path")}
    data = recipe.data.model_copy(update={k: files[k] for k in ("train", "validation") if k in files})
    for split, entry in recorded.items():
        path = files.get(split)
        if path is not None and path.is_file() and entry.get("sha256") and file_sha256(path) != entry["sha256"]:
            notes.append(f"{path.name} changed since training; the verification scores the file as it is now")
    task_data = task.load_data(data, task_options)
    labels = model_labels(model_dir) or list(task_data.labels)
    unknown = [label for label in task_data.labels if label not in labels]
    if unknown:
        raise DataError(f"the data now has labels the trained model does not know: {', '.join(unknown)}",
                        hint="train a new run on the current data, then export that one")

    events.on_stage_start(StageStarted("load model", str(model_dir)))
    tokenizer = load_tokenizer(model_dir, recipe.model.max_length)
    pad_id = pad_token_id(tokenizer)
    model = task.load_model(model_dir)
    task_options = saved_task_options(run_dir, task, task_options)
    input_names = task.model_input_names(task_options)
    features = task.encode(task_data.validation, tokenizer, labels, task_options, recipe.model.max_length)

    events.on_stage_start(StageStarted("reference", f"PyTorch predictions on {len(task_data.validation)} validation examples"))
    reference = run_features(torch_runner(model, task.output_names), features, pad_id, task.output_names, task.sequence_outputs,
                             input_keys=extra_inputs(input_names))
    reference_predictions = task.decode(reference, features, task_data.validation, labels, task_options)
    sample = features[: min(4, len(features))]
    example_batch = example_inputs(task, sample, pad_id, input_names)

    events.on_stage_start(StageStarted("export", ", ".join(formats)))
    previous = _read_json(run_dir / "export_report.json") or []  # export_and_verify rewrites it with this export's rows only
    try:
        reports = export_and_verify(
            exporters=exporters, recipe=recipe, registry_task=task, task_options=task_options, model=model,
            example_batch=example_batch, run_dir=run_dir, features=features, examples=task_data.validation, labels=labels,
            reference=reference, reference_predictions=reference_predictions, metric=metric, pad_id=pad_id, tokenizer=tokenizer,
            base_model=recipe.model.base, callbacks=CallbackList([collect, events]),
            make_job=lambda exporter, out: ExportJob(model, example_batch, input_names, task.output_names, out,
                                                     exporter.Options.model_validate(merged_options.get(exporter.name, {}))),
        )
    finally:
        if collect.reports:  # also when verification failed: the report says why
            merge_reports(run_dir, previous, collect.reports)
    return ExportOutcome(run_dir, list(reports), notes)
