"""The no-answer threshold of the qa task, fitted on validation (docs/out_of_scope.md, "Question answering").

With ``allow_unanswerable`` a question is answered ``""`` when its null (CLS) score beats the best
span by more than ``null_threshold`` (``decoding.decide``). Left unset (``None``), the threshold
is fitted after training by the SQuAD v2.0 "best F1 threshold" procedure: every question's
``null_difference`` (null score minus best span score, as the decoder computes it) is a candidate
cut; at a threshold a question predicted ``""`` scores F1 1 if it has no answer and 0 otherwise,
and a question answered with its best span scores that span's F1 (``metrics.score_question``), so
the mean is exactly the validation ``f1`` the run reports. The threshold with the highest mean F1
wins, placed halfway between the two sorted differences it separates (one logit beyond the end
when it answers all or none), so an exported model whose scores differ by rounding decides the
same way. Torch-free and deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from assistant_builder.contracts import DecisionRule
from assistant_builder_tasks.qa.data import QAExample
from assistant_builder_tasks.qa.decoding import Candidates
from assistant_builder_tasks.qa.metrics import score_question

#: the threshold used when ``null_threshold`` is unset and could not be fitted (also: bundles without a fitted one)
DEFAULT_NULL_THRESHOLD = 0.0
#: unanswerable validation questions below which the fitted threshold comes with a warning
MIN_UNANSWERABLE = 10
#: how far beyond the lowest / highest difference the threshold goes when the best is "all null" / "no null"
END_MARGIN = 1.0


def null_threshold(options: Any) -> float:
    """The threshold ``decode`` applies: the options' ``null_threshold``, or ``DEFAULT_NULL_THRESHOLD`` when unset."""
    value = getattr(options, "null_threshold", None)
    return DEFAULT_NULL_THRESHOLD if value is None else float(value)


def question_f1s(candidates: Sequence[Candidates], examples: Sequence[QAExample]) -> tuple[np.ndarray, np.ndarray]:
    """Per question: the F1 of its best span (of ``""`` when it has none) and the F1 of answering ``""``."""
    span_f1, null_f1 = [], []
    for found, example in zip(candidates, examples):
        golds = [a.text for a in example.answers or ()]
        null = score_question("", golds)[1]
        null_f1.append(null)
        span_f1.append(score_question(example.context[found.spans[0].start:found.spans[0].end], golds)[1] if found.spans else null)
    return np.array(span_f1, dtype=np.float64), np.array(null_f1, dtype=np.float64)


def threshold_sweep(differences: Sequence[float], span_f1: Sequence[float], null_f1: Sequence[float]) -> list[tuple[float, float]]:
    """``(threshold, mean F1)`` for every distinct decision on these questions, thresholds ascending.

    A question is answered ``""`` when its difference is above the threshold (``+inf``: always;
    ``-inf`` or NaN: never). The candidates sit halfway between consecutive distinct finite
    differences, plus ``END_MARGIN`` below the lowest (all ``""``) and above the highest (none).
    Empty when no difference is finite.
    """
    d = np.asarray(differences, dtype=np.float64)
    span, null = np.asarray(span_f1, dtype=np.float64), np.asarray(null_f1, dtype=np.float64)
    finite = np.isfinite(d)
    values = np.unique(d[finite])
    if not len(values):
        return []
    fixed = float(np.where(d == np.inf, null, span)[~finite].sum())
    order = np.argsort(d[finite], kind="stable")
    ordered = d[finite][order]
    gains = np.concatenate([[0.0], np.cumsum((span[finite] - null[finite])[order])])  # answering the j lowest with spans
    base = fixed + float(null[finite].sum())
    thresholds = [float(values[0] - END_MARGIN)] + [float((a + b) / 2.0) for a, b in zip(values[:-1], values[1:])] \
        + [float(values[-1] + END_MARGIN)]
    count = len(d)
    return [(t, (base + float(gains[int(np.searchsorted(ordered, t, side="right"))])) / count) for t in thresholds]


def best_null_threshold(differences: Sequence[float], span_f1: Sequence[float], null_f1: Sequence[float],
                        prefer: float = DEFAULT_NULL_THRESHOLD) -> float | None:
    """The threshold with the highest mean F1 (``threshold_sweep``); ties (F1 equal to 12 decimals) go to the
    threshold closest to ``prefer`` (the untuned rule), then to the smaller one. ``None`` when there is nothing to sweep."""
    sweep = threshold_sweep(differences, span_f1, null_f1)
    if not sweep:
        return None
    return min(sweep, key=lambda row: (-round(row[1], 12), abs(row[0] - prefer), row[0]))[0]


def figures(differences: np.ndarray, span_f1: np.ndarray, null_f1: np.ndarray, has_answer: np.ndarray,
            threshold: float) -> dict[str, Any]:
    """Validation F1, has-answer F1, no-answer accuracy and how many questions are answered ``""`` at ``threshold``."""
    null = differences > threshold
    f1 = np.where(null, null_f1, span_f1)
    return {"null_threshold": threshold, "f1": _mean(f1), "has_ans_f1": _mean(f1[has_answer]),
            "no_ans_accuracy": _mean(f1[~has_answer]), "answered_null": int(null.sum())}


