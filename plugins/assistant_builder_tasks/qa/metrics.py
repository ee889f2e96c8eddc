"""SQuAD metrics, as the official evaluation scripts compute them, and the readable report.

``normalize_answer``, ``exact_match_score`` and ``f1_score`` follow the official SQuAD v1.1
``evaluate-v1.1.py``: lower-case, drop punctuation, drop the articles a/an/the, collapse
whitespace; EM and bag-of-tokens F1, each the maximum over the gold answers. For questions without
an answer (SQuAD v2.0, ``evaluate-v2.0.py``) EM and F1 are 1 if the prediction normalizes to the
empty string, else 0, and the scores are broken down into ``has_ans_*`` and ``no_ans_*``.

Scores are fractions in [0, 1] (the official scripts print them multiplied by 100), like every
other metric of the engine, so ``export.max_metric_drop = 0.01`` means one point.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant_builder.contracts import Evaluation
from assistant_builder.toolkit.answer_metrics import exact_match_score, f1_score, normalize_answer

__all__ = ["METRIC_NAMES", "evaluate_answers", "exact_match_score", "f1_score", "normalize_answer", "score_question"]

METRIC_NAMES = ("exact_match", "f1", "has_ans_exact_match", "has_ans_f1", "no_ans_exact_match", "no_ans_f1")
def score_question(prediction: str, golds: Sequence[str]) -> tuple[float, float]:
    """``(exact_match, f1)`` of one prediction: max over golds; no golds = unanswerable question."""
    if not golds:
        empty = float(normalize_answer(prediction) == "")
        return empty, empty
    return max(exact_match_score(prediction, g) for g in golds), max(f1_score(prediction, g) for g in golds)


def evaluate_answers(predicted: Sequence[str], golds: Sequence[Sequence[str]], questions: Sequence[str],
                     ids: Sequence[str | None], scores: Sequence[float]) -> Evaluation:
    """EM and F1 overall (and split by answerable / unanswerable when there are unanswerable questions)."""
    rows = []
    for i, (prediction, gold) in enumerate(zip(predicted, golds)):
        em, f1 = score_question(prediction, gold)
        rows.append({"index": i, "id": ids[i], "question": questions[i], "gold": list(gold), "predicted": prediction,
                     "exact_match": em, "f1": f1, "score": float(scores[i])})
    metrics = _means(rows, "")
    has_answer = [r for r in rows if r["gold"]]
    no_answer = [r for r in rows if not r["gold"]]
    if no_answer:
        if has_answer:
            metrics.update(_means(has_answer, "has_ans_"))
        metrics.update(_means(no_answer, "no_ans_"))
    worst = sorted((r for r in rows if r["f1"] < 1.0), key=lambda r: (r["f1"], -r["score"]))
    details = {"counts": {"questions": len(rows), "has_answer": len(has_answer), "no_answer": len(no_answer)},
               "worst": worst[:200]}
    return Evaluation(metrics, details, render_report(metrics, details["counts"], worst))


def _means(rows: Sequence[dict[str, Any]], prefix: str) -> dict[str, float]:
    count = max(1, len(rows))
    return {f"{prefix}exact_match": sum(r["exact_match"] for r in rows) / count, f"{prefix}f1": sum(r["f1"] for r in rows) / count}


def _cell(text: str, width: int = 70) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def render_report(metrics: dict[str, float], counts: dict[str, int], worst: Sequence[dict[str, Any]]) -> str:
    """Markdown: headline metrics and the worst answers (lowest F1, most confident first)."""
    lines = ["# Question answering report", "",
             f"{counts['questions']} validation questions ({counts['no_answer']} without an answer). "
             "Exact match and F1 as the official SQuAD script computes them, as fractions.", "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in metrics.items()]
    lines += ["", "## Worst answers", ""]
    if worst:
        lines += ["| question | gold | predicted | F1 | score |", "|---|---|---|---|---|"]
        for row in worst[:20]:
            gold = " / ".join(row["gold"]) if row["gold"] else "(no answer)"
            predicted = row["predicted"] or "(no answer)"
            lines.append(f"| {_cell(row['question'])} | {_cell(gold, 40)} | {_cell(predicted, 40)} | {row['f1']:.2f} | {row['score']:.3f} |")
        wrong = sum(1 for r in worst if r["f1"] == 0.0)
        lines += ["", f"{len(worst)} answers are not fully right, {wrong} share no word with the gold answer. "
                  "More training questions about similar contexts, or more epochs, usually help most."]
    else:
        lines.append("None: every validation answer is exactly right.")
    return "\n".join(lines) + "\n"
