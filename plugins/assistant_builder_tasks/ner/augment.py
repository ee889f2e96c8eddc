"""``[train.augment]`` for NER: mention replacement and label-wise token replacement (toolkit ``augment``)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from assistant_builder.toolkit.alignment import join_words
from assistant_builder.toolkit.augment import mention_pool, replace_mentions, replace_tokens, token_pool
from assistant_builder_tasks.ner.data import TokenExample


def augment_examples(examples: Sequence[TokenExample], settings: Any, rng: random.Random) -> list[TokenExample]:
    """Up to ``settings.copies`` new sentences per tagged sentence: its mentions replaced by other training
    mentions of the same type (``mention_replacement``), then its words by other words seen with the
    same tag (``token_replacement``). Copies equal to a training sentence or an earlier copy are dropped."""
    if not (settings.mention_replacement or settings.token_replacement):
        return []
    tagged = [e for e in examples if e.tags is not None]
    pairs = [(e.tokens, e.tags) for e in tagged]
    mentions = mention_pool(pairs) if settings.mention_replacement else {}
    words = token_pool(pairs) if settings.token_replacement else {}
    seen = {(e.tokens, e.tags) for e in tagged}
    added: list[TokenExample] = []
    for example in tagged:
        assert example.tags is not None
        for copy in range(settings.copies):
            tokens, tags = list(example.tokens), list(example.tags)
            if settings.mention_replacement:
                tokens, tags = replace_mentions(tokens, tags, mentions, settings.probability, rng)
            if settings.token_replacement:
                tokens = replace_tokens(tokens, tags, words, settings.probability, rng)
            key = (tuple(tokens), tuple(tags))
            if key in seen:
                continue
            seen.add(key)
            text, offsets = join_words(tokens)
            added.append(TokenExample(key[0], key[1], text, tuple(offsets), f"{example.source} (augmented {copy + 1})"))
    return added
