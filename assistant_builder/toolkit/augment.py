"""Offline, seeded data augmentation of training examples (``[train.augment]``), torch-free.

Every function takes a ``random.Random`` and is a pure function of its inputs and that generator's
state: the same seed gives the same augmented data. Nothing here touches validation data; the
engine hands a task only its training examples (``Task.augment``).

For token classification (NER, slot filling), after Dai & Adel (2020), "An Analysis of Simple Data
Augmentation for Named Entity Recognition":

* ``mention_pool`` / ``replace_mentions``: replace an entity mention by another training mention of
  the same type (tags rebuilt in IOB2 for the new length; entity types never change).
* ``token_pool`` / ``replace_tokens``: replace a word by another word seen with the same tag in the
  training data (tags unchanged).

For text classification (EDA-style, Wei & Zou 2019, without synonym lists):

* ``random_deletion``, ``random_swap``, ``span_mask`` on whitespace words, and ``augment_words``,
  which applies one of the enabled operations.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

from assistant_builder.toolkit.tags import spans_from_tags, tags_from_spans

__all__ = ["CLASSIFICATION_OPS", "mention_pool", "replace_mentions", "token_pool", "replace_tokens", "random_deletion",
           "random_swap", "span_mask", "augment_words"]

#: the operations ``augment_words`` chooses from, by name
CLASSIFICATION_OPS: tuple[str, ...] = ("deletion", "swap", "span_mask")


def _check_probability(probability: float) -> None:
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"expected a probability in [0, 1], got {probability!r}")


def mention_pool(sequences: Iterable[tuple[Sequence[str], Sequence[str]]]) -> dict[str, list[tuple[str, ...]]]:
    """Every distinct entity mention of ``(tokens, IOB2 tags)`` pairs, by entity type, in first-seen order.

    ``{"city": [("paris",), ("new", "york")], ...}``: what ``replace_mentions`` draws from.
    """
    pool: dict[str, dict[tuple[str, ...], None]] = {}
    for tokens, tags in sequences:
        for start, end, entity_type in spans_from_tags(tags):
            pool.setdefault(entity_type, {})[tuple(tokens[start:end])] = None
    return {entity_type: list(mentions) for entity_type, mentions in pool.items()}


def replace_mentions(tokens: Sequence[str], tags: Sequence[str], pool: Mapping[str, Sequence[tuple[str, ...]]],
                     probability: float, rng: random.Random) -> tuple[list[str], list[str]]:
    """Replace each entity mention, with ``probability``, by a random mention of the same type from ``pool``.

    Returns new ``(tokens, tags)`` (IOB2): the sentence may grow or shrink, every entity keeps its
    type, words outside entities are unchanged. A type with no other mention in ``pool`` is kept.
    """
    _check_probability(probability)
    new_tokens: list[str] = []
    spans = []
    position = 0
    for start, end, entity_type in spans_from_tags(tags):
        new_tokens.extend(tokens[position:start])
        mention = tuple(tokens[start:end])
        choices = [m for m in pool.get(entity_type, ()) if m != mention]
        if choices and rng.random() < probability:
            mention = rng.choice(choices)
        spans.append((len(new_tokens), len(new_tokens) + len(mention), entity_type))
        new_tokens.extend(mention)
        position = end
    new_tokens.extend(tokens[position:])
    return new_tokens, tags_from_spans(spans, len(new_tokens))


def token_pool(sequences: Iterable[tuple[Sequence[str], Sequence[str]]]) -> dict[str, list[str]]:
    """Every distinct word seen with each tag (``"B-city"``, ``"O"``...), in first-seen order."""
    pool: dict[str, dict[str, None]] = {}
    for tokens, tags in sequences:
        for token, tag in zip(tokens, tags):
            pool.setdefault(tag, {})[token] = None
    return {tag: list(words) for tag, words in pool.items()}


def replace_tokens(tokens: Sequence[str], tags: Sequence[str], pool: Mapping[str, Sequence[str]], probability: float,
                   rng: random.Random) -> list[str]:
    """Label-wise token replacement: each word, with ``probability``, becomes another word seen with its tag.

    The tags stay as they are (so ``B-``/``I-`` structure and entity types are preserved).
    """
    _check_probability(probability)
    result = list(tokens)
    for position, (token, tag) in enumerate(zip(tokens, tags)):
        if rng.random() < probability:
            choices = [w for w in pool.get(tag, ()) if w != token]
            if choices:
                result[position] = rng.choice(choices)
    return result


def random_deletion(words: Sequence[str], probability: float, rng: random.Random) -> list[str]:
    """Drop each word with ``probability``; at least one word always remains."""
    _check_probability(probability)
    kept = [w for w in words if rng.random() >= probability]
    if not kept and words:
        kept = [rng.choice(list(words))]
    return kept


def random_swap(words: Sequence[str], probability: float, rng: random.Random) -> list[str]:
    """Swap two random positions ``max(1, round(probability * len(words)))`` times (words of 2+ only)."""
    _check_probability(probability)
    result = list(words)
    if len(result) < 2:
        return result
    for _ in range(max(1, round(probability * len(result)))):
        i, j = rng.sample(range(len(result)), 2)
        result[i], result[j] = result[j], result[i]
    return result


def span_mask(words: Sequence[str], probability: float, rng: random.Random, mask_token: str, max_span: int = 3) -> list[str]:
    """Replace one random span of ``1..max_span`` words (at most ``probability`` of them, at least one) by
    ``mask_token`` each; a one-word input is returned unchanged."""
    _check_probability(probability)
    if max_span < 1:
        raise ValueError(f"expected max_span >= 1, got {max_span}")
    result = list(words)
    if len(result) < 2:
        return result
    longest = max(1, min(max_span, round(probability * len(result)), len(result) - 1))
    length = rng.randint(1, longest)
    start = rng.randrange(0, len(result) - length + 1)
    result[start:start + length] = [mask_token] * length
    return result


def augment_words(words: Sequence[str], ops: Sequence[str], probability: float, rng: random.Random, *,
                  mask_token: str = "[MASK]", max_span: int = 3) -> list[str]:
    """Apply one operation, chosen at random from ``ops`` (names in ``CLASSIFICATION_OPS``), to ``words``."""
    unknown = [op for op in ops if op not in CLASSIFICATION_OPS]
    if unknown or not ops:
        raise ValueError(f"expected operations among {', '.join(CLASSIFICATION_OPS)}, got {list(ops)!r}")
    op = rng.choice(list(ops))
    if op == "deletion":
        return random_deletion(words, probability, rng)
    if op == "swap":
        return random_swap(words, probability, rng)
    return span_mask(words, probability, rng, mask_token, max_span)
