"""Alignment between characters, words and sub-tokens. Torch-free.

Token-level tasks label *words*, keep each word's character offsets so predictions come back as
spans of the original text, and put a word's label on its *first sub-token* only (the others, and
the special tokens, get the ignored target ``-100``). A word (``WORD``, ``split_words``) is a run of
letters, marks and digits, a single punctuation mark, or a single character of a script written
without spaces between words (Han, kana, Thai, Lao, Khmer, Myanmar: each character with its
combining marks is a word, as BERT's basic tokenizer splits CJK characters), so Chinese,
Japanese and Thai text is labelled and predicted by character with exact offsets. Character spans
from data (``{"start", "end"}``) map to the words they cover (``char_span_words``); a span given in
characters maps to the sub-tokens covering it (``char_span_tokens``, from the tokenizer's offsets).
Words given as a list are joined into a text the way the script is written (``join_words``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import regex

from assistant_builder.errors import DataError

__all__ = ["WORD", "UNSPACED_SCRIPTS", "IGNORE", "split_words", "is_unspaced_char", "join_words", "words_of_input",
           "locate_words", "char_span_words", "words_char_span", "span_text", "first_subtokens", "first_token_targets",
           "char_span_tokens"]

UNSPACED_SCRIPTS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}"
"""Scripts written without spaces between words (``regex`` classes): each character is a word of its own."""

_UNSPACED = f"[{UNSPACED_SCRIPTS}\u30fc\u3005]"  # + the katakana long vowel mark and the ideographic iteration mark
WORD = regex.compile(rf"{_UNSPACED}\p{{M}}*|(?:(?!{_UNSPACED})[\w\p{{M}}\p{{N}}])+|[^\w\p{{N}}\s\x1c-\x1f]\p{{M}}*")
"""What a word is: one character of a script written without spaces (with its combining marks), a run of
other letters, combining marks, digits and ``_``, or one character that is neither a word character nor space."""
_UNSPACED_CHAR = regex.compile(rf"{_UNSPACED}\p{{M}}*")
_ASCII_WORD = re.compile(r"\w+|[^\w\s]")  # the same words for ASCII text, five times faster (bench/word_encoding.py)

IGNORE = -100
"""The target of positions a loss must skip (PyTorch's ``cross_entropy`` default ``ignore_index``)."""

Offsets = Sequence[tuple[int, int]]


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The words of ``text`` (``WORD``) and the ``(start, end)`` character offsets of each.

    ``text[start:end] == word`` for every word; white space belongs to no word.
    """
    matches = list((_ASCII_WORD if text.isascii() else WORD).finditer(text))
    return [m.group() for m in matches], [(m.start(), m.end()) for m in matches]


def is_unspaced_char(word: str) -> bool:
    """Whether ``word`` is one character (with its combining marks) of a script written without spaces."""
    return _UNSPACED_CHAR.fullmatch(word) is not None


def join_words(tokens: Sequence[str], spaces_before: Collection[int] = ()) -> tuple[str, list[tuple[int, int]]]:
    """``tokens`` joined as the text is written, and each token's offsets in that text.

    The text of an input given as words, so that its predictions have character offsets too.
    Tokens are separated by one space, except next to a character of a script written without
    spaces (``is_unspaced_char``: ``["我", "爱", "北", "京"]`` -> ``"我爱北京"``); a sentence of single
    characters with at least one of those (one character per line, as Chinese CoNLL files are) is
    joined without any separator (``["听", "t", "f"]`` -> ``"听tf"``). A token whose index is in
    ``spaces_before`` always follows one space (the file had a space there: ``read_conll``).
    """
    unspaced = [is_unspaced_char(token) for token in tokens]
    by_character = any(unspaced) and all(len(token) == 1 for token in tokens)
    parts: list[str] = []
    offsets, position = [], 0
    for index, token in enumerate(tokens):
        if index and (index in spaces_before or (not by_character and not unspaced[index] and not unspaced[index - 1])):
            parts.append(" ")
            position += 1
        offsets.append((position, position + len(token)))
        parts.append(token)
        position += len(token)
    return "".join(parts), offsets


def locate_words(text: str, tokens: Sequence[str]) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each of ``tokens`` in ``text``, found in order (white space between them skipped).

    Raises ``DataError`` naming the first token that is not the next thing in ``text``.
    """
    offsets, position = [], 0
    for number, token in enumerate(tokens, start=1):
        while position < len(text) and text[position].isspace() and not text.startswith(token, position):
            position += 1
        if not text.startswith(token, position):
            raise DataError(f"token {number} ({token!r}) is not found in 'text' at character {position} "
                            f"(found {text[position:position + len(token) + 5]!r})",
                            hint="give the tokens in the order they appear in the text, each as written there")
        offsets.append((position, position + len(token)))
        position += len(token)
    return offsets


def words_of_input(raw: Any) -> tuple[tuple[str, ...], str, tuple[tuple[int, int], ...]]:
    """``(words, text, offsets)`` of a user's input to a token-level task (``Task.parse_input``).

    Accepts a string or ``{"text": "..."}`` (split with ``split_words``), or ``{"tokens": [...]}``
    (stripped words, ``text`` their ``join_words``), or ``{"tokens": [...], "text": "..."}`` (the
    tokens located in the user's text, ``locate_words``, so offsets slice that text). Anything
    else, or an input without a word, raises ``DataError`` saying what was expected.
    """
    if isinstance(raw, dict) and "tokens" in raw:
        tokens = raw["tokens"]
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t.strip() for t in tokens):
            raise DataError(f"expected 'tokens' to be a non-empty list of non-empty strings, got {tokens!r}")
        words = tuple(t.strip() for t in tokens)
        if isinstance(raw.get("text"), str):
            return words, raw["text"], tuple(locate_words(raw["text"], words))
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
