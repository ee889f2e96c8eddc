"""A task's feedback contract (``Task.to_store`` ... ``prediction_confidence``), checked on its sample
data with the tiny model, as ``builder serve --feedback`` and ``data.extra`` use it:

* ``feedback: store records``: every sample example becomes a ``StoreRecord`` in its labelling
  kind's shape, JSON-ready, with its label; ``from_store`` gives it back (``to_store`` of the result
  is the same record) and refuses a label outside the label set with a ``DataError``;
* ``feedback: corrections``: for the tiny model's predictions, ``{"correct": true}`` gives
  ``prediction_gold``, which ``from_store`` accepts as a training label; a malformed value of each
  ``feedback_fields`` field is a ``DataError`` (the server's 422), never another exception;
* ``feedback: confidence``: ``prediction_confidence`` is ``None`` or a number in [0, 1], a
  prediction marked ``"in_scope": false`` is below ``capture_threshold``, and the threshold is in (0, 1].

The contract is optional: a task that implements none of it passes with a note saying what it then lacks.
"""

from __future__ import annotations

import json
import math
from typing import Any

from assistant_builder.conformance.bench import Workspace, load_bench
from assistant_builder.conformance.results import PASS, SKIP, CheckFailed, Recorder, expect
from assistant_builder.contracts import is_generative, StoreRecord, Task
from assistant_builder.errors import DataError

#: a correction value no task accepts
MALFORMED = {"__not_a_valid_correction__": [1, 2]}


def check_task_feedback(recorder: Recorder, task_class: type[Task], workspace: Workspace) -> None:
    from assistant_builder.feedback import supports_feedback

    task = task_class()
    if not supports_feedback(task_class):
        # an optional contract left out is not a conformance problem (strict mode fails on skips)
        recorder.add("feedback", PASS, "not implemented (optional): without Task.to_store / from_store (and prediction_gold, "
                                       "feedback_gold for span tasks) the task cannot serve with --feedback or train on data.extra")
        return
    if type(task).sample_data is Task.sample_data:
        recorder.add("feedback", SKIP, "needs sample_data() to check the feedback contract")
        return
    state: dict[str, Any] = {}

    def records() -> str:
        from assistant_builder.feedback import check_record

        bench = load_bench(task, workspace.model_for(task), workspace.scratch(f"feedback-{task.name}"))
        state["bench"] = bench
        labels = bench.data.labels
        examples = [*bench.data.train, *bench.data.validation]
        for number, example in enumerate(examples):
            record = task.to_store(example)
            problems = check_record(task.labelling_kind, record)
            expect(not problems, f"to_store(example {number}): {'; '.join(problems)}")
            expect(record.gold is not None, f"to_store(example {number}) of a labelled sample example has gold None")
            again = task.to_store(task.from_store(record, labels, bench.options))
            expect((again.payload, again.gold) == (record.payload, record.gold),
                   f"to_store(from_store(r)) differs from r for example {number}: {again!r:.160} vs {record!r:.160}")
        if task.labelling_kind == "text_class":
            try:
                task.from_store(StoreRecord(task.to_store(examples[0]).payload, "__no_such_label__"), labels, bench.options)
            except DataError:
                pass
            else:
                raise CheckFailed("from_store accepted the label '__no_such_label__', which is not in the label set; "
                                  "expected a DataError")
        return f"{len(examples)} examples round-trip ({task.labelling_kind})"

    def corrections() -> str:
        from assistant_builder.engine.torch_runner import torch_runner
        from assistant_builder.inference import run_features

        bench = state["bench"]
        model = bench.build_model().eval()
        outputs = run_features(torch_runner(model, task.output_names), bench.valid_features, bench.pad_id, task.output_names,
                               task.sequence_outputs)
        predictions = task.decode(outputs, bench.valid_features, bench.data.validation, bench.data.labels, bench.options)
        if is_generative(task):  # the guess a user confirms or corrects is the generated answer
            predictions = task.add_completions(predictions, bench.valid_features, bench.data.validation,
                                               task.torch_generator(model, bench.options), bench.tokenizer, bench.options)
        state["predictions"] = predictions
        for number, (example, prediction) in enumerate(zip(bench.data.validation, predictions)):
            guess = task.prediction_gold(example, prediction)
            gold = task.feedback_gold(example, prediction, {"correct": True}, bench.data.labels, bench.options)
            expect(gold == guess, f"prediction {number}: feedback_gold({{'correct': true}}) is {gold!r:.80}, prediction_gold {guess!r:.80}")
            json.dumps(gold, allow_nan=False)
            task.from_store(StoreRecord(task.to_store(example).payload, gold), bench.data.labels, bench.options)
            for field_name in task.feedback_fields:
                try:
                    task.feedback_gold(example, prediction, {field_name: MALFORMED}, bench.data.labels, bench.options)
                except DataError as error:
                    expect(bool(error.message), f"feedback_gold's DataError for a malformed '{field_name}' has no message")
                else:
                    raise CheckFailed(f"feedback_gold accepted {{'{field_name}': {json.dumps(MALFORMED)}}}; expected a DataError "
                                      "saying what the field must hold")
        return f"{len(predictions)} predictions; fields: {', '.join(task.feedback_fields) or 'correct only'}"

    def confidence() -> str:
        threshold = task.capture_threshold
        expect(isinstance(threshold, (int, float)) and 0 < threshold <= 1, f"capture_threshold must be in (0, 1], got {threshold!r}")
        seen = []
        for number, prediction in enumerate(state["predictions"]):
            value = task.prediction_confidence(prediction)
            expect(value is None or (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1),
                   f"prediction_confidence(prediction {number}) must be None or in [0, 1], got {value!r}")
            rejected = task.prediction_confidence({**prediction, "in_scope": False})
            expect(rejected is not None and rejected < threshold,
                   f"a prediction with \"in_scope\": false must be uncertain (below capture_threshold {threshold}), got {rejected!r}")
            seen.append(value)
        known = [v for v in seen if v is not None]
        return f"threshold {threshold:g}; " + (f"confidence {min(known):.2f}-{max(known):.2f}" if known else "no measure on these")

    if recorder.run_steps([("feedback: store records", records), ("feedback: corrections", corrections)]):
        recorder.run("feedback: confidence", confidence)
    else:
        recorder.add("feedback: confidence", SKIP, "needs 'feedback: corrections', which did not pass")
