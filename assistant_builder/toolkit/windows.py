"""Long inputs as overlapping windows of at most ``max_length`` tokens, and which window decides each word.

Torch-free. Two kinds of windows:

* Word windows (``encode_words``, for token-level tasks). The tokenizer handed to a task's
  ``encode`` truncates at ``max_length`` and is shared (the engine and the runtime use it for every
  call), so it is never reconfigured here. A sentence that fits is encoded once, special tokens
  included. A longer one is encoded again *without* special tokens: the tokenizer's truncation then
  cuts the word pieces into consecutive chunks (``overflowing``), which are concatenated back into
  the whole sequence (dropping the tokenizer's own stride, if it has one). That sequence is cut into
  windows of ``max_length - specials`` tokens that overlap by ``stride`` tokens and start and end on
  word boundaries where possible (``plan_windows``), and the special tokens (read off the encoding
  of a one-word input, so any template works: ``special_layout``) are put around each window.

  Ownership. Every word is predicted by exactly one window: the one where its first sub-token is
  farthest from a window edge (so it has the most context on both sides); ties go to the earlier
  window (``owners``). Words the tokenizer turns into no tokens at all (e.g. a lone zero-width
  space) are owned by no window and decode as ``O``.

* Fixed-size windows (``window_starts``, for a context that must be cut anywhere, as extractive
  QA does): consecutive windows share ``stride`` tokens, capped at half a window
  (``effective_stride``) so they always advance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assistant_builder.toolkit.alignment import first_subtokens

__all__ = ["Window", "special_layout", "full_sequence", "plan_windows", "owners", "encode_words", "window_starts",
           "effective_stride", "untruncated"]

SpecialLayout = tuple[list[int], list[int], list[int], list[int]]
"""Ids and type ids of the special tokens before a sequence, then after it (``special_layout``)."""


@dataclass(frozen=True)
class Window:
    """One model input: token ids, types, the word of each token, and the words this window predicts.

    ``first_tokens`` maps word index -> position of its first sub-token *in this window* for every
    word that starts here; ``owned`` lists the ``(word, position)`` pairs this window decides.
    """

    ids: list[int]
    type_ids: list[int]
    word_ids: list[int | None]
    first_tokens: dict[int, int]
    owned: list[tuple[int, int]]


def special_layout(tokenizer: Any) -> SpecialLayout:
    """Ids and type ids of the special tokens before and after a single sequence (e.g. [CLS] / [SEP])."""
    encoding = tokenizer.encode(["a"], is_pretokenized=True)
    word_ids = encoding.word_ids
    inside = [i for i, w in enumerate(word_ids) if w is not None]
    first, last = (inside[0], inside[-1]) if inside else (len(word_ids), len(word_ids) - 1)
    return encoding.ids[:first], encoding.type_ids[:first], encoding.ids[last + 1 :], encoding.type_ids[last + 1 :]


def full_sequence(tokenizer: Any, words: Sequence[str]) -> tuple[list[int], list[int], list[int]]:
    """Ids, type ids and word ids of all of ``words``' sub-tokens, without special tokens or truncation."""
    encoding = tokenizer.encode(list(words), is_pretokenized=True, add_special_tokens=False)
    overlap = int((tokenizer.truncation or {}).get("stride", 0))
    ids, types, word_ids = list(encoding.ids), list(encoding.type_ids), list(encoding.word_ids)
    for piece in encoding.overflowing:
        ids += piece.ids[overlap:]
        types += piece.type_ids[overlap:]
        word_ids += piece.word_ids[overlap:]
    return ids, types, word_ids  # type: ignore[return-value]


