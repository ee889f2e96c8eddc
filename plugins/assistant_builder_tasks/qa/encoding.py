"""Question + context -> model features, with long contexts split into overlapping windows.

Each pair is tokenized once, in full, with the tokenizer's own post-processor (so the special
tokens are right for BERT, RoBERTa and the like: ``[CLS] question [SEP] context [SEP]``). The
tokens before the context (special tokens and the question) and after it are kept as a prefix and
a suffix, and the context tokens are cut into windows of ``max_length - len(prefix) - len(suffix)``
tokens, consecutive windows sharing ``stride`` tokens (the toolkit's ``windows.window_starts``).
Every feature records, per token, the character span it covers in the context (``None`` for
question and special tokens), so decoded spans map back to exact context characters. That span is
trimmed of white space (``trim_span``): sentencepiece (``▁Lane``) and byte-level BPE (``ĠLane``)
tokens include the space before their word in their offsets, and an answer must never start or end
with white space. A token of white space only (a lone ``▁``) covers no character (``None``): no
answer starts or ends on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant_builder.contracts import Feature
from assistant_builder.errors import DataError
from assistant_builder.toolkit.alignment import char_span_tokens
from assistant_builder.toolkit.windows import effective_stride, untruncated, window_starts
from assistant_builder_tasks.qa.data import QAExample

#: label given to a window that does not contain the answer (and to unanswerable questions)
NULL_POSITION = 0


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` narrowed so ``text[start:end]`` neither starts nor ends with white space
    (``start == end`` when it is all white space)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def trimmed_offsets(offsets: Sequence[Any], text: str) -> list[tuple[int, int]]:
    """Each token's ``(start, end)`` in ``text`` without white space at either end (``trim_span``)."""
    return [trim_span(text, int(start), int(end)) for start, end in offsets]


def encode_examples(examples: Sequence[QAExample], tokenizer: Any, max_length: int, stride: int) -> list[Feature]:
    """Features for ``examples`` (training targets included for labelled ones)."""
    if not examples:
        return []
    full = untruncated(tokenizer)
    encodings = full.encode_batch([(e.question, e.context) for e in examples])
    features: list[Feature] = []
    for index, (example, encoding) in enumerate(zip(examples, encodings)):
        features.extend(_windows(index, example, encoding, max_length, stride))
    return features


def _windows(index: int, example: QAExample, encoding: Any, max_length: int, stride: int) -> list[Feature]:
    sequence_ids = encoding.sequence_ids
    context_positions = [i for i, s in enumerate(sequence_ids) if s == 1]
    where = example.source or f"input {index + 1}"
    if not context_positions:
        raise DataError(f"{where}: the context has no tokens; expected some text to find the answer in")
    first, last = context_positions[0], context_positions[-1]
    ids, types, offsets = encoding.ids, encoding.type_ids, encoding.offsets
    prefix, suffix = slice(0, first), slice(last + 1, len(ids))
    special = first + (len(ids) - last - 1)
    size = max_length - special
    if special > max_length // 2:
        question_tokens = sum(1 for s in sequence_ids if s == 0)
        raise DataError(f"{where}: the question is {question_tokens} tokens long; with model.max_length = {max_length} "
                        f"a question may take at most {max_length // 2 - (special - question_tokens)} (half the input, "
                        "the rest is for the context)", hint="shorten the question or raise model.max_length")
    context_offsets = trimmed_offsets(offsets[first : last + 1], example.context)
    span = None
    targets = example.answers is not None
    if example.answers:
        answer = example.answers[0]
        text = answer.text
        start_char = answer.start + (len(text) - len(text.lstrip()))
        end_char = answer.end - (len(text) - len(text.rstrip()))
        span = char_span_tokens(context_offsets, start_char, end_char)
    length = last - first + 1
    features = []
    for start in window_starts(length, size, effective_stride(stride, size)):
        end = min(start + size, length)
        window_ids = ids[prefix] + ids[first + start : first + end] + ids[suffix]
        window_types = types[prefix] + types[first + start : first + end] + types[suffix]
        window_offsets: list[tuple[int, int] | None] = ([None] * first + [o if o[1] > o[0] else None for o in context_offsets[start:end]]
                                                         + [None] * (len(ids) - last - 1))
        feature: Feature = {"input_ids": window_ids, "token_type_ids": window_types, "example_index": index,
                            "offsets": window_offsets}
        if targets:
            if span is not None and span[0] >= start and span[1] < end:
                feature["start_positions"], feature["end_positions"] = first + span[0] - start, first + span[1] - start
            else:
                feature["start_positions"] = feature["end_positions"] = NULL_POSITION
        features.append(feature)
    return features
