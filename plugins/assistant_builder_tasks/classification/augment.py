"""``[train.augment]`` for classification: word deletion, swap and span masking (toolkit ``augment``)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from assistant_builder.toolkit.augment import augment_words
from assistant_builder_tasks.classification.data import TextExample


def enabled_ops(settings: Any) -> list[str]:
    """The operations ``[train.augment]`` switches on, in ``CLASSIFICATION_OPS`` order."""
    return [op for op in ("deletion", "swap", "span_mask") if getattr(settings, op)]


def augment_examples(examples: Sequence[TextExample], settings: Any, rng: random.Random) -> list[TextExample]:
    """Up to ``settings.copies`` new examples per example, each with one operation applied to its words;
    copies equal to a training text (or to an earlier copy) are dropped. Labels are kept."""
    ops = enabled_ops(settings)
    if not ops:
        return []
    seen = {example.text for example in examples}
    added: list[TextExample] = []
    for example in examples:
        words = example.text.split()
        for copy in range(settings.copies):
            text = " ".join(augment_words(words, ops, settings.probability, rng, mask_token=settings.mask_token,
                                          max_span=settings.max_span))
            if text and text not in seen:
                seen.add(text)
                added.append(TextExample(text, example.label, None, f"{example.source} (augmented {copy + 1})"))
    return added
