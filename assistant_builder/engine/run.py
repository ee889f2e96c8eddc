"""``run()``: the whole pipeline for one recipe. Knows no UI; reports through callbacks."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant_builder.atomic import atomic_directory, atomic_write_bytes, atomic_write_json, atomic_write_text
from assistant_builder.basemodels import is_alias, resolve_base_model_source
from assistant_builder.batching import extra_inputs
from assistant_builder.callbacks import Callback, CallbackList, RunEnded, RunStarted, StageStarted
from assistant_builder.contracts import DecisionRule, ExportJob, TaskData, TrainingJob, TrainingOutcome, evaluate_with_options, is_generative
from assistant_builder.engine import rundir
from assistant_builder.engine.augmenting import augment_training
from assistant_builder.engine.augmenting import describe as describe_augment
from assistant_builder.engine.small_data import adjust_training
from assistant_builder.distributed import process_rank
from assistant_builder.engine.exporting import export_and_verify
from assistant_builder.engine.extra_data import add_extra_data
from assistant_builder.engine.extra_data import describe as describe_extra
from assistant_builder.engine.metrics_log import MetricsLog
from assistant_builder.engine.seeding import seed_everything
from assistant_builder.engine.store_data import materialise_store_data
from assistant_builder.engine import warm_start as ws
from assistant_builder.errors import ConfigError, ConfigIssue, RunInterrupted, TrainingError
from assistant_builder.inference import run_features
from assistant_builder.recipe.loader import LoadedRecipe, enabled_loggers
from assistant_builder.tokenization import load_tokenizer, pad_token_id
from assistant_builder.toolkit.readers import TagRepairWarning

#: the task options a run used, after ``Task.resolve_options`` (re-exports read them back)
TASK_OPTIONS_FILE = "task_options.json"


def example_inputs(task: Any, features: Sequence[dict[str, Any]], pad_id: int, input_names: Sequence[str]) -> dict[str, Any]:
    """A small batch of model inputs only (no targets), as the task collates it: what exporters trace with."""
    bare = [{k: f[k] for k in ("input_ids", "token_type_ids", *extra_inputs(input_names)) if k in f} for f in features]
    return {k: v for k, v in task.collate(bare, pad_id).items() if k in input_names}


@dataclass
class RunResult:
    """Where the run's artefacts are and its headline figures."""

    run_dir: Path
    metrics: dict[str, float]
    exports: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def resolved_recipe(loaded: LoadedRecipe) -> dict[str, Any]:
    """The recipe with defaults and overrides applied and every path made absolute (for --resume)."""
    recipe = loaded.recipe
    data = recipe.data.model_copy(update={
        "train": loaded.resolve(recipe.data.train),
        "validation": loaded.resolve(recipe.data.validation) if recipe.data.validation else None,
        "extra": [loaded.resolve(path) for path in recipe.data.extra],
    })
    base = recipe.model.base
    if not is_alias(base):  # a local folder as an absolute path, a Hub id pinned to its commit (ID@COMMIT)
        base = resolve_base_model_source(base, loaded.base_dir).pinned
    resolved = recipe.model_copy(update={
        "data": data,
        "model": recipe.model.model_copy(update={"base": base}),
        "output": recipe.output.model_copy(update={"runs_dir": loaded.resolve(recipe.output.runs_dir)}),
    })
    return resolved.model_dump(mode="json")


