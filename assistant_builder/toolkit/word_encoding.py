"""What a token task hands its tokenizer for a sentence's words, so each word is encoded as the
model saw it in pre-training. Torch-free.

Token tasks encode a sentence as a list of words (``tokenizer.encode(words, is_pretokenized=True)``)
so every sub-token knows its word. A WordPiece tokenizer (BERT) then gives the same tokens as for
the text; a byte-level BPE tokenizer (RoBERTa, GPT-2, ModernBERT) does not: it marks a word that
follows a space with ``Ġ`` only when it sees the space, so ``"Rossi"`` alone becomes ``R/os/si``
instead of the ``ĠRossi`` it was pre-trained on. ``encoder_words`` gives such a word its leading
space back, exactly where the text had white space before it, whenever ``marks_spaces`` finds the
tokenizer needs it (a probe: the words encoded with and without their spaces, against the text).
Sentencepiece tokenizers (Metaspace: XLM-R, DeBERTa-v2/v3, ALBERT) mark every pre-tokenized word
with ``▁`` themselves, so their words are passed unchanged (a punctuation mark right after a word
then gets a ``▁`` the text would not have given it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["marks_spaces", "encoder_words"]

_PROBE_TEXT = "lower Newer, wider"
_PROBE_WORDS = (("lower", (0, 5)), ("Newer", (6, 11)), (",", (11, 12)), ("wider", (13, 18)))


def marks_spaces(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` (a ``tokenizers.Tokenizer``) needs a word's preceding space to encode it as in running text.

    True when the words of a probe sentence, each with its preceding space, encode exactly as the
    sentence does and the bare words do not (byte-level BPE); false otherwise (WordPiece, Metaspace).
    """
    text_ids = tokenizer.encode(_PROBE_TEXT, add_special_tokens=False).ids
    bare = [word for word, _ in _PROBE_WORDS]
    if tokenizer.encode(bare, is_pretokenized=True, add_special_tokens=False).ids == text_ids:
        return False
    spaced = _with_spaces(bare, [span for _, span in _PROBE_WORDS], _PROBE_TEXT)
    return tokenizer.encode(spaced, is_pretokenized=True, add_special_tokens=False).ids == text_ids


def _with_spaces(words: Sequence[str], offsets: Sequence[tuple[int, int]] | None, text: str | None) -> list[str]:
    if not offsets or text is None or len(offsets) != len(words):
        return [word if index == 0 else " " + word for index, word in enumerate(words)]
    return [" " + word if index and offsets[index][0] > offsets[index - 1][1] else word for index, word in enumerate(words)]


def encoder_words(tokenizer: Any, words: Sequence[str], text: str | None = None,
                  offsets: Sequence[tuple[int, int]] | None = None, *, spaces: bool | None = None) -> list[str]:
    """The strings to encode for ``words`` (``is_pretokenized=True``): each word, with a leading space when
    the tokenizer marks spaces (``marks_spaces``, or ``spaces`` when the caller already knows) and the
    word follows white space in ``text`` (``offsets``: each word's characters there; without them
    every word but the first is taken to follow a space).
    """
    if spaces is None:
        spaces = marks_spaces(tokenizer)
    return _with_spaces(words, offsets, text) if spaces else list(words)
