"""The ``generation`` task's evaluation: validation loss, scores of the generated answers, and a
readable side-by-side of reference, base-model and fine-tuned answers. Torch-free."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant_builder.contracts import Evaluation
from assistant_builder_tasks.generation.data import Conversation
from assistant_builder_tasks.generation.metrics import answer_metrics, loss_metrics, per_example_scores

#: rows of the side-by-side table in report.md (all of them are in metrics.json)
REPORT_ROWS = 12
#: characters of a prompt or answer shown in a report cell
CELL_CHARS = 160


def evaluate_generation(predictions: Sequence[dict[str, Any]], examples: Sequence[Conversation]) -> Evaluation:
    """Loss metrics over the predictions that have a ``loss``; answer metrics over those with a
    ``completion`` (and ``base_``-prefixed ones over ``base_completion``). ``details["samples"]``
    lists each answered prompt with its reference, answers and per-answer scores."""
    scored = [p for p in predictions if p.get("loss") is not None]
    metrics: dict[str, float] = {}
    if scored:
        metrics.update(loss_metrics([p["nll_sum"] if "nll_sum" in p else p["loss"] * p["target_tokens"] for p in scored],
                                    [p["target_tokens"] for p in scored]))
    answered = [(p, e) for p, e in zip(predictions, examples) if p.get("completion") is not None and e.completion is not None]
    samples: list[dict[str, Any]] = []
    if answered:
        metrics.update(answer_metrics([p["completion"] for p, _ in answered], [e.completion for _, e in answered]))
        with_base = [(p, e) for p, e in answered if p.get("base_completion") is not None]
        if with_base:
            base = answer_metrics([p["base_completion"] for p, _ in with_base], [e.completion for _, e in with_base])
            metrics.update({f"base_{name}": value for name, value in base.items()})
        scores = per_example_scores([p["completion"] for p, _ in answered], [e.completion for _, e in answered])
        for (prediction, example), score in zip(answered, scores):
            samples.append({"source": example.source, "prompt": _last_user(example), "reference": example.completion,
                            "answer": prediction["completion"], "base_answer": prediction.get("base_completion"), **score})
    return Evaluation(metrics, {"samples": samples, "answered": len(answered), "scored": len(scored)}, render(metrics, samples))


def _last_user(example: Conversation) -> str:
    users = [m.content for m in example.prompt if m.role == "user"]
    return users[-1] if users else (example.prompt[-1].content if example.prompt else "")


def _cell(text: str | None) -> str:
    if text is None:
        return ""
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= CELL_CHARS else flat[: CELL_CHARS - 1] + "…"


def render(metrics: dict[str, float], samples: Sequence[dict[str, Any]]) -> str:
    """Markdown: the metrics, then the first ``REPORT_ROWS`` answered prompts side by side."""
    lines = ["# Generation report", "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in metrics.items()]
    if not samples:
        lines += ["", "No answers were generated (task.options.eval_samples = 0, or no validation example has a reference)."]
        return "\n".join(lines) + "\n"
    has_base = any(s.get("base_answer") is not None for s in samples)
    lines += ["", f"## Answers on validation prompts ({min(len(samples), REPORT_ROWS)} of {len(samples)}; all in metrics.json)", ""]
    header = "| prompt | reference |" + (" base model |" if has_base else "") + " fine-tuned | token F1 |"
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for sample in samples[:REPORT_ROWS]:
        base = f" {_cell(sample.get('base_answer'))} |" if has_base else ""
        lines.append(f"| {_cell(sample['prompt'])} | {_cell(sample['reference'])} |{base} {_cell(sample['answer'])} | "
                     f"{sample['token_f1']:.2f} |")
    return "\n".join(lines) + "\n"