def run(loaded: LoadedRecipe, registry: Any, callbacks: Sequence[Callback] = (), stop_event: threading.Event | None = None,
        overrides: Sequence[str] = (), resume_dir: Path | None = None, *, task_data: TaskData | None = None,
        run_dir: Path | None = None, from_run: Path | None = None) -> RunResult:
    """Train, evaluate, export and verify as ``loaded`` describes; write everything to a new run directory.

    With ``resume_dir``, continue that run from its newest intact checkpoint instead. ``task_data``
    (cross-validation folds) replaces the examples ``data.train``/``data.validation`` would load;
    ``run_dir`` is a new, empty directory to write the run to instead of one under ``output.runs_dir``.
    ``from_run``: a warm-start update of that finished run (``engine/warm_start.py``): it trains on
    what is new plus a replay sample, and raises ``UpdateRefused`` (nothing exported) when it forgot
    too much or did not learn what was new.
    Raises ``BuilderError`` subclasses for anything the user can fix; ``RunInterrupted`` (after
    writing a checkpoint) if ``stop_event`` is set before training finished.
    """
    recipe = loaded.recipe
    stop_event = stop_event or threading.Event()
    task = registry.create("task", recipe.task.type)
    trainer = registry.create("trainer", recipe.train.trainer)
    exporters = [registry.create("exporter", name) for name in recipe.export.formats]
    task_options = task.Options.model_validate(recipe.task.options)
    trainer_options = trainer.Options.model_validate(recipe.train.options)
    base_source = resolve_base_model_source(recipe.model.base, loaded.base_dir, download=True)
    base_model = base_source.path
    generative = is_generative(task)
    if generative:  # a causal LM: its own check, and what the model settles (chat template, end ids) kept in the options
        exporters = _generation_exporters(task, exporters, "formats" in recipe.export.model_fields_set, str(loaded.source))
        task_options = task.prepare_for_model(task_options, base_model, recipe.model.max_length)
    else:
        from assistant_builder.toolkit.encoder import check_encoder_folder  # imports torch

        check_encoder_folder(base_model, recipe.model.max_length)  # an architecture or a max_length that cannot work: a ModelError now
    data = recipe.data.model_copy(update={
        "train": loaded.resolve(recipe.data.train),
        "validation": loaded.resolve(recipe.data.validation) if recipe.data.validation else None,
        "extra": [loaded.resolve(path) for path in recipe.data.extra],
    })
    metric = recipe.train.metric or task.primary_metric
    if resume_dir is not None and from_run is None:  # an interrupted update resumes from the same parent
        recorded = (ws.read_update_record(resume_dir) or {}).get("parent")
        from_run = Path(recorded) if recorded else None
    parent = None
    if from_run is not None:
        if generative:
            raise ConfigError(str(loaded.source), [ConfigIssue("--from", f"updates of a '{task.name}' run are not supported yet; "
                                                               "train a full run (builder run RECIPE)")])
        parent = ws.load_parent(from_run, task.name, resolved_recipe(loaded)["model"]["base"], str(loaded.source))

    rank, _ = process_rank()
    if rank == 0:
        run_dir = resume_dir or run_dir or rundir.create_run_dir(loaded.resolve(recipe.output.runs_dir), recipe.name)
    else:  # other ranks of a distributed run train their shard and write nothing to the run directory
        run_dir = Path(tempfile.mkdtemp(prefix=f"assistant-builder-rank{rank}-"))
    log = MetricsLog(run_dir / "metrics.jsonl")
    loggers = _create_loggers(recipe.log, registry, run_dir) if rank == 0 else []
    events = CallbackList([log, *loggers, *callbacks])
    try:
        events.on_stage_start(StageStarted("load data", str(data.train)))
        if task_data is None:
            data = materialise_store_data(data, task, task_options, run_dir)
            with warnings.catch_warnings():  # repaired tags and widened spans: findings of the data check below, each at its line
                warnings.simplefilter("ignore", TagRepairWarning)
                task_data = task.load_data(data, task_options)
        extra: dict[str, Any] = {}
        if data.extra:
            events.on_stage_start(StageStarted("extra data", ", ".join(str(path) for path in data.extra)))
            task_data, extra = add_extra_data(task, task_data, data.extra, task_options, run_dir)
            events.on_stage_start(StageStarted("extra data", describe_extra(extra)))
        plan = None
        if parent is not None:
            plan = ws.plan_update(task, task_data, parent, task_options, recipe.update, recipe.train.seed)
            ws.check_can_extend(task, parent, plan.new_labels, str(loaded.source))
            task_data = plan.task_data
            events.on_stage_start(StageStarted("update", ws.describe_plan(plan.report)))
            if rank == 0:
                ws.write_update_record(run_dir, {"parent": str(parent.run_dir), "plan": plan.report, "gate": None})
        if resume_dir is None and rank == 0:
            rundir.write_recipe_copies(run_dir, loaded.source, resolved_recipe(loaded))
            provenance = rundir.write_provenance(run_dir, loaded.source, task_data.sources, recipe.train.seed, base_model, list(overrides),
                                                 base_model_source=base_source)
            if extra:  # how many training examples came from each source
                provenance["data"]["extra"] = extra["stores"]
                provenance["training_examples"] = extra["training_examples"]
                atomic_write_json(run_dir / "provenance.json", provenance)
            if parent is not None and plan is not None:
                provenance["parent"] = {"run_dir": str(parent.run_dir), "metric": parent.metric, "metrics": parent.metrics}
                provenance["update"] = {k: v for k, v in plan.report.items() if not k.endswith("_inputs")}
                atomic_write_json(run_dir / "provenance.json", provenance)
        if rank == 0:
            ws.record_example_sets(task, task_data, run_dir, train=plan.known_train if plan is not None else None)
        events.on_run_start(RunStarted(run_dir, recipe.name, task.name, trainer.name, len(task_data.train),
                                       len(task_data.validation), tuple(task_data.labels)))
        if rank == 0:
            _data_check(events, task, task_options, data, task_data, base_model, recipe.model.max_length, loaded, run_dir)
        augment = recipe.train.augment
        original_train = len(task_data.train)
        task_data, augmented = augment_training(task, task_data, augment, recipe.train.seed)
        if augment.copies:
            events.on_stage_start(StageStarted("augment", describe_augment(task, augment, original_train, augmented)))
            if resume_dir is None and rank == 0:
                provenance["augmented_examples"] = augmented  # written just above, by this same process
                atomic_write_json(run_dir / "provenance.json", provenance)

        events.on_stage_start(StageStarted("encode", f"{len(task_data.train)} + {len(task_data.validation)} examples"))
        tokenizer = load_tokenizer(base_model, recipe.model.max_length)
        pad_id = pad_token_id(tokenizer)
        task_options = task.resolve_options(task_options, task_data, tokenizer)
        if rank == 0:
            atomic_write_json(run_dir / TASK_OPTIONS_FILE, task_options.model_dump(mode="json"))
        input_names = task.model_input_names(task_options)
        input_keys = extra_inputs(input_names)
        train_features = task.encode(task_data.train, tokenizer, task_data.labels, task_options, recipe.model.max_length)
        valid_features = task.encode(task_data.validation, tokenizer, task_data.labels, task_options, recipe.model.max_length)

        events.on_stage_start(StageStarted("build model", str(parent.model_dir if parent is not None else base_model)))
        seed_everything(recipe.train.seed)
        if parent is not None:
            model = ws.warm_start_model(task, parent, task_data.labels, task_options, train_features)
        else:
            model = task.build_model(base_model, task_data.labels, task_options, train_features)

        def predict(m: Any) -> tuple[Any, list[dict[str, Any]]]:
            from assistant_builder.engine.torch_runner import torch_runner

            outputs = run_features(torch_runner(m, task.output_names), valid_features, pad_id, task.output_names, task.sequence_outputs,
                                   input_keys=input_keys)
            return outputs, task.decode(outputs, valid_features, task_data.validation, task_data.labels, task_options)

        def predict_examples(m: Any, examples: Sequence[Any], options: Any, labels: Sequence[str] | None = None) -> list[dict[str, Any]]:
            """``m``'s predictions on ``examples``, decoded with ``labels`` (default: the run's; a parent: its own)."""
            from assistant_builder.engine.torch_runner import torch_runner

            features = task.encode(examples, tokenizer, task_data.labels, options, recipe.model.max_length)
            outputs = run_features(torch_runner(m, task.output_names), features, pad_id, task.output_names, task.sequence_outputs,
                                   input_keys=input_keys)
            return task.decode(outputs, features, examples, list(labels or task_data.labels), options)

        def evaluate(m: Any) -> dict[str, float]:
            _, predictions = predict(m)
            metrics = evaluate_with_options(task, predictions, task_data.validation, task_data.labels, task_options).metrics
            if metric not in metrics:
                raise TrainingError(f"train.metric '{metric}' is not reported by task '{task.name}' on this validation data; "
                                    f"it reports: {', '.join(metrics)}", hint="choose one of those for train.metric")
            return metrics

        train_section = recipe.train
        if parent is not None:  # an update: its own epochs, no minimum step count
            train_section = recipe.train.model_copy(update={"epochs": recipe.update.epochs, "min_steps": 0})
        settings, notes = adjust_training(train_section, task, len(train_features), task_data.validation, process_rank()[1])
        if parent is not None and recipe.update.learning_rate_scale != 1.0:
            settings = ws.scaled_learning_rates(settings, trainer, recipe.update.learning_rate_scale)
            notes = [*notes, f"update: learning rates x{recipe.update.learning_rate_scale:g} (update.learning_rate_scale): "
                     f"{settings.learning_rate:g} encoder, {settings.head_learning_rate:g} head"]
        for note in notes:
            events.on_stage_start(StageStarted("train settings", note))
        if settings.epochs:
            events.on_stage_start(StageStarted("train", f"{trainer.name} trainer"))
        job = TrainingJob(
            model=model, train_features=train_features, collate=lambda feats: task.collate(feats, pad_id), evaluate=evaluate,
            settings=settings, options=trainer_options, metric=metric, checkpoint_dir=run_dir / "checkpoints",
            callbacks=events, stop_event=stop_event, resume_from=(resume_dir / "checkpoints") if resume_dir else None,
        )
        if settings.epochs == 0:  # the base model untouched: the baseline a fine-tuned run is compared against
            events.on_stage_start(StageStarted("train", "train.epochs = 0: evaluating and exporting the base model untouched"))
            outcome = TrainingOutcome(model.eval(), evaluate(model.eval()), 0, 0, 0, False, 0.0)
        else:
            outcome = trainer.train(job)
        if rank != 0:
            shutil.rmtree(run_dir, ignore_errors=True)
            return RunResult(run_dir, outcome.best_metrics)
        if outcome.interrupted:
            raise RunInterrupted(f"training stopped at step {outcome.global_step}; a checkpoint was written to {run_dir / 'checkpoints'}",
                                 hint=f"resume with: builder run --resume {run_dir}")

        events.on_stage_start(StageStarted("evaluate", "best model on the validation set"))
        final_model = outcome.model
        reference_outputs, reference_predictions = predict(final_model)
        rule = task.fit_decision_rule(reference_outputs, valid_features, task_data.validation, task_data.labels, task_options)
        if rule is not None:  # the fitted rule decides from here on: the report, the exports' verification, the bundle
            task_options = rule.options
            atomic_write_json(run_dir / TASK_OPTIONS_FILE, task_options.model_dump(mode="json"))
            reference_predictions = task.decode(reference_outputs, valid_features, task_data.validation, task_data.labels, task_options)
            for name, content in rule.files.items():
                atomic_write_bytes(run_dir / name, content)
            events.on_stage_start(StageStarted("decision rule", describe_rule(rule)))
        if generative:
            reference_predictions = _generate_answers(events, task, task_options, final_model, base_model, outcome.epochs_run,
                                                      reference_predictions, valid_features, task_data, tokenizer)
        evaluation = evaluate_with_options(task, reference_predictions, task_data.validation, task_data.labels, task_options)
        atomic_write_json(run_dir / "metrics.json", {
            "metrics": evaluation.metrics, "metric": metric, "best_epoch": outcome.best_epoch, "epochs_run": outcome.epochs_run,
            "stopped_early": outcome.stopped_early, "history": outcome.history, "train_examples_per_second": outcome.examples_per_second,
            **evaluation.details, **({"decision_rule": rule.summary} if rule else {}),
        })
        atomic_write_text(run_dir / "report.md", evaluation.report + (rule.report if rule else ""))
        atomic_write_text(run_dir / "validation_predictions.jsonl", "".join(
            json.dumps({"index": i, **p}, ensure_ascii=False) + "\n" for i, p in enumerate(reference_predictions)))
        with atomic_directory(run_dir / "model") as model_dir:
            task.save_model(final_model, model_dir, task_data.labels)
            tokenizer.save(str(model_dir / "tokenizer.json"))
        update = None
        if parent is not None and plan is not None:
            events.on_stage_start(StageStarted("update gate", "against the parent, on its validation set and the held-out new examples"))
            update = _gate_update(task, parent, plan, recipe, metric, evaluation.metrics, task_data, task_options, final_model,
                                  predict_examples, run_dir)
            events.on_stage_start(StageStarted("update gate", _describe_gate(update["gate"])))
            if not update["gate"]["passed"]:
                summary = {"run_dir": str(run_dir), "task": task.name, "trainer": trainer.name, "metric": metric,
                           "metrics": evaluation.metrics, "exports": [], "model_dir": str(run_dir / "model"), "update": update}
                atomic_write_json(run_dir / "summary.json", summary)
                raise ws.UpdateRefused(f"{run_dir.name}: not exported: " + "; ".join(update["gate"]["reasons"]),
                                       hint=f"the parent {parent.run_dir.name} stays the model to serve; see {run_dir / ws.UPDATE_FILE}")

        events.on_stage_start(StageStarted("export", ", ".join(e.name for e in exporters) or "none"))
        sample = valid_features[: min(4, len(valid_features))] or train_features[:4]
        example_batch = example_inputs(task, sample, pad_id, input_names)
        export_reports = export_and_verify(
            exporters=exporters, recipe=recipe, registry_task=task, task_options=task_options, model=final_model,
            example_batch=example_batch, run_dir=run_dir, features=valid_features, examples=task_data.validation,
            labels=task_data.labels, reference=reference_outputs, reference_predictions=reference_predictions,
            metric=_export_metric(task, metric, evaluation.metrics), pad_id=pad_id, tokenizer=tokenizer, base_model=recipe.model.base,
            callbacks=events, complete=_completer(task, task_options, valid_features, task_data, tokenizer) if generative else None,
            make_job=lambda exporter, out: ExportJob(final_model, example_batch, input_names, task.output_names, out,
                                                     exporter.Options.model_validate(recipe.export.options.get(exporter.name, {}))),
        )
        summary = {
            "run_dir": str(run_dir), "task": task.name, "trainer": trainer.name, "metric": metric,
            "metrics": evaluation.metrics, "best_epoch": outcome.best_epoch, "epochs_run": outcome.epochs_run,
            "stopped_early": outcome.stopped_early, "train_examples_per_second": outcome.examples_per_second,
            "exports": [r.to_dict() for r in export_reports], "model_dir": str(run_dir / "model"),
            "predict_example": task.predict_example,
        }
        if rule is not None:
            summary["decision_rule"] = rule.summary
        if augment.copies:
            summary["augmented_examples"] = augmented
        if notes:
            summary["train_adjustments"] = notes
        if extra:
            summary["extra_data"] = {"stores": extra["stores"], "training_examples": extra["training_examples"]}
        if update is not None:
            summary["update"] = update
        atomic_write_json(run_dir / "summary.json", summary)
        events.on_run_end(RunEnded(run_dir, summary))
        return RunResult(run_dir, evaluation.metrics, summary["exports"], summary)
    except BaseException as error:
        events.on_exception(error)
        raise
    finally:
        for sink in (log, *loggers):
            close = getattr(sink, "close", None)
            if callable(close):
                close()