def plan_windows(word_ids: Sequence[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Token ranges ``[start, end)`` of at most ``budget`` tokens covering ``word_ids``, overlapping by about ``overlap``.

    Windows start and end on word boundaries unless a single word is longer than what is left of
    the window; every token is in at least one window.
    """
    count = len(word_ids)
    budget = max(1, budget)
    overlap = max(0, min(overlap, budget // 2))

    def boundary(position: int) -> bool:
        return position in (0, count) or word_ids[position] != word_ids[position - 1]

    windows: list[tuple[int, int]] = []
    start, previous_end = 0, 0
    while True:
        end = min(start + budget, count)
        cut = end
        while cut > start and not boundary(cut):
            cut -= 1
        if cut > max(start, previous_end):  # never back off so far that the window adds nothing
            end = cut
        windows.append((start, end))
        if end >= count:
            return windows
        previous_end = end
        target = max(end - overlap, start + 1)
        aligned = target
        while aligned > start + 1 and not boundary(aligned):
            aligned -= 1
        if not boundary(aligned):
            aligned = target
            while aligned < end and not boundary(aligned):
                aligned += 1
        start = aligned


def owners(first_positions: dict[int, int], windows: Sequence[tuple[int, int]]) -> dict[int, int]:
    """Word -> index of the window that predicts it (first sub-token farthest from that window's edges)."""
    chosen: dict[int, int] = {}
    for word, position in first_positions.items():
        best, best_margin = -1, -1
        for index, (start, end) in enumerate(windows):
            if start <= position < end:
                margin = min(position - start, end - 1 - position)
                if margin > best_margin:
                    best, best_margin = index, margin
        chosen[word] = best
    return chosen


def encode_words(words: Sequence[str], tokenizer: Any, max_length: int, stride: int,
                 layout: SpecialLayout | None = None, encoding: Any = None) -> list[Window]:
    """Encode one sentence as one window, or as overlapping windows when it is longer than ``max_length`` tokens.

    ``layout`` (from ``special_layout``) and ``encoding`` (``tokenizer.encode(words, is_pretokenized=True)``)
    may be passed in when the caller already has them.
    """
    if encoding is None:
        encoding = tokenizer.encode(list(words), is_pretokenized=True)
    if not encoding.overflowing and len(encoding.ids) <= max_length:
        word_ids = list(encoding.word_ids)
        first = first_subtokens(word_ids)
        return [Window(list(encoding.ids), list(encoding.type_ids), word_ids, first, sorted(first.items()))]
    prefix_ids, prefix_types, suffix_ids, suffix_types = layout or special_layout(tokenizer)
    ids, types, word_ids = full_sequence(tokenizer, words)
    global_first = first_subtokens(word_ids)
    windows = plan_windows(word_ids, max_length - len(prefix_ids) - len(suffix_ids), stride)
    owner = owners(global_first, windows)
    shift = len(prefix_ids)
    result = []
    for index, (start, end) in enumerate(windows):
        window_words: list[int | None] = [None] * shift + list(word_ids[start:end]) + [None] * len(suffix_ids)
        first = {w: p - start + shift for w, p in global_first.items() if start <= p < end}
        owned = sorted((w, first[w]) for w in first if owner[w] == index)
        result.append(Window(prefix_ids + ids[start:end] + suffix_ids, prefix_types + types[start:end] + suffix_types,
                             window_words, first, owned))
    return result


def window_starts(length: int, size: int, stride: int) -> list[int]:
    """Start offsets of windows of ``size`` tokens over ``length`` tokens, consecutive ones sharing ``stride``.

    The last window ends exactly at ``length``; a sequence that fits is one window at 0. Pass a
    ``stride`` below ``size`` (``effective_stride``).
    """
    if length <= size:
        return [0]
    step = size - stride
    starts = list(range(0, length - size, step))
    return [*starts, length - size] if not starts or starts[-1] != length - size else starts


def effective_stride(stride: int, size: int) -> int:
    """The overlap actually used: ``stride``, capped at half a window so windows always advance."""
    return max(0, min(stride, size // 2))


def untruncated(tokenizer: Any) -> Any:
    """A copy of ``tokenizer`` (a ``tokenizers.Tokenizer``) without truncation or padding.

    The tokenizer a task receives truncates at ``max_length`` and is shared; copy it to encode an
    input in full before cutting it into windows.
    """
    from tokenizers import Tokenizer

    clone = Tokenizer.from_str(tokenizer.to_str())
    clone.no_truncation()
    clone.no_padding()
    return clone
