"""Out-of-scope rejection and calibrated scores for the classification task (docs/out_of_scope.md).

``decide`` turns logits into labels with the task options' rule. The label is always chosen from
the logits: the class with the largest logit (the first on an exact tie), and ``top`` lists the
classes in the logits' order. Calibration gives the scores only: probabilities are
``softmax(logits / temperature)``, then, with a ``confidence_map``, the winning class's probability
is mapped (``toolkit.calibration.apply_confidence_map``, told the winner, which keeps it at or above
every other score; a tie with the second is possible and changes nothing, since no label is read
back from the scores). So calibration can never change a label, and an exported model whose logits
differ by rounding gets the same labels unless its logits themselves swap.
With a ``fallback_label``, an input whose energy score (over the in-scope classes' logits) is below
``fallback_threshold``, or whose top-two in-scope probability gap is below ``fallback_margin``, is
rejected: its label is the fallback label, ``in_scope`` is false, its score is ``1 - `` the top
in-scope probability and ``top`` still lists the in-scope candidates.
Without a fitted threshold, an input whose largest logit is a trained fallback class's is
rejected. ``fit_rule`` fits the calibration and the threshold on validation outputs. Torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from assistant_builder.contracts import DecisionRule
from assistant_builder.toolkit.calibration import (apply_confidence_map, expected_calibration_error, fit_isotonic_map,
                                                   fit_temperature, out_of_fold_probabilities, reliability_bins)
from assistant_builder.toolkit.decoding import softmax
from assistant_builder.toolkit.outofscope import (accuracy_at_coverage, auroc, energy_scores, fit_threshold, rejection_scores,
                                                  tradeoff_table)

#: examples of the fallback label needed in validation to fit the threshold on them (else: keep share)
MIN_OUT_OF_SCOPE = 10
#: correctly classified in-scope validation examples needed to fit any threshold
MIN_CORRECT = 20
#: folds of the out-of-fold calibration error the report gives beside the in-sample one
CALIBRATION_FOLDS = 10


def in_scope_columns(labels: Sequence[str], fallback_label: str | None) -> list[int]:
    """Class ids of the in-scope labels (every label but a trained fallback class)."""
    return [i for i, label in enumerate(labels) if label != fallback_label]


def predicted_columns(logits: np.ndarray) -> np.ndarray:
    """Each row's predicted class id: the argmax of its logits (the first on an exact tie). The one rule
    every label of this task comes from; calibrated probabilities are never used to choose one."""
    logits = np.asarray(logits, dtype=np.float64)
    return np.argmax(logits, axis=1) if logits.ndim == 2 and len(logits) else np.zeros(0, dtype=np.int64)


def calibrated_probabilities(logits: np.ndarray, temperature: float,
                             confidence_map: Sequence[Sequence[float]] | None = None) -> np.ndarray:
    """``softmax(logits / temperature)``, with ``confidence_map`` applied to the probability of each row's
    predicted class (``predicted_columns``), which stays at or above every other score (ties possible:
    read labels from the logits, not from these)."""
    logits = np.asarray(logits, dtype=np.float64)
    probabilities = softmax(logits / temperature)
    return apply_confidence_map(probabilities, confidence_map, predicted_columns(logits)) if confidence_map else probabilities


def fit_calibration(method: str, logits: np.ndarray, gold_ids: np.ndarray, bins: int = 5) -> dict[str, Any]:
    """The option values ``method`` fits on these logits and class ids: ``temperature`` (by likelihood)
    and ``confidence_map``: for ``"temperature+isotonic"`` fitted over ``bins`` bins of the probabilities at
    that temperature, else None; ``{}`` for ``"none"`` (the options' own values stay)."""
    if method == "none":
        return {}
    fitted: dict[str, Any] = {"temperature": round(fit_temperature(logits, gold_ids), 4) if len(gold_ids) else 1.0,
                              "confidence_map": None}
    if method == "temperature+isotonic":
        probabilities = softmax(np.asarray(logits, dtype=np.float64) / fitted["temperature"])
        predicted = predicted_columns(logits)
        fitted["confidence_map"] = fit_isotonic_map(probabilities[np.arange(len(predicted)), predicted], predicted == gold_ids,
                                                    bins) or None
    return fitted


def decide(logits: np.ndarray, labels: Sequence[str], options: Any) -> list[dict[str, Any]]:
    """One prediction per row of ``[examples, classes]`` logits, as ``ClassificationTask.decode`` returns them.

    ``label`` is the argmax of the logits (or the fallback label when the rejection rule says so) and
    ``top`` lists classes in the logits' order; ``score`` and the scores in ``top`` are the calibrated
    probabilities, which never reorder them (see the module docstring)."""
    logits = np.asarray(logits, dtype=np.float64)
    probabilities = calibrated_probabilities(logits, options.temperature, getattr(options, "confidence_map", None))
    ranking = np.argsort(-logits, axis=1, kind="stable") if len(logits) else np.zeros((0, len(labels)), dtype=np.int64)
    fallback = options.fallback_label
    k = min(options.top_k, len(labels))
    if fallback is None:
        predictions = []
        for probs, order in zip(probabilities, ranking):
            top = order[:k]
            predictions.append({"label": labels[int(top[0])], "score": float(probs[top[0]]),
                                "top": [{"label": labels[int(i)], "score": float(probs[i])} for i in top]})
        return predictions
    columns = in_scope_columns(labels, fallback)
    in_scope = set(columns)
    trained_fallback = len(columns) < len(labels)
    energies = energy_scores(logits, columns)
    predictions = []
    for row, (probs, order) in enumerate(zip(probabilities, ranking)):
        inside = [int(i) for i in order if int(i) in in_scope]
        best = inside[0]
        second = float(probs[inside[1]]) if len(inside) > 1 else 0.0
        if options.fallback_threshold is not None:
            rejected = energies[row] < options.fallback_threshold
        else:
            rejected = trained_fallback and int(order[0]) not in in_scope
        rejected = bool(rejected or (options.fallback_margin > 0 and probs[best] - second < options.fallback_margin))
        top = [{"label": labels[int(i)], "score": float(probs[i])} for i in inside[:k]]
        if rejected:
            predictions.append({"label": fallback, "score": float(1.0 - probs[best]), "in_scope": False,
                                "in_scope_score": float(energies[row]), "top": top})
        else:
            predictions.append({"label": labels[best], "score": float(probs[best]), "in_scope": True,
                                "in_scope_score": float(energies[row]), "top": top})
    return predictions


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def fit_rule(logits: np.ndarray, gold: Sequence[str], labels: Sequence[str], options: Any) -> DecisionRule:
    """Fit the calibration (``fit_calibration``) and, with a ``fallback_label`` and no ``fallback_threshold``
    set by the user, the rejection threshold, on validation logits and gold labels.

    The summary's ``calibration`` gives the error before and after calibration on validation (``ece_after``:
    fitted and measured on the same examples) and ``ece_after_out_of_fold`` (each example calibrated by a
    fit without it, ``CALIBRATION_FOLDS`` folds): the figure to expect on new data."""
    logits = np.asarray(logits, dtype=np.float64)
    label_ids = {label: i for i, label in enumerate(labels)}
    fallback = options.fallback_label
    known = np.array([g in label_ids for g in gold], dtype=bool)
    gold_ids = np.array([label_ids.get(g, -1) for g in gold])
    warnings: list[str] = []
    update: dict[str, Any] = {}

    before = softmax(logits / options.temperature)
    method, chosen_by = choose_calibration(options.calibration, logits[known], gold_ids[known], options.calibration_bins)
    update.update(fit_calibration(method, logits[known], gold_ids[known], options.calibration_bins))
    temperature = update.get("temperature", options.temperature)
    confidence_map = update.get("confidence_map", options.confidence_map if options.calibration == "none" else None)
    after = calibrated_probabilities(logits, temperature, confidence_map)
    predicted = predicted_columns(logits)
    calibration = {"method": method, "chosen_by": chosen_by, "temperature": temperature,
                   "confidence_map_knots": len(confidence_map or []),
                   "ece_before": _finite(_ece(before, predicted, gold_ids, known)),
                   "ece_after": _finite(_ece(after, predicted, gold_ids, known)),
                   "ece_after_out_of_fold": _finite(_out_of_fold_ece(method, logits[known], gold_ids[known], options.calibration_bins)),
                   "reliability": {"before": _bins(before, predicted, gold_ids, known), "after": _bins(after, predicted, gold_ids, known)}}
    summary: dict[str, Any] = {"calibration": calibration}
    sections = [_calibration_section(calibration, after, predicted, gold_ids, known)]
    files: dict[str, bytes] = {}
    chart = _reliability_png(before, after, predicted, gold_ids, known)
    if chart:
        files["reliability.png"] = chart
        sections.append("![reliability diagram](reliability.png)\n")

    if fallback is not None:
        columns = in_scope_columns(labels, fallback)
        scores = energy_scores(logits, columns)
        top_in = np.asarray(columns)[np.argmax(logits[:, columns], axis=1)] if len(logits) else np.zeros(0, dtype=int)
        out_of_scope = np.array([g == fallback for g in gold], dtype=bool)
        correct = top_in == gold_ids
        if options.fallback_threshold is None:
            fit = fit_threshold(scores, correct, out_of_scope, keep=options.fallback_keep,
                                max_accuracy_loss=options.fallback_max_accuracy_loss, min_out_of_scope=MIN_OUT_OF_SCOPE,
                                min_correct=MIN_CORRECT)
            threshold, objective, warnings = fit.threshold, fit.objective, list(fit.warnings)
            if threshold is not None:
                update["fallback_threshold"] = float(threshold)  # exact: rounding could move it past a fitted score
        else:
            threshold, objective = options.fallback_threshold, "set in the recipe (fallback_threshold)"
        result = rejection_scores(scores, correct, out_of_scope, threshold)
        rejection = {"fallback_label": fallback, "score": "energy", "threshold": threshold, "objective": objective,
                     "trained_class": len(columns) < len(labels), "validation_out_of_scope": int(out_of_scope.sum()),
                     "auroc": _finite(auroc(scores[~out_of_scope], scores[out_of_scope])),
                     **{k: _finite(v) for k, v in result.to_dict().items() if k != "threshold"}}
        summary["rejection"] = rejection
        table = tradeoff_table(scores, correct, out_of_scope)
        summary["tradeoff"] = [{k: _finite(v) if k != "threshold" else v for k, v in row.to_dict().items()} for row in table]
        coverage = accuracy_at_coverage(scores[~out_of_scope], correct[~out_of_scope])
        summary["accuracy_at_coverage"] = {f"{c:.0%}": _finite(a) for c, a in coverage.items()}
        sections.append(_rejection_section(rejection, table, summary["accuracy_at_coverage"], warnings))
        plot = _tradeoff_png(table)
        if plot:
            files["tradeoff.png"] = plot
            sections.append("![trade-off](tradeoff.png)\n")
    summary["warnings"] = warnings
    new_options = options.model_copy(update=update)
    return DecisionRule(new_options, summary, "\n".join(sections), files, warnings)


def choose_calibration(setting: str, logits: np.ndarray, gold_ids: np.ndarray, bins: int) -> tuple[str, str | None]:
    """The method ``setting`` stands for, and why: ``"auto"`` is whichever of ``"temperature"`` and
    ``"temperature+isotonic"`` has the lower out-of-fold calibration error on these examples (ties and
    too few examples to tell: ``"temperature"``); any other setting is itself."""
    if setting != "auto":
        return setting, None
    errors = {method: _out_of_fold_ece(method, logits, gold_ids, bins) for method in ("temperature", "temperature+isotonic")}
    if any(error is None for error in errors.values()):
        return "temperature", f"auto: fewer than {2 * CALIBRATION_FOLDS} validation examples to compare methods on"
    method = "temperature+isotonic" if errors["temperature+isotonic"] < errors["temperature"] else "temperature"
    return method, "auto: out-of-fold ECE " + ", ".join(f"{m} {e:.4f}" for m, e in errors.items())


def _out_of_fold_ece(method: str, logits: np.ndarray, gold_ids: np.ndarray, bins: int) -> float | None:
    if method == "none":
        return None

    def fit(train_logits: np.ndarray, train_gold: np.ndarray) -> Any:
        fitted = fit_calibration(method, train_logits, train_gold, bins)
        return lambda held_out: calibrated_probabilities(held_out, fitted["temperature"], fitted.get("confidence_map"))

    probabilities = out_of_fold_probabilities(logits, gold_ids, fit, folds=CALIBRATION_FOLDS)
    if probabilities is None:
        return None
    confidence, correct = _confidence_and_correct(probabilities, predicted_columns(logits), gold_ids)
    return expected_calibration_error(confidence, correct)


def _confidence_and_correct(probabilities: np.ndarray, predicted: np.ndarray, gold_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's score of its predicted class (chosen from the logits) and whether that class is the gold one."""
    return probabilities[np.arange(len(predicted)), predicted], predicted == gold_ids


def _ece(probabilities: np.ndarray, predicted: np.ndarray, gold_ids: np.ndarray, known: np.ndarray) -> float:
    if not known.any():
        return float("nan")
    return expected_calibration_error(*_confidence_and_correct(probabilities[known], predicted[known], gold_ids[known]))


def _bins(probabilities: np.ndarray, predicted: np.ndarray, gold_ids: np.ndarray, known: np.ndarray,
          bins: int = 10) -> list[dict[str, Any]]:
    """The non-empty reliability bins (as in the report's table) for ``metrics.json``: the TUI draws them."""
    if not known.any():
        return []
    confidence, correct = _confidence_and_correct(probabilities[known], predicted[known], gold_ids[known])
    return [{"low": round(b.low, 4), "high": round(b.high, 4), "count": b.count, "confidence": round(b.confidence, 4),
             "accuracy": round(b.accuracy, 4)} for b in reliability_bins(confidence, correct, bins) if b.count]


def _calibration_section(calibration: dict[str, Any], after: np.ndarray, predicted: np.ndarray, gold_ids: np.ndarray,
                         known: np.ndarray) -> str:
    lines = ["", "## Calibration", ""]
    if calibration["method"] == "none":
        lines.append(f"No calibration fitted (calibration = \"none\"); T = {calibration['temperature']:.3f}.")
    else:
        lines.append(f"Temperature scaling fitted on the validation set: T = {calibration['temperature']:.3f} "
                     "(scores are `softmax(logits / T)`; no prediction changes).")
    if calibration["method"] == "temperature+isotonic":
        lines.append(f"Then an isotonic map of the top score ({calibration['confidence_map_knots']} knots), fitted on "
                     "the same set; no prediction changes.")
    if calibration.get("chosen_by"):
        lines.append(f"Method chosen by `calibration = \"auto\"` ({calibration['chosen_by'][len('auto: '):]}).")
    lines += ["", "| expected calibration error (15 bins) | value |", "|---|---|",
              f"| before | {_cell(calibration['ece_before'])} |", f"| after, fitted and measured on validation | "
              f"{_cell(calibration['ece_after'])} |"]
    if calibration.get("ece_after_out_of_fold") is not None:
        lines.append(f"| after, out of fold ({CALIBRATION_FOLDS} folds: what to expect on new data) | "
                     f"{_cell(calibration['ece_after_out_of_fold'])} |")
    lines.append("")
    if known.any():
        confidence, correct = _confidence_and_correct(after[known], predicted[known], gold_ids[known])
        bins = [b for b in reliability_bins(confidence, correct, 10) if b.count]
        lines += ["| confidence | examples | mean confidence | accuracy |", "|---|---|---|---|"]
        lines += [f"| {b.low:.1f}-{b.high:.1f} | {b.count} | {b.confidence:.3f} | {b.accuracy:.3f} |" for b in bins]
    return "\n".join(lines) + "\n"


def _rejection_section(rejection: dict[str, Any], table: list[Any], coverage: dict[str, Any], warnings: list[str]) -> str:
    threshold = rejection["threshold"]
    lines = ["", "## Out-of-scope rejection", "",
             f"Fallback label `{rejection['fallback_label']}`; in-scope score: energy (logsumexp of the in-scope logits); "
             + (f"rejected below {threshold:.4f}." if threshold is not None else "no threshold (nothing is rejected by score)."),
             f"Objective: {rejection['objective']}.", ""]
    lines += [f"> warning: {w}" for w in warnings]
    lines += ["", "| on the validation set | value |", "|---|---|"]
    for key, name in (("in_scope_accuracy", "in-scope accuracy (rejections count as errors)"), ("kept", "in-scope kept"),
                      ("oos_precision", "out-of-scope precision"), ("oos_recall", "out-of-scope recall"),
                      ("oos_f1", "out-of-scope F1"), ("auroc", "AUROC in-scope vs out-of-scope")):
        lines.append(f"| {name} | {_cell(rejection[key])} |")
    lines.append(f"| out-of-scope validation examples | {rejection['validation_out_of_scope']} |")
    lines += ["", "Accuracy at coverage (in-scope examples with the highest scores): "
              + ", ".join(f"{c}: {_cell(a)}" for c, a in coverage.items()), "",
              "### Trade-off (set `fallback_threshold` to move along it)", "",
              "| threshold | in-scope kept | in-scope accuracy | oos caught (recall) | oos precision |", "|---|---|---|---|---|"]
    lines += [f"| {row.threshold:.4f} | {row.kept:.3f} | {row.in_scope_accuracy:.3f} | {_cell(row.oos_recall)} | "
              f"{_cell(row.oos_precision)} |" for row in table]
    lines.append("\nThese figures are measured on the validation data the threshold was fitted on: expect a little less on new data.")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _figure_bytes(draw: Any) -> bytes | None:
    """A PNG drawn by ``draw(axes)`` with matplotlib's Agg backend; ``None`` when matplotlib is missing."""
    try:
        import io

        from matplotlib.figure import Figure
    except ImportError:
        return None
    figure = Figure(figsize=(4.5, 4.0), dpi=100)
    draw(figure.add_subplot(1, 1, 1))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _reliability_png(before: np.ndarray, after: np.ndarray, predicted: np.ndarray, gold_ids: np.ndarray,
                     known: np.ndarray) -> bytes | None:
    if not known.any():
        return None

    def draw(axes: Any) -> None:
        for probs, name, marker in ((before[known], "before", "o"), (after[known], "after", "s")):
            confidence, correct = _confidence_and_correct(probs, predicted[known], gold_ids[known])
            bins = [b for b in reliability_bins(confidence, correct, 10) if b.count]
            axes.plot([b.confidence for b in bins], [b.accuracy for b in bins], marker=marker, label=f"{name} calibration")
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
        axes.set(xlabel="confidence", ylabel="accuracy", title="Reliability (validation)", xlim=(0, 1), ylim=(0, 1))
        axes.legend(loc="upper left")

    return _figure_bytes(draw)


def _tradeoff_png(table: list[Any]) -> bytes | None:
    if not table:
        return None

    def draw(axes: Any) -> None:
        axes.plot([r.kept for r in table], [r.in_scope_accuracy for r in table], marker="o", label="in-scope accuracy")
        if not math.isnan(table[0].oos_recall):
            axes.plot([r.kept for r in table], [r.oos_recall for r in table], marker="s", label="out-of-scope caught")
        axes.set(xlabel="share of in-scope inputs kept", ylabel="share", title="Rejection trade-off (validation)", ylim=(0, 1.02))
        axes.invert_xaxis()
        axes.legend(loc="lower left")

    return _figure_bytes(draw)