def _gate_update(task: Any, parent: ws.Parent, plan: ws.UpdatePlan, recipe: Any, metric: str, metrics: dict[str, float],
                 task_data: TaskData, options: Any, model: Any, predict_examples: Any, run_dir: Path) -> dict[str, Any]:
    """The update's gate (``warm_start.update_gate``), written to ``RUN/update.json``; returns the record."""
    same_validation = [ws.input_key(task, e) for e in plan.parent_validation] == [ws.input_key(task, e) for e in task_data.validation]
    after = float(metrics[metric]) if same_validation else ws.evaluate_examples(
        task, plan.parent_validation, task_data.labels, options, metric, lambda ex: predict_examples(model, ex, options))
    held = None
    if plan.held_out:
        after_predictions = predict_examples(model, plan.held_out, options)
        parent_options = options
        saved = parent.run_dir / TASK_OPTIONS_FILE
        if saved.is_file():  # the parent's own decision rule
            parent_options = task.Options.model_validate(json.loads(saved.read_text(encoding="utf-8")))
        parent_model = task.load_model(parent.model_dir).eval()
        parent_predictions = predict_examples(parent_model, plan.held_out, parent_options, parent.labels)
        del parent_model
        held = ws.paired_scores(task, plan.held_out, task_data.labels, metric, (parent_predictions, parent_options),
                                (after_predictions, options))
    before = parent.metrics.get(metric)
    gate = ws.update_gate(metric, None if before is None else float(before), float(after or 0.0), held, recipe.update.max_forgetting)
    record = {"parent": str(parent.run_dir), "plan": plan.report, "gate": gate,
              "metrics": {"before": parent.metrics, "after": metrics}}
    ws.write_update_record(run_dir, record)
    return {"parent": str(parent.run_dir), **{k: v for k, v in plan.report.items() if not k.endswith("_inputs")}, "gate": gate,
            "kept": gate["passed"]}