def _mean(values: np.ndarray) -> float | None:
    return round(float(values.mean()), 4) if len(values) else None


def fit_rule(candidates: Sequence[Candidates], examples: Sequence[QAExample], options: Any) -> DecisionRule | None:
    """Fit ``null_threshold`` on the validation ``candidates`` (one per example) and return the rule.

    ``None`` (the options are kept) without ``allow_unanswerable`` or when the recipe sets
    ``null_threshold``. When validation lacks unanswerable or answerable questions the options are
    kept too, and the rule carries the reason as a warning (the engine prints it) and a report section.
    """
    if not options.allow_unanswerable or options.null_threshold is not None:
        return None
    has_answer = np.array([bool(e.answers) for e in examples], dtype=bool)
    answerable, unanswerable = int(has_answer.sum()), int((~has_answer).sum())
    counts = {"questions": len(examples), "has_answer": answerable, "no_answer": unanswerable}
    if not answerable or not unanswerable:
        missing = "without an answer" if not unanswerable else "with an answer"
        warning = (f"null_threshold not fitted: the validation data has no questions {missing} ({answerable} with an answer, "
                   f"{unanswerable} without), so F1 cannot trade one kind against the other; the default "
                   f"{DEFAULT_NULL_THRESHOLD} is used (add validation questions {missing}, or set task.options.null_threshold)")
        summary = {"no_answer": {"fitted": False, "null_threshold": DEFAULT_NULL_THRESHOLD, **counts}, "warnings": [warning]}
        return DecisionRule(options, summary, _section(summary["no_answer"], [warning]), warnings=[warning])

    differences = np.array([c.null_difference for c in candidates], dtype=np.float64)
    span_f1, null_f1 = question_f1s(candidates, examples)
    threshold = best_null_threshold(differences, span_f1, null_f1)
    if threshold is None:  # no question has a span and a finite null score: nothing to choose between
        threshold = DEFAULT_NULL_THRESHOLD
    warnings = []
    if unanswerable < MIN_UNANSWERABLE:
        warnings.append(f"null_threshold fitted on only {unanswerable} validation questions without an answer (at least "
                        f"{MIN_UNANSWERABLE} make it dependable); check it on more data or set task.options.null_threshold")
    before = figures(differences, span_f1, null_f1, has_answer, DEFAULT_NULL_THRESHOLD)
    after = figures(differences, span_f1, null_f1, has_answer, threshold)
    fit = {"fitted": True, "null_threshold": threshold, "objective": "maximise validation F1 (SQuAD v2.0 best-F1 threshold)",
           **counts, "before": before, "after": after}
    summary = {"no_answer": fit, "warnings": warnings}
    return DecisionRule(options.model_copy(update={"null_threshold": threshold}), summary, _section(fit, warnings),
                        warnings=warnings)


def _cell(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _section(fit: dict[str, Any], warnings: Sequence[str]) -> str:
    lines = ["", "## No-answer threshold", ""]
    if not fit["fitted"]:
        lines.append(f"Not fitted: answer \"\" when the no-answer score beats the best span by more than "
                     f"{fit['null_threshold']:.4f} (the default).")
    else:
        lines += [f"Fitted on the validation set: answer \"\" (no answer) when the no-answer score beats the best span by "
                  f"more than **{fit['null_threshold']:.4f}** (`null_threshold`; it was {fit['before']['null_threshold']:.4f}). "
                  f"Objective: {fit['objective']}; the threshold sits halfway between the two validation differences "
                  "(no-answer minus best-span score) it separates, or one logit beyond the last."]
    lines += [""] + [f"> warning: {w}" for w in warnings] + ([""] if warnings else [])
    lines.append(f"{fit['questions']} validation questions: {fit['has_answer']} with an answer, {fit['no_answer']} without.")
    if fit["fitted"]:
        before, after = fit["before"], fit["after"]
        lines += ["", f"| on the validation set | before ({before['null_threshold']:.4f}) | after ({after['null_threshold']:.4f}) |",
                  "|---|---|---|"]
        for key, name in (("f1", "F1"), ("has_ans_f1", "F1 on questions with an answer"),
                          ("no_ans_accuracy", "no-answer accuracy (questions without an answer answered \"\")")):
            lines.append(f"| {name} | {_cell(before[key])} | {_cell(after[key])} |")
        lines.append(f"| questions answered \"\" | {before['answered_null']} | {after['answered_null']} |")
        lines.append("\nMeasured on the validation data the threshold was fitted on: expect a little less on new data. "
                     "Set `[task.options] null_threshold` to keep a value of your own (it is then not refitted).")
    return "\n".join(lines) + "\n"
