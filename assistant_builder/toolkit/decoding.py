"""From model scores to predictions: softmax, per-word tag decoding, entity spans. Torch-free (numpy).

A token-level model scores every sub-token; a word is decided at its first sub-token, by the
window that owns it (``windows.encode_words``). ``word_probabilities`` gathers those rows into one
``[words, classes]`` matrix per sentence; ``decode_word_tags`` turns it into one IOB2 tag and one
score per word, either

* ``"argmax"``: the most likely tag of each word, then ``tags.repair`` (an ``I-X`` that starts an
  entity becomes ``B-X``), or
* ``"best_path"``: the most likely *valid* IOB2 sequence (``bio_viterbi``: Viterbi over the words'
  log-probabilities, where ``I-X`` may only follow ``B-X`` or ``I-X``). It equals ``"argmax"``
  whenever the argmax sequence is already valid.

``tag_entities`` then reads the entities as character spans of the text with the mean score of
their words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from assistant_builder.toolkit.tags import invalid_positions, repair, spans_from_tags, split_tag

__all__ = ["drop_weak_entities", "DECODERS", "softmax", "word_probabilities", "argmax_tags", "best_path_tags", "bio_viterbi", "decode_word_tags",
           "tag_entities"]

DECODERS = ("argmax", "best_path")
"""The ``method`` values of ``decode_word_tags``."""


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Probabilities along ``axis`` (numerically stable: the maximum is subtracted first)."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def word_probabilities(word_count: int, labels: Sequence[str], windows: Iterable[tuple[Sequence[tuple[int, int]], Any]],
                       outside: str = "O") -> np.ndarray:
    """A ``[word_count, len(labels)]`` float64 matrix: each word's tag probabilities.

    ``windows`` holds, per model input of the sentence, the ``(word, position)`` pairs it decides
    (a window's ``owned``, or the first sub-tokens of a single encoding) and its logits
    ``[tokens, len(labels)]``; each row is the softmax of the logits at the word's position. A word
    no window decides (cut off, or no sub-token at all) gets probability 1 for ``outside``.
    """
    probabilities = np.zeros((word_count, len(labels)), dtype=np.float64)
    probabilities[:, list(labels).index(outside)] = 1.0
    for pairs, logits in windows:
        if not pairs:
            continue
        words, positions = zip(*pairs)
        probabilities[list(words)] = softmax(np.asarray(logits, dtype=np.float64)[list(positions)])
    return probabilities


def argmax_tags(probabilities: np.ndarray, labels: Sequence[str]) -> tuple[list[str], list[float]]:
    """The most likely tag of each word and its probability (the sequence may be invalid IOB2)."""
    best = probabilities.argmax(axis=-1) if len(probabilities) else np.zeros(0, dtype=int)
    return [labels[int(i)] for i in best], [float(row[i]) for row, i in zip(probabilities, best)]


def _allowed(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Which classes may start a sentence, and which class may follow which, in IOB2."""
    parts = []
    for label in labels:
        prefix, entity_type = split_tag(label)
        if prefix not in "OBI":
            raise ValueError(f"expected IOB2 classes (O, B-TYPE, I-TYPE), got '{label}'")
        parts.append((prefix, entity_type))
    count = len(labels)
    start = np.array([prefix != "I" for prefix, _ in parts], dtype=bool)
    follows = np.ones((count, count), dtype=bool)  # follows[previous, next]
    for j, (prefix, entity_type) in enumerate(parts):
        if prefix == "I":
            follows[:, j] = [p in "BI" and t == entity_type for p, t in parts]
    if not start.any():
        raise ValueError(f"no valid IOB2 sequence over classes {list(labels)}: they need 'O' or a 'B-' tag")
    return start, follows


def bio_viterbi(log_probabilities: np.ndarray, labels: Sequence[str]) -> list[int]:
    """The class indices of the most likely valid IOB2 sequence: Viterbi over ``[words, classes]`` log-probabilities.

    A sequence scores the sum of its words' log-probabilities; valid means no word is ``I-X``
    unless the word before it is ``B-X`` or ``I-X`` (so never the first word). Ties go to the
    lower class index. ``labels`` are IOB2 classes (``tags.tag_list``); raises ``ValueError`` for
    other tags. An empty input gives ``[]``.
    """
    words = len(log_probabilities)
    if words == 0:
        return []
    start, follows = _allowed(labels)
    scores = np.asarray(log_probabilities, dtype=np.float64)
    penalty = np.where(follows, 0.0, -np.inf)
    best = np.where(start, scores[0], -np.inf)
    back = np.zeros((words, len(labels)), dtype=np.int64)
    for w in range(1, words):
        candidates = best[:, None] + penalty  # [previous, next]
        back[w] = candidates.argmax(axis=0)
        best = candidates[back[w], np.arange(len(labels))] + scores[w]
    path = [int(best.argmax())]
    for w in range(words - 1, 0, -1):
        path.append(int(back[w, path[-1]]))
    return path[::-1]


def best_path_tags(probabilities: np.ndarray, labels: Sequence[str]) -> tuple[list[str], list[float]]:
    """The most likely valid IOB2 tag sequence and each chosen tag's probability (``bio_viterbi``).

    Always a valid sequence; the argmax sequence itself whenever that is valid.
    """
    argmax, scores = argmax_tags(probabilities, labels)
    if not invalid_positions(argmax):
        return argmax, scores
    with np.errstate(divide="ignore"):
        path = bio_viterbi(np.log(probabilities), labels)
    return [labels[i] for i in path], [float(probabilities[w, i]) for w, i in enumerate(path)]


def decode_word_tags(probabilities: np.ndarray, labels: Sequence[str], method: str = "argmax") -> tuple[list[str], list[float]]:
    """One valid IOB2 tag per word and its probability, by ``method`` (see the module docstring).

    ``"argmax"``: ``argmax_tags`` then ``repair`` (the toolkit default); ``"best_path"``:
    ``best_path_tags`` (the built-in ``ner`` default).
    """
    if method == "argmax":
        tags, scores = argmax_tags(probabilities, labels)
        return repair(tags), scores
    if method == "best_path":
        return best_path_tags(probabilities, labels)
    raise ValueError(f"expected a decoding method among {', '.join(DECODERS)}, got {method!r}")


def tag_entities(tags: Sequence[str], scores: Sequence[float], text: str, offsets: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
    """The entities of IOB2 ``tags`` as JSON-ready dicts: ``label``, ``start``/``end`` (characters of ``text``), ``text``, ``score``.

    ``offsets`` are the words' character offsets in ``text``; ``score`` is the mean of the
    entity's word ``scores``. An entity's ``text`` is ``text[start:end]``.
    """
    entities = []
    for start, end, label in spans_from_tags(tags):
        first, last = offsets[start][0], offsets[end - 1][1]
        entities.append({"label": label, "start": first, "end": last, "text": text[first:last],
                         "score": float(np.mean(scores[start:end]))})
    return entities


def drop_weak_entities(tags: Sequence[str], entities: Sequence[dict[str, Any]], min_score: float) -> tuple[list[str], list[dict[str, Any]]]:
    """Drop the entities whose ``score`` is below ``min_score`` and tag their words ``O``.

    ``entities`` are ``tag_entities(tags, ...)``'s, in the order of ``spans_from_tags(tags)``.
    Returns the new tags and the kept entities; ``min_score <= 0`` keeps everything.
    """
    tags = list(tags)
    if min_score <= 0:
        return tags, list(entities)
    kept = []
    for (start, end, _), entity in zip(spans_from_tags(tags), entities):
        if entity["score"] < min_score:
            tags[start:end] = ["O"] * (end - start)
        else:
            kept.append(entity)
    return tags, kept