def _describe_gate(gate: dict[str, Any]) -> str:
    """One stage line for an update's gate."""
    parent, held = gate["parent_validation"], gate["held_out_new"]
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    line = (f"{gate['metric']} on the parent's validation set {fmt(parent['before'])} -> {fmt(parent['after'])}; "
            f"held-out new examples {fmt(held['before'])} -> {fmt(held['after'])}")
    return line + ("; kept" if gate["passed"] else "; REFUSED: " + "; ".join(gate["reasons"]))


def _generation_exporters(task: Any, exporters: Sequence[Any], explicit: bool, source: str) -> list[Any]:
    """A generative task's exports are verified on generated answers: the exporters that can generate
    (``load_generator``). One the recipe names that cannot is refused before training; the default
    list (``export.formats`` unset) just leaves those out."""
    unable = [e.name for e in exporters if not callable(getattr(e, "load_generator", None))]
    if unable and not explicit:
        return [e for e in exporters if e.name not in unable]
    if unable:
        raise ConfigError(source, [ConfigIssue("export.formats", f"{', '.join(repr(n) for n in unable)} cannot export a "
                                               f"'{task.name}' model (it has no key/value-cache generation to verify and serve); "
                                               'expected ["onnx"], or [] for no export')])
    return list(exporters)


def _generate_answers(events: CallbackList, task: Any, options: Any, model: Any, base_model: Path, epochs_run: int,
                      predictions: list[dict[str, Any]], features: Sequence[dict[str, Any]], task_data: TaskData,
                      tokenizer: Any) -> list[dict[str, Any]]:
    """The validation predictions with the fine-tuned model's generated answers and, with
    ``compare_base`` after training, the base model's under ``base_completion``."""
    count = min(getattr(options, "eval_samples", 0), len(features))
    if not count:
        return predictions
    events.on_stage_start(StageStarted("generate", f"answering {count} validation prompts (greedy)"))
    predictions = task.add_completions(predictions, features, task_data.validation, task.torch_generator(model, options), tokenizer,
                                       options)
    if epochs_run and getattr(options, "compare_base", False):
        events.on_stage_start(StageStarted("generate", f"the base model on the same {count} prompts, for the report"))
        base = task.build_model(base_model, task_data.labels, options).eval()
        predictions = task.add_completions(predictions, features, task_data.validation, task.torch_generator(base, options), tokenizer,
                                           options, key="base_completion")
        del base
    return predictions


