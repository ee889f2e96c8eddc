"""Question-answering data for ``builder data check``: a lenient reader and the QA checks.

Every question is checked with the task's own ``data.make_example``, but a question it rejects (an
answer that is not at its ``answer_start`` in the context, an unanswerable question while
``allow_unanswerable`` is off, an empty question or context) becomes a located finding instead of
stopping the check. Questions longer than half the window are reported too (training stops on
them). Contexts longer than the window are the generic ``windowed`` check (QA splits them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant_builder import datasources
from assistant_builder.contracts import CheckData, ExampleView, Finding
from assistant_builder.errors import DataError
from assistant_builder_tasks.qa.data import QAExample, _jsonl_answers, _line_of_id, _load_json, detect_qa_format, make_example, split_by_context

Item = tuple["QAExample | None", "Finding | None"]


def _finding(where: str, error: DataError) -> Finding:
    message = error.message.removeprefix(f"{where}: ")
    if "does not match the context" in message:
        check = "qa.answer_offset"
    elif "unanswerable questions are off" in message:
        check = "qa.unanswerable"
    else:
        check = "qa.invalid_example"
    return Finding(check, "error", where, message + (f" ({error.hint})" if error.hint else ""))


def _checked(question: Any, context: Any, answers: Any, qid: str | None, where: str, allow: bool, impossible: bool = False) -> Item:
    try:
        return make_example(question, context, answers, qid, where, allow, impossible), None
    except DataError as error:
        return None, _finding(where, error)


def _squad(path: Path, allow: bool) -> Iterator[Item]:
    root, text = _load_json(path)
    articles = root.get("data") if isinstance(root, dict) else None
    if not isinstance(articles, list):
        raise DataError(f"{path}: expected SQuAD JSON {{\"data\": [{{\"paragraphs\": [...]}}]}}")
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(article.get("paragraphs", []) if isinstance(article, dict) else []):
            if not isinstance(paragraph, dict):
                continue
            for q, qa in enumerate(paragraph.get("qas", [])):
                if not isinstance(qa, dict):
                    continue
                qid = str(qa["id"]) if qa.get("id") is not None else f"{a}-{p}-{q}"
                line = _line_of_id(text, qid) if "id" in qa else None
                where = f"{path}:{line}: question '{qid}'" if line else f"{path}: data[{a}].paragraphs[{p}].qas[{q}] (question '{qid}')"
                answers = [(x.get("text"), x.get("answer_start")) for x in qa.get("answers", []) if isinstance(x, dict)]
                yield _checked(qa.get("question"), paragraph.get("context"), answers, qid, where, allow, bool(qa.get("is_impossible", False)))


def _records(records: Any, allow: bool) -> Iterator[Item]:
    for record in records:
        row = record.row
        qid = str(row["id"]) if row.get("id") is not None else None
        where = record.where + (f": question '{qid}'" if qid else "")
        missing = [name for name in ("question", "context", "answers") if name not in row]
        if missing:
            yield None, Finding("qa.invalid_example", "error", where, f"missing field '{missing[0]}'; expected question, context and answers")
            continue
        try:
            answers = _jsonl_answers(row["answers"], where)
        except DataError as error:
            yield None, _finding(where, error)
            continue
        yield _checked(row["question"], row["context"], answers, qid, where, allow)


def read_split(path: Path, file_format: str, allow: bool, split: str) -> tuple[list[QAExample], list[Finding]]:
    """The questions ``make_example`` accepts, and a finding for each one it rejects."""
    if not path.exists():
        raise DataError(f"{path}: no such file; expected a SQuAD .json, a .jsonl or .parquet file, or a folder")
    fmt = detect_qa_format(path, file_format)
    items = _squad(path, allow) if fmt == "squad" else _records(datasources.read_records(path, fmt, split), allow)
    examples, findings = [], []
    for example, finding in items:
        if example is not None:
            examples.append(example)
        if finding is not None:
            findings.append(finding)
    return examples, findings


def view(example: QAExample) -> ExampleView:
    answers = example.answers or ()
    label = json.dumps([[a.text, a.start] for a in answers], ensure_ascii=False)
    return ExampleView(example.question, label, ("answer",) if answers else ("unanswerable",), example.source, example.context)


def check_examples(data: Any, options: Any) -> CheckData:
    allow = options.allow_unanswerable
    train, _ = read_split(Path(data.train), data.format, allow, data.dataset_train_split)
    if data.validation is None:
        train, validation = split_by_context(train, data.validation_split, data.split_seed)
        return CheckData(map(view, train), map(view, validation), held_out=True)
    validation, _ = read_split(Path(data.validation), data.format, allow, data.dataset_validation_split)
    return CheckData(map(view, train), map(view, validation))


def check_data(data: Any, options: Any, context: Any) -> list[Finding]:
    """Rejected questions (answer offsets, unanswerable, empty) and questions too long for the window."""
    findings: list[Finding] = []
    splits = [(Path(data.train), data.dataset_train_split)] + ([(Path(data.validation), data.dataset_validation_split)] if data.validation else [])
    for path, split in splits:
        examples, rejected = read_split(path, data.format, options.allow_unanswerable, split)
        findings += rejected
        if context.tokenizer is not None and examples:
            findings += _long_questions(examples, context.tokenizer, context.max_length)
    return findings


def _long_questions(examples: list[QAExample], tokenizer: Any, max_length: int) -> list[Finding]:
    special = tokenizer.num_special_tokens_to_add(True)
    allowed = max_length // 2 - special
    found = []
    for example, encoding in zip(examples, tokenizer.encode_batch([e.question for e in examples], add_special_tokens=False)):
        if len(encoding) > allowed:
            found.append(Finding("qa.long_question", "error", example.source,
                                 f"the question is {len(encoding)} tokens; with model.max_length = {max_length} a question may take at "
                                 f"most {allowed} (half the input); training stops on it"))
    return found
