"""A pinned regression set for reloads (``builder serve --regression FILE.jsonl``).

One JSON object per line: ``"input"`` (what ``/predict`` accepts for one input) and the right
answer in the shape ``POST /feedback`` takes it (``label``, ``entities`` or ``answer``)::

    {"input": "wake me at 7", "label": "set_alarm"}
    {"input": "call mom at 5 pm", "entities": [{"start": 5, "end": 8, "label": "person"}]}
    {"input": {"question": "When does it open?", "context": "It opens at 9."}, "answer": {"start": 12, "end": 13}}

Every line is checked when the server starts (all problems at once, each as ``FILE:LINE: field:
...``). A model's score is the task's primary metric on the set (accuracy for classification, F1
for ner and qa); a reload whose score is lower than the serving model's by more than
``--max-regression`` is refused. Generation models have no regression set yet: ``--regression`` is
refused at start for them (a reload is still smoke-tested and verification-checked).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant_builder.contracts import StoreRecord, evaluate_with_options
from assistant_builder.datasources import read_jsonl
from assistant_builder.errors import BuilderError, DataError
from assistant_builder.serve.generation import GENERATION
from assistant_builder.serve.models import ModelSlot
from assistant_builder.serve.settings import ServeError


@dataclass(frozen=True)
class Case:
    where: str
    raw_input: Any
    record: StoreRecord


class RegressionSet:
    """The parsed cases; ``score(slot)`` evaluates a model on them (cached per model version)."""

    def __init__(self, path: Path, cases: list[Case]) -> None:
        self.path = path
        self.cases = cases
        self._scores: dict[str, float] = {}

    @classmethod
    def load(cls, path: str | Path, slot: ModelSlot) -> RegressionSet:
        path = Path(path)
        if slot.kind == GENERATION:
            raise ServeError(f"--regression {path}: not supported for a generation model (its answers are generated text, "
                             "with no metric to hold a reload to)", hint="serve it without --regression")
        if not path.is_file():
            raise ServeError(f"--regression {path}: file not found; expected a JSONL file of inputs with their right answers")
        task, problems, cases = slot.ref.task, [], []
        try:
            records = list(read_jsonl(path))
        except DataError as exc:
            raise ServeError(f"--regression: {exc.message}", hint=exc.hint) from None
        for record in records:
            where, row = f"{path}:{record.number}", record.row
            fields = [key for key in task.feedback_fields if key in row]
            unknown = sorted(set(row) - {"input", *task.feedback_fields})
            if "input" not in row or len(fields) != 1 or unknown:
                expected = f"\"input\" and one of {', '.join(task.feedback_fields)}" if task.feedback_fields else "\"input\""
                problems.append(f"{where}: expected an object with {expected}"
                                + (f"; unknown field {unknown[0]}" if unknown else ""))
                continue
            try:
                example = task.parse_input(row["input"])
                gold = task.feedback_gold(example, {}, {fields[0]: row[fields[0]]}, list(slot.ref.labels), slot.ref.options)
                cases.append(Case(where, row["input"], StoreRecord(task.to_store(example).payload, gold, where)))
            except DataError as exc:
                problems.append(f"{where}: {exc.message}")
        if problems or not cases:
            shown = "\n".join(f"  {p}" for p in problems[:20]) or f"  {path}: no cases"
            raise ServeError(f"--regression: {len(problems)} problem(s):\n{shown}",
                             hint="each line is {\"input\": ..., and the right answer as POST /feedback takes it}")
        return cls(path, cases)

    def score(self, slot: ModelSlot) -> float:
        """The task's primary metric of ``slot``'s model on the set; ``BuilderError`` if the set does not fit the model."""
        if slot.version in self._scores:
            return self._scores[slot.version]
        task, labels = slot.ref.task, list(slot.ref.labels)
        try:
            gold = [task.from_store(case.record, labels, slot.ref.options) for case in self.cases]
        except DataError as exc:
            raise BuilderError(f"the regression set does not fit this model's labels: {exc.message}") from None
        examples = slot.predictor.parse([case.raw_input for case in self.cases], [case.where for case in self.cases])
        predictions = slot.predictor.predict_examples(examples)
        metrics = evaluate_with_options(task, predictions, gold, labels, slot.predictor.options).metrics
        self._scores[slot.version] = float(metrics[task.primary_metric])
        return self._scores[slot.version]