def _export_metric(task: Any, metric: str, metrics: dict[str, float]) -> str:
    """The metric export verification gates: the task's ``export_metric`` when the evaluation has it, else the run's."""
    wanted = getattr(task, "export_metric", None)
    return wanted if wanted in metrics else metric


def _completer(task: Any, options: Any, features: Sequence[dict[str, Any]], task_data: TaskData, tokenizer: Any) -> Any:
    """For export verification: a function (exporter, artefact, predictions) -> predictions with the artefact's generated answers."""
    def complete(exporter: Any, artifact: Any, predictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return task.add_completions(predictions, features, task_data.validation, exporter.load_generator(artifact), tokenizer, options)

    return complete


def describe_rule(rule: DecisionRule) -> str:
    """One stage line for a fitted decision rule: temperature, rejection threshold, no-answer threshold, their figures, warnings."""
    parts = []
    calibration = rule.summary.get("calibration") or {}
    if calibration.get("method") in ("temperature", "temperature+isotonic"):
        mapped = " + isotonic map" if calibration["method"] == "temperature+isotonic" else ""
        after = calibration.get("ece_after_out_of_fold", calibration.get("ece_after"))
        parts.append(f"temperature {calibration['temperature']:.3f}{mapped} (ECE {calibration.get('ece_before')} -> {after}"
                     + (" out of fold)" if "ece_after_out_of_fold" in calibration else ")"))
    rejection = rule.summary.get("rejection")
    if rejection:
        threshold = rejection.get("threshold")
        figures = f"in-scope accuracy {rejection.get('in_scope_accuracy')}"
        if rejection.get("oos_recall") is not None:
            figures += f", out-of-scope recall {rejection['oos_recall']} precision {rejection.get('oos_precision')}"
        parts.append(f"'{rejection['fallback_label']}' below energy {threshold:.3f}: {figures}" if threshold is not None
                     else f"'{rejection['fallback_label']}': no threshold ({figures})")
    no_answer = rule.summary.get("no_answer")
    if no_answer and no_answer.get("fitted"):
        before, after = no_answer["before"], no_answer["after"]
        parts.append(f"no-answer threshold {after['null_threshold']:.3f} (F1 {before['f1']} -> {after['f1']}, "
                     f"no-answer accuracy {before['no_ans_accuracy']} -> {after['no_ans_accuracy']})")
    parts += [f"warning: {w}" for w in rule.warnings]
    return "; ".join(parts) or "fitted"


def _create_loggers(log: dict[str, Any], registry: Any, run_dir: Path) -> list[Callback]:
    """The callbacks of the loggers the recipe's ``[log]`` table switches on."""
    callbacks = []
    for name, options in enabled_loggers(log):
        logger = registry.create("logger", name)
        callbacks.append(logger.create(run_dir, logger.Options.model_validate(options)))
    return callbacks


def _data_check(events: CallbackList, task: Any, options: Any, data: Any, task_data: Any, base_model: Path, max_length: int,
                loaded: LoadedRecipe, run_dir: Path) -> None:
    """The short form of ``builder data check`` on the loaded data: a "data check" stage line (a few
    lines) and ``RUN/data_check.json``. Never fails the run: a check that breaks is reported and skipped."""
    try:
        from assistant_builder.dataquality import check_loaded, render_short

        report = check_loaded(task, options, data, task_data.train, task_data.validation, base_model, max_length, str(loaded.source),
                              model_name=loaded.recipe.model.base)
        atomic_write_json(run_dir / "data_check.json", report.to_dict())
        detail = render_short(report)
    except Exception as error:  # noqa: BLE001 - a data check must never stop a run
        detail = f"skipped ({type(error).__name__}: {error})"
    events.on_stage_start(StageStarted("data check", detail))
