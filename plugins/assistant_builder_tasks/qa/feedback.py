"""The QA task's side of the feedback contract: questions as store records and back, and answers
(predicted or corrected) as the store's ``{"answers": [...]}``. Torch-free."""

from __future__ import annotations

from typing import Any

from assistant_builder.contracts import StoreRecord
from assistant_builder.feedback import check_answers
from assistant_builder_tasks.qa.data import Answer, QAExample


def to_store(example: QAExample) -> StoreRecord:
    gold = None if example.answers is None else {
        "answers": [{"text": answer.text, "answer_start": answer.start} for answer in example.answers]}
    return StoreRecord({"question": example.question, "context": example.context}, gold, example.source)


def from_store(record: StoreRecord, allow_unanswerable: bool) -> QAExample:
    question, context = str(record.payload["question"]), str(record.payload["context"])
    answers = check_answers(record.gold, context, allow_unanswerable, "gold")
    return QAExample(question, context, tuple(Answer(text, start) for text, start in answers), None, record.source)


def prediction_gold(prediction: dict[str, Any]) -> dict[str, Any]:
    if not prediction.get("answer"):
        return {"answers": []}
    return {"answers": [{"text": prediction["answer"], "answer_start": int(prediction["start"])}]}
