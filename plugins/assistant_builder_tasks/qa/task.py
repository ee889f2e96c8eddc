"""Extractive question answering: find the answer to a question as a span of a given context.

Reads SQuAD v1.1/v2.0 JSON or JSONL; long contexts are split into overlapping windows
(``encoding.py``); the model predicts start and end logits per token (``model.py``); the decoder
picks the best span over all windows (``decoding.py``); metrics are the official SQuAD EM and F1
(``metrics.py``). With unanswerable questions the no-answer threshold is fitted on validation
after training (``no_answer.py``). Torch-free at import time: ``encode``, ``decode``, ``evaluate`` and
``parse_input`` run in the ONNX runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from assistant_builder.contracts import (Agreement, ComponentOptions, DecisionRule, Evaluation, Feature, FeatureOutputs, Task,
                                         TaskData)
from assistant_builder.errors import DataError
from assistant_builder.toolkit.agreement import example_agreement, overlap_agreement
from assistant_builder.toolkit.collate import collate
from assistant_builder_tasks.qa.data import QAExample, load_split
from assistant_builder_tasks.qa.decoding import candidates_all, decode_all
from assistant_builder_tasks.qa.encoding import encode_examples
from assistant_builder_tasks.qa.metrics import METRIC_NAMES, evaluate_answers, f1_score, normalize_answer
from assistant_builder_tasks.qa.no_answer import fit_rule, null_threshold

TARGETS = ("start_positions", "end_positions")


class QAOptions(ComponentOptions):
    allow_unanswerable: bool = Field(False, description="accept questions without an answer (SQuAD v2.0 is_impossible / empty answers) "
                                                        "and let the model answer \"\" (no answer)")
    stride: int = Field(128, ge=0, description="tokens shared by consecutive windows of a long context (capped at half a window)")
    n_best: int = Field(20, ge=1, le=200, description="start and end candidates per window considered when decoding")
    max_answer_length: int = Field(30, ge=1, description="longest answer, in tokens")
    null_threshold: float | None = Field(None, description="with allow_unanswerable: answer \"\" when the no-answer score beats the "
                                                          "best span by more than this (raise it to answer more often). Unset: "
                                                          "fitted on validation to maximise F1 when it has questions with and "
                                                          "without an answer, else 0; a value set here is kept, not refitted")


class QATask(Task):
    """Answer a question with a span of the context it comes with (SQuAD-style)."""

    predict_example = '--question "when does the pharmacy open?" --context "The pharmacy opens at 9 am."'

    name = "qa"
    description = "extractive question answering (answer = a span of the given context; SQuAD v1.1/v2.0)"
    Options = QAOptions
    labelling_kind = "answer_span"
    primary_metric = "f1"
    metric_names = METRIC_NAMES
    output_names = ("start_logits", "end_logits")
    sequence_outputs = ("start_logits", "end_logits")
    data_formats = ("squad", "jsonl", "parquet", "files", "hf_disk")
    #: answer-token agreement gate: an int8 variant at 90.6% lost 0.91 F1 points on XQuAD-en, more than
    #: the 0.5 a verified variant may lose, so below 95% the bundle keeps fp32 (bench/RESULTS.md, "QA int8 agreement")
    min_agreement = 0.95

    def load_data(self, data: Any, options: QAOptions) -> TaskData:  # type: ignore[override]
        train, validation, sources = load_split(data, options.allow_unanswerable)
        return TaskData(train, validation, [], sources)

    def encode(self, examples: Sequence[QAExample], tokenizer: Any, labels: Sequence[str],
               options: QAOptions, max_length: int) -> list[Feature]:  # type: ignore[override]
        return encode_examples(examples, tokenizer, max_length, options.stride)

    def build_model(self, base_model: Path, labels: Sequence[str], options: QAOptions,
                    train_features: Sequence[Feature] | None = None) -> Any:  # type: ignore[override]
        from assistant_builder_tasks.qa.model import build_question_answerer

        return build_question_answerer(base_model)

    def save_model(self, model: Any, directory: Path, labels: Sequence[str]) -> None:
        model.save_pretrained(directory)

    def load_model(self, directory: Path) -> Any:
        """Load a model saved by ``save_model``."""
        from assistant_builder_tasks.qa.model import load_question_answerer

        return load_question_answerer(directory)

    def sample_data(self, directory: Path) -> dict[str, Any]:
        """Example questions (JSONL: question, context, answers) for ``builder init`` and the conformance suite."""
        import json

        shop = "The bakery opens at 7 am and closes at 6 pm. It is on Mill Street, next to the library."
        hub = "The hub glows amber while it starts and turns teal when it is ready. It can manage 64 devices."
        park = "The park has a lake with ducks. Boats can be rented on weekends for 5 euros an hour."
        rows = {"train": [("when does the bakery open", shop, "7 am"), ("where is the bakery", shop, "Mill Street"),
                          ("what is next to the bakery", shop, "the library"), ("what colour is the hub when it is ready", hub, "teal"),
                          ("how many devices can the hub manage", hub, "64"), ("what colour is the hub while it starts", hub, "amber")],
                "valid": [("what lives on the lake", park, "ducks"), ("how much does a boat cost", park, "5 euros an hour")]}
        directory.mkdir(parents=True, exist_ok=True)
        for split, examples in rows.items():
            (directory / f"{split}.jsonl").write_text("".join(
                json.dumps({"question": q, "context": c, "answers": {"text": [a], "answer_start": [c.index(a)]}}) + "\n"
                for q, c, a in examples))
        return {"train": "train.jsonl", "validation": "valid.jsonl"}

    def collate(self, features: Sequence[Feature], pad_token_id: int) -> dict[str, Any]:
        return collate(features, pad_token_id, TARGETS)

    def decode(self, outputs: FeatureOutputs, features: Sequence[Feature], examples: Sequence[QAExample],
               labels: Sequence[str], options: QAOptions) -> list[dict[str, Any]]:  # type: ignore[override]
        return decode_all(outputs["start_logits"], outputs["end_logits"], features, [e.context for e in examples],
                          options.n_best, options.max_answer_length, options.allow_unanswerable, null_threshold(options))

    def fit_decision_rule(self, outputs: FeatureOutputs, features: Sequence[Feature], examples: Sequence[QAExample],
                          labels: Sequence[str], options: QAOptions) -> DecisionRule | None:  # type: ignore[override]
        """With ``allow_unanswerable`` and ``null_threshold`` unset: the no-answer threshold that maximises
        validation F1 (``no_answer.fit_rule``); ``None`` otherwise."""
        if not options.allow_unanswerable or options.null_threshold is not None:
            return None
        candidates = candidates_all(outputs["start_logits"], outputs["end_logits"], features, len(examples), options.n_best,
                                    options.max_answer_length)
        return fit_rule(candidates, examples, options)

    def evaluate(self, predictions: Sequence[dict[str, Any]], examples: Sequence[QAExample],
                 labels: Sequence[str]) -> Evaluation:  # type: ignore[override]
        golds = [[a.text for a in e.answers or ()] for e in examples]
        return evaluate_answers([p["answer"] for p in predictions], golds, [e.question for e in examples],
                                [e.id for e in examples], [p["score"] for p in predictions])

    def prediction_key(self, prediction: dict[str, Any]) -> Any:
        return normalize_answer(prediction["answer"])

    def agreement(self, predictions: Sequence[dict[str, Any]], reference: Sequence[dict[str, Any]]) -> Agreement:
        """Answer tokens: the mean SQuAD token F1 of each answer against PyTorch's (both empty: 1), so an
        answer one word longer than PyTorch's still mostly agrees."""
        keys, reference_keys = [self.prediction_key(p) for p in predictions], [self.prediction_key(p) for p in reference]
        value = overlap_agreement(keys, reference_keys, lambda a, b: 1.0 if a == b else f1_score(a, b))
        return Agreement(value, "answer tokens", example_agreement(keys, reference_keys))

    def parse_input(self, raw: Any) -> QAExample:
        if not isinstance(raw, dict):
            raise DataError(f'expected an object with "question" and "context" strings, got {raw!r}',
                            hint='e.g. {"question": "When does the shop open?", "context": "The shop opens at 9."}')
        for name in ("question", "context"):
            value = raw.get(name)
            if value is None:
                raise DataError(f"missing field '{name}'; expected an object with \"question\" and \"context\" strings, "
                                f"got keys: {', '.join(sorted(map(str, raw))) or 'none'}")
            if not isinstance(value, str) or not value.strip():
                raise DataError(f"field '{name}' must be a non-empty string, got {value!r}")
        qid = raw.get("id")
        return QAExample(raw["question"].strip(), raw["context"], None, str(qid) if qid is not None else None)

    long_inputs = "window"

    def check_examples(self, data: Any, options: QAOptions) -> Any:  # type: ignore[override]
        """``builder data check``: questions read leniently (rejected ones become findings), see ``checks.py``."""
        from assistant_builder_tasks.qa.checks import check_examples

        return check_examples(data, options)

    def check_data(self, data: Any, options: QAOptions, context: Any) -> list[Any]:  # type: ignore[override]
        """Answers not at their offset, unanswerable or empty questions, questions too long for the window."""
        from assistant_builder_tasks.qa.checks import check_data

        return check_data(data, options, context)

    # -- feedback contract (builder serve --feedback, data.extra; see contracts.Task) -------------
    feedback_fields = ("answer",)
    #: capture answers whose probability among the candidate spans is below this (see docs/feedback.md)
    capture_threshold = 0.5

    def to_store(self, example: QAExample) -> Any:
        from assistant_builder_tasks.qa.feedback import to_store

        return to_store(example)

    def from_store(self, record: Any, labels: Sequence[str], options: QAOptions) -> QAExample:  # type: ignore[override]
        from assistant_builder_tasks.qa.feedback import from_store

        return from_store(record, options.allow_unanswerable)

    def prediction_gold(self, example: QAExample, prediction: dict[str, Any]) -> dict[str, Any]:
        from assistant_builder_tasks.qa.feedback import prediction_gold

        return prediction_gold(prediction)

    def feedback_gold(self, example: QAExample, prediction: dict[str, Any], correction: Any, labels: Sequence[str],
                      options: QAOptions) -> Any:  # type: ignore[override]
        """``{"answer": {"start", "end"}}`` in characters of the context (``"text"`` optional), or ``{"answer": null}``."""
        if "answer" in correction:
            from assistant_builder.feedback import answer_gold

            return answer_gold(correction["answer"], example.context, options.allow_unanswerable)
        return super().feedback_gold(example, prediction, correction, labels, options)

    def prediction_confidence(self, prediction: dict[str, Any]) -> float | None:
        """0 when out of scope; else the answer's probability among the candidate spans."""
        from assistant_builder.feedback import default_confidence

        return default_confidence(prediction)
