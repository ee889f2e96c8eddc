"""Question-answering data: SQuAD v1.1 / v2.0 JSON files and JSON Lines, with located errors.

SQuAD JSON: ``{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
"answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}``. JSONL: one object per line,
``{"question", "context", "answers": {"text": [...], "answer_start": [...]}, "id"?}`` (the Hugging
Face ``datasets`` layout; a list of ``{"text", "answer_start"}`` objects is accepted too).

Errors name the file and the question (its id and, for SQuAD files, the line the id is on).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant_builder import datasources
from assistant_builder.datasources import Record, is_saved_dataset
from assistant_builder.errors import DataError

UNANSWERABLE_HINT = "set task.options.allow_unanswerable = true to train on SQuAD v2.0-style questions without an answer"


@dataclass(frozen=True)
class Answer:
    """A gold answer: its text and the character offset where it starts in the context."""

    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True)
class QAExample:
    """A question about a context. ``answers``: ``None`` when unlabelled, ``()`` when unanswerable."""

    question: str
    context: str
    answers: tuple[Answer, ...] | None = None
    id: str | None = None
    source: str = ""

    @property
    def is_unanswerable(self) -> bool:
        return self.answers is not None and not self.answers


def detect_qa_format(path: Path, declared: str) -> str:
    """``squad`` or ``jsonl``, from ``declared`` or the extension (``.json`` -> squad)."""
    if declared != "auto":
        return declared
    if path.is_dir():
        return "hf_disk" if is_saved_dataset(path) else "files"
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "squad"
    if suffix == ".parquet":
        return "parquet"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise DataError(f"{path}: cannot tell the format from the extension '{suffix}'; expected .json (SQuAD), .jsonl or .parquet",
                    hint='set data.format = "squad", "jsonl", "parquet", "files" or "hf_disk" in the recipe')


def make_example(question: Any, context: Any, answers: list[tuple[Any, Any]] | None, qid: str | None, where: str,
                 allow_unanswerable: bool, impossible: bool = False) -> QAExample:
    """Check one question and build a ``QAExample``; ``where`` locates it in error messages."""
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: empty question; expected a non-empty string, got {question!r}")
    if not isinstance(context, str) or not context.strip():
        raise DataError(f"{where}: empty context; expected a non-empty string, got {context!r}")
    checked: list[Answer] = []
    if not impossible:
        for text, start in answers or []:
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{where}: answer text must be a non-empty string, got {text!r}")
            if isinstance(start, bool) or not isinstance(start, int) or start < 0:
                raise DataError(f"{where}: answer_start must be a non-negative integer, got {start!r}")
            found = context[start : start + len(text)]
            if found != text:
                elsewhere = context.find(text)
                hint = (f"the text occurs at answer_start {elsewhere}" if elsewhere >= 0
                        else "the answer text does not occur in the context at all; check quotes, spaces and case")
                raise DataError(f"{where}: answer {text!r} does not match the context at answer_start {start} "
                                f"(the context has {found!r} there)", hint=hint)
            checked.append(Answer(text, start))
    if not checked and not allow_unanswerable:
        what = "is marked is_impossible" if impossible else "has no answers"
        raise DataError(f"{where}: question {what}; unanswerable questions are off", hint=UNANSWERABLE_HINT)
    return QAExample(question.strip(), context, tuple(checked), qid, where)


# ------------------------------------------------------------------------------------- SQuAD JSON


def _load_json(path: Path) -> tuple[Any, str]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: bytes that are not UTF-8 at offset {exc.start}", hint="re-save the file as UTF-8") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return json.loads(text), text
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg} at column {exc.colno})",
                        hint="a SQuAD file is one JSON object; check it with `python -m json.tool FILE`") from None


def _line_of_id(text: str, qid: str) -> int | None:
    match = re.search(r'"id"\s*:\s*' + re.escape(json.dumps(qid)), text)
    if match is None:
        match = re.search(r'"id"\s*:\s*' + re.escape(json.dumps(qid, ensure_ascii=False)), text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _expect(value: Any, kind: type, where: str, what: str) -> Any:
    if not isinstance(value, kind):
        expected = {list: "a list", dict: "an object", str: "a string"}[kind]
        raise DataError(f"{where}: {what} must be {expected}, got {type(value).__name__}",
                        hint='expected SQuAD JSON: {"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}')
    return value


def read_squad(path: Path, allow_unanswerable: bool) -> list[QAExample]:
    """Read a SQuAD v1.1 or v2.0 JSON file."""
    root, text = _load_json(path)
    articles = _expect(_expect(root, dict, str(path), "the top level").get("data"), list, str(path), "'data'")
    examples: list[QAExample] = []
    for a, article in enumerate(articles):
        at = f"{path}: data[{a}]"
        paragraphs = _expect(_expect(article, dict, at, "an article").get("paragraphs"), list, at, "'paragraphs'")
        for p, paragraph in enumerate(paragraphs):
            pat = f"{at}.paragraphs[{p}]"
            paragraph = _expect(paragraph, dict, pat, "a paragraph")
            context = paragraph.get("context")
            for q, qa in enumerate(_expect(paragraph.get("qas", []), list, pat, "'qas'")):
                qa = _expect(qa, dict, f"{pat}.qas[{q}]", "a question")
                qid = str(qa["id"]) if qa.get("id") is not None else f"{a}-{p}-{q}"
                line = _line_of_id(text, qid) if "id" in qa else None
                where = f"{path}:{line}: question '{qid}'" if line else f"{pat}.qas[{q}] (question '{qid}')"
                raw_answers = _expect(qa.get("answers", []), list, where, "'answers'")
                pairs = []
                for answer in raw_answers:
                    answer = _expect(answer, dict, where, "each answer")
                    pairs.append((answer.get("text"), answer.get("answer_start")))
                examples.append(make_example(qa.get("question"), context, pairs, qid, where, allow_unanswerable,
                                             impossible=bool(qa.get("is_impossible", False))))
    if not examples:
        raise DataError(f"{path}: no questions found; expected SQuAD JSON with data[].paragraphs[].qas[]")
    return examples


# ------------------------------------------------------------------------------------- JSON Lines


def _jsonl_answers(value: Any, where: str) -> list[tuple[Any, Any]]:
    if isinstance(value, dict):
        texts, starts = value.get("text", []), value.get("answer_start", [])
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            raise DataError(f"{where}: 'answers' must hold two lists of equal length, 'text' and 'answer_start', got {value!r}")
        return list(zip(texts, starts))
    if isinstance(value, list) and all(isinstance(a, dict) for a in value):
        return [(a.get("text"), a.get("answer_start")) for a in value]
    raise DataError(f"{where}: 'answers' must be {{\"text\": [...], \"answer_start\": [...]}}, got {value!r}")


def read_qa_jsonl(path: Path, allow_unanswerable: bool) -> list[QAExample]:
    """Read JSONL question/context/answers records."""
    return read_qa_records(datasources.read_jsonl(path), path, allow_unanswerable)


def read_qa_records(records: Iterable[Record], path: Path, allow_unanswerable: bool) -> list[QAExample]:
    """Question/context/answers records (JSONL lines, Parquet rows, rows of a saved SQuAD-style dataset)."""
    examples: list[QAExample] = []
    for record in records:
        row = record.row
        qid = str(row["id"]) if row.get("id") is not None else None
        where = record.where + (f": question '{qid}'" if qid else "")
        for name in ("question", "context", "answers"):
            if name not in row:
                keys = ", ".join(sorted(map(str, row))) or "none"
                raise DataError(f"{where}: missing field '{name}' (found: {keys})",
                                hint='expected {"question": ..., "context": ..., "answers": {"text": [...], "answer_start": [...]}}')
        examples.append(make_example(row["question"], row["context"], _jsonl_answers(row["answers"], where), qid, where,
                                     allow_unanswerable))
    if not examples:
        raise DataError(f"{path}: no questions found; expected records with 'question', 'context' and 'answers'")
    return examples


def read_examples(path: Path, file_format: str, allow_unanswerable: bool, split: str = "train") -> list[QAExample]:
    """Read ``path`` in ``file_format`` (``auto``, ``squad``, ``jsonl``, ``parquet``, ``files`` or ``hf_disk``;
    ``split`` chooses the split of a saved dataset)."""
    if not path.exists():
        raise DataError(f"{path}: no such file; expected a SQuAD .json, a .jsonl or .parquet file, or a folder")
    fmt = detect_qa_format(path, file_format)
    if fmt == "squad":
        return read_squad(path, allow_unanswerable)
    if fmt == "jsonl":
        return read_qa_jsonl(path, allow_unanswerable)
    return read_qa_records(datasources.read_records(path, fmt, split), path, allow_unanswerable)


def split_by_context(examples: list[QAExample], fraction: float, seed: int) -> tuple[list[QAExample], list[QAExample]]:
    """Hold out ``fraction`` of the contexts (all their questions) so validation contexts are unseen."""
    contexts = list(dict.fromkeys(e.context for e in examples))
    random.Random(seed).shuffle(contexts)
    held = set(contexts[: max(1, round(len(contexts) * fraction))]) if len(contexts) > 1 else set()
    return [e for e in examples if e.context not in held], [e for e in examples if e.context in held]


def load_split(data: Any, allow_unanswerable: bool) -> tuple[list[QAExample], list[QAExample], dict[str, Path]]:
    """Train and validation examples as the recipe's data section says, and the files they came from."""
    train_path = Path(data.train)
    train = read_examples(train_path, data.format, allow_unanswerable, data.dataset_train_split)
    sources = {"train": train_path}
    if data.validation is not None:
        validation_path = Path(data.validation)
        validation = read_examples(validation_path, data.format, allow_unanswerable, data.dataset_validation_split)
        sources["validation"] = validation_path
    else:
        train, validation = split_by_context(train, data.validation_split, data.split_seed)
    if not validation:
        raise DataError(f"{train_path}: no validation questions could be held out (all questions share one context)",
                        hint="add data.validation or questions about more contexts")
    return train, validation, sources
