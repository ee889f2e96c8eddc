"""Word shapes: the casing an uncased tokenizer lowercases away, as one small id per token.

An uncased encoder (the bundled MiniLM) sees "Apple", "APPLE" and "apple" as the same word
pieces, though capitals are a strong clue for names in cased text (CoNLL-2003). A task can add a
learned embedding of each word's shape to its word-piece embeddings: ``token_shapes`` gives the
``shape_ids`` model input of a window (declare it in ``Task.model_input_names``), and
``token_classifier.TokenClassifier(..., word_shapes=len(SHAPES))`` (or ``encoder.encoder_states(...,
added_embeddings=...)`` in a model of your own) adds the embedding. The ``ner`` task does this
with its ``word_shape`` option. Pure Python, torch-free (the runtime computes shapes for every input).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["LOWER", "MIXED", "NONE", "NUMBER", "OTHER", "SHAPES", "TITLE", "UPPER", "is_cased", "lowercases", "token_shapes",
           "word_shape"]

#: shape ids; 0 is for special and padding tokens
SHAPES = ("none", "lower", "title", "upper", "mixed", "number", "other")
NONE, LOWER, TITLE, UPPER, MIXED, NUMBER, OTHER = range(len(SHAPES))


def word_shape(word: str) -> int:
    """The shape id of ``word``: any digit -> number; no letter -> other; then lower, Title, UPPER (2+ letters) or mIxed."""
    if any(ch.isdigit() for ch in word):
        return NUMBER
    letters = [ch for ch in word if ch.isalpha()]
    if not letters:
        return OTHER
    if all(ch.islower() for ch in letters):
        return LOWER
    if letters[0].isupper() and all(ch.islower() for ch in letters[1:]):
        return TITLE
    if len(letters) > 1 and all(ch.isupper() for ch in letters):
        return UPPER
    return MIXED


def token_shapes(words: Sequence[str], word_ids: Sequence[int | None]) -> list[int]:
    """One shape id per token: the shape of the word the token belongs to, ``NONE`` for special tokens."""
    shapes = [word_shape(word) for word in words]
    return [NONE if word is None else shapes[word] for word in word_ids]


def is_cased(sentences: Sequence[Sequence[str]], minimum_share: float = 0.05) -> bool:
    """Whether at least ``minimum_share`` of the words have an upper-case letter (text that keeps its casing)."""
    words = [word for sentence in sentences for word in sentence]
    upper = sum(any(ch.isupper() for ch in word) for word in words)
    return bool(words) and upper / len(words) >= minimum_share


def lowercases(tokenizer: object) -> bool:
    """Whether ``tokenizer`` (a ``tokenizers.Tokenizer``) lowercases its input before splitting it into pieces."""
    normalizer = getattr(tokenizer, "normalizer", None)
    if normalizer is None:
        return False
    try:
        return normalizer.normalize_str("AbC") == "abc"
    except Exception:  # noqa: BLE001 - a normaliser that cannot say is taken as case-preserving
        return False
