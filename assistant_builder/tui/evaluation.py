"""Read a run's evaluation for the Evaluate screen: metrics, per-label scores, confusion matrix and
the validation errors joined with their examples (so an error can go back to the labelling queue).

Torch- and textual-free. Classification errors come from ``validation_predictions.jsonl`` joined
with the validation examples the task reloads from the run's resolved recipe (same split); when the
data cannot be reloaded, and for other tasks, the ``errors``/``worst`` lists of ``metrics.json`` are
shown read-only.

For a run with a fallback label (out-of-scope rejection, ``docs/out_of_scope.md``), the same join
gives every validation example's in-scope score, gold label and top in-scope label (``scored``, for
the threshold what-if of ``tui/threshold.py``), and the run's threshold from ``task_options.json``.
Runs whose predictions have no ``in_scope_score`` (older runs, no fallback label) leave ``scored``
empty and the screen hides its out-of-scope panel. The reliability bins come from
``metrics.json``'s ``decision_rule.calibration``. Generated answers (``metrics.json``'s ``samples``:
prompt, reference, base-model and fine-tuned answer, as the ``generation`` task writes them) are
read as they are, for any task that writes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant_builder.engine.run import TASK_OPTIONS_FILE
from assistant_builder.errors import BuilderError
from assistant_builder.tui.project import RunInfo, read_json, read_run
from assistant_builder.tui.threshold import ScoredExample


@dataclass(frozen=True)
class ErrorRow:
    """One validation error. ``payload`` is set when it can be sent back to the labelling queue."""

    text: str
    gold: str
    predicted: str
    score: float
    payload: dict[str, Any] | None = None
    suggestion: dict[str, Any] | None = None
    source: str = ""


@dataclass
class RunEvaluation:
    run: RunInfo
    metric: str
    metrics: dict[str, float]
    per_label: dict[str, dict[str, Any]] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    confusion: list[list[int]] | None = None
    errors: list[ErrorRow] = field(default_factory=list)
    note: str = ""
    #: out-of-scope rejection: the fallback label, the run's threshold (``None``: none fitted) and margin
    fallback_label: str | None = None
    fallback_threshold: float | None = None
    fallback_margin: float = 0.0
    #: every validation example with its in-scope score (empty: no out-of-scope panel)
    scored: list[ScoredExample] = field(default_factory=list)
    #: how many validation predictions the run's rule rejected (``"in_scope": false``)
    run_rejected: int = 0
    #: ``decision_rule.calibration`` of metrics.json: temperature, ece_before/after, reliability bins
    calibration: dict[str, Any] = field(default_factory=dict)
    #: generated answers on validation prompts (``metrics.json``'s ``samples``; empty: no answers tab)
    samples: list[dict[str, Any]] = field(default_factory=list)


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return f"{value.get('label', '')}: {value.get('text', '')}".strip(": ")
    if isinstance(value, list):
        return " | ".join(_short(v) for v in value) or "∅"
    return "∅" if value is None else str(value)


def _generic_errors(details: dict[str, Any], classification: bool) -> list[ErrorRow]:
    """Errors saved in metrics.json (classification: the 200 most confident, still sendable)."""
    rows = []
    for error in details.get("errors") or details.get("worst") or []:
        text = error.get("text") or error.get("question") or ""
        kind = f"[{error['kind']}] " if "kind" in error else ""
        score = float(error.get("score", 0.0))
        payload = {"text": text} if classification and text else None
        suggestion = {"label": error.get("predicted"), "score": score} if payload else None
        rows.append(ErrorRow(kind + text, _short(error.get("gold")), _short(error.get("predicted")), score, payload, suggestion,
                             str(error.get("source", ""))))
    return rows


def _classification_rows(run_dir: Path, registry: Any, evaluation: RunEvaluation) -> list[ErrorRow]:
    """Every misclassified validation example, with its text, source line and prediction; fills
    ``evaluation.scored`` when the run rejects out-of-scope inputs."""
    from assistant_builder.recipe.loader import load_run_recipe

    recipe = load_run_recipe(run_dir).recipe
    # provenance.json records the absolute path of every data file the run read
    files = {split: Path(entry["path"]) for split, entry in ((read_json(run_dir / "provenance.json") or {}).get("data") or {}).items()}
    data = recipe.data.model_copy(update={k: files[k] for k in ("train", "validation") if k in files})
    task = registry.create("task", recipe.task.type)
    options = task.Options.model_validate(recipe.task.options)
    examples = task.load_data(data, options).validation
    # the options the run decided with: task_options.json holds the fitted threshold
    saved = read_json(run_dir / TASK_OPTIONS_FILE)
    decided = saved if isinstance(saved, dict) else dict(recipe.task.options)
    fallback = decided.get("fallback_label")
    rows, scored, rejected = [], [], 0
    with open(run_dir / "validation_predictions.jsonl", encoding="utf-8") as handle:
        for line in handle:
            prediction = json.loads(line)
            index = prediction.pop("index")
            example = examples[index]
            if prediction.get("label") != example.label:
                rows.append(ErrorRow(example.text, str(example.label), str(prediction.get("label")), float(prediction.get("score", 0.0)),
                                     {"text": example.text}, prediction, example.source))
            if fallback and isinstance(prediction.get("in_scope_score"), (int, float)):
                top = prediction.get("top") or [prediction]
                scored.append(ScoredExample(example.text, str(example.label), str(top[0].get("label")), float(prediction["in_scope_score"]),
                                            example.label == fallback, example.source))
                rejected += prediction.get("in_scope") is False
    if fallback and len(scored) == len(examples):  # every example scored, else no what-if (figures would be wrong)
        threshold = decided.get("fallback_threshold")
        evaluation.fallback_label, evaluation.scored, evaluation.run_rejected = str(fallback), scored, rejected
        evaluation.fallback_threshold = float(threshold) if isinstance(threshold, (int, float)) else None
        evaluation.fallback_margin = float(decided.get("fallback_margin") or 0.0)
    return rows


def load_evaluation(run_dir: str | Path, registry: Any = None) -> RunEvaluation:
    """Everything the Evaluate screen shows for ``run_dir``; errors sorted most confident first."""
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    details = read_json(run_dir / "metrics.json") or {}
    evaluation = RunEvaluation(run, details.get("metric", run.metric), details.get("metrics", run.metrics),
                               details.get("per_label") or details.get("per_type") or {},
                               list(details.get("labels") or details.get("entity_types") or []), details.get("confusion_matrix"))
    calibration = (details.get("decision_rule") or {}).get("calibration")
    evaluation.calibration = calibration if isinstance(calibration, dict) else {}
    samples = details.get("samples")
    evaluation.samples = [s for s in samples if isinstance(s, dict)] if isinstance(samples, list) else []
    if not details:
        evaluation.note = f"{run_dir.name} has no evaluation yet ({run.status})"
        return evaluation
    errors: list[ErrorRow] | None = None
    if run.task == "classification" and (run_dir / "validation_predictions.jsonl").is_file():
        try:
            if registry is None:
                from assistant_builder.registry import build_registry

                registry = build_registry()
            errors = _classification_rows(run_dir, registry, evaluation)
        except (BuilderError, OSError, ValueError, IndexError, KeyError) as exc:
            evaluation.note = f"validation data could not be reloaded ({exc}); showing the errors saved in metrics.json"
    if errors is None:
        errors = _generic_errors(details, run.task == "classification")
        if evaluation.samples and not errors:
            evaluation.note = evaluation.note or f"{len(evaluation.samples)} generated answers on validation prompts: a shows them"
        elif run.task != "classification":
            evaluation.note = evaluation.note or f"{run.task} errors are shown read-only; sending them back needs the {run.task} labelling widget"
    evaluation.errors = sorted(errors, key=lambda e: -e.score)
    return evaluation
