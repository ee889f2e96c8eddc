"""Alignment between characters, words and sub-tokens. Torch-free.

Token-level tasks label *words* (a word is a ``\\w+`` run or a single punctuation mark, see
``split_words``), keep each word's character offsets so predictions come back as spans of the
original text, and put a word's label on its *first sub-token* only (the others, and the special
tokens, get the ignored target ``-100``). Character spans from data (``{"start", "end"}``) map to
the words they cover (``char_span_words``); a span given in characters maps to the sub-tokens
covering it (``char_span_tokens``, from the tokenizer's offsets).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from assistant_builder.errors import DataError

__all__ = ["WORD", "IGNORE", "split_words", "join_words", "words_of_input", "char_span_words", "words_char_span", "span_text",
           "first_subtokens", "first_token_targets", "char_span_tokens"]

WORD = re.compile(r"\w+|[^\w\s]")
"""What a word is: a run of word characters, or one character that is neither a word character nor space."""

IGNORE = -100
"""The target of positions a loss must skip (PyTorch's ``cross_entropy`` default ``ignore_index``)."""

Offsets = Sequence[tuple[int, int]]


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The words of ``text`` (``WORD``) and the ``(start, end)`` character offsets of each.

    ``text[start:end] == word`` for every word; white space belongs to no word.
    """
    matches = list(WORD.finditer(text))
    return [m.group() for m in matches], [(m.start(), m.end()) for m in matches]


def join_words(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """``tokens`` joined by single spaces, and each token's offsets in that text.

    The text of an input given as words, so that its predictions have character offsets too.
    """
    offsets, position = [], 0
    for token in tokens:
        offsets.append((position, position + len(token)))
        position += len(token) + 1
    return " ".join(tokens), offsets


def words_of_input(raw: Any) -> tuple[tuple[str, ...], str, tuple[tuple[int, int], ...]]:
    """``(words, text, offsets)`` of a user's input to a token-level task (``Task.parse_input``).

    Accepts a string or ``{"text": "..."}`` (split with ``split_words``), or ``{"tokens": [...]}``
    (stripped words, ``text`` their ``join_words``). Anything else, or an input without a word,
    raises ``DataError`` saying what was expected.
    """
    if isinstance(raw, dict) and "tokens" in raw:
        tokens = raw["tokens"]
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t.strip() for t in tokens):
            raise DataError(f"expected 'tokens' to be a non-empty list of non-empty strings, got {tokens!r}")
        words = tuple(t.strip() for t in tokens)
        text, offsets = join_words(words)
        return words, text, tuple(offsets)
    if isinstance(raw, dict) and isinstance(raw.get("text"), str):
        raw = raw["text"]
    if not isinstance(raw, str):
        raise DataError(f"expected a string, an object with a 'text' string, or an object with a 'tokens' list, got {raw!r}")
    found, spans = split_words(raw)
    if not found:
        raise DataError(f"expected text with at least one word, got {raw!r}")
    return tuple(found), raw, tuple(spans)


def char_span_words(offsets: Offsets, start: int, end: int) -> list[int]:
    """Indices of the words (with character ``offsets``) that overlap the characters ``[start, end)``, in order.

    Empty when the span covers only white space. A span that cuts a word covers that whole word:
    compare ``words_char_span`` of the result with ``(start, end)`` to tell.
    """
    return [i for i, (s, e) in enumerate(offsets) if s < end and e > start]


def words_char_span(offsets: Offsets, first: int, end: int) -> tuple[int, int]:
    """The characters ``(start, end)`` from the start of word ``first`` to the end of word ``end - 1``."""
    return offsets[first][0], offsets[end - 1][1]


def span_text(text: str, offsets: Offsets, first: int, end: int) -> str:
    """The text of words ``first`` to ``end - 1`` as it stands in ``text`` (inner spaces and punctuation kept)."""
    start, stop = words_char_span(offsets, first, end)
    return text[start:stop]


def first_subtokens(word_ids: Sequence[int | None]) -> dict[int, int]:
    """Word index -> position of its first sub-token, from a tokenizer encoding's ``word_ids``.

    Special tokens (``None``) are skipped; a word the tokenizer turned into no token is absent.
    """
    first: dict[int, int] = {}
    for position, word in enumerate(word_ids):
        if word is not None and word not in first:
            first[word] = position
    return first


def first_token_targets(length: int, first_tokens: Mapping[int, int], word_targets: Sequence[int]) -> list[int]:
    """Per-token targets for ``length`` tokens: ``word_targets[w]`` at word ``w``'s first sub-token, ``IGNORE`` elsewhere.

    ``first_tokens`` maps word -> position (``first_subtokens``, or a window's ``first_tokens``);
    words missing from it (cut off by truncation) get no target.
    """
    targets = [IGNORE] * length
    for word, position in first_tokens.items():
        targets[position] = word_targets[word]
    return targets


def char_span_tokens(offsets: Sequence[tuple[int, int]], start_char: int, end_char: int) -> tuple[int, int] | None:
    """First and last token (indices into ``offsets``, the tokens' character offsets) covering ``[start_char, end_char)``.

    Tokens with empty offsets (special tokens) never count. ``None`` when no token covers the span.
    """
    first = next((i for i, (s, e) in enumerate(offsets) if e > start_char and e > s), None)
    last = next((i for i in range(len(offsets) - 1, -1, -1) if offsets[i][0] < end_char and offsets[i][1] > offsets[i][0]), None)
    if first is None or last is None or last < first:
        return None
    return first, last
